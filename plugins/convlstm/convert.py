"""Converters from upstream key layouts to the zoo's ``convlstm`` layout.

``conv-lstm`` is the layout of the ``conv-lstm`` package (``conv_lstm.ConvLSTM``, from
ndrplz/ConvLSTM_pytorch): an encoding–forecasting network assembled from two of its stacks
named ``encoder`` and ``forecaster`` (the forecaster's bottom cell built with
``input_dim=0``) and a 1x1 ``output`` convolution. Its cells stack the gates in the same
order as the zoo's (input, forget, output, candidate), so the weights carry over unchanged
and only the stacks' list name differs (``cell_list`` there, ``cells`` here).
"""

from __future__ import annotations

import re

from torch import Tensor

from zoo_plugins.convlstm import ConvLSTMConfig

UPSTREAM_CELL = re.compile(r"^(encoder|forecaster)\.cell_list\.(\d+)\.(conv\.(?:weight|bias))$")


def from_conv_lstm(state: dict[str, Tensor], config: ConvLSTMConfig) -> dict[str, Tensor]:
    """``encoder.cell_list.0.conv.weight`` -> ``encoder.cells.0.conv.weight``; the rest as is.

    Keys outside that pattern pass through unchanged, so the loader reports any missing or
    unexpected ones by name.
    """
    if config.peephole:
        raise ValueError(
            "the conv-lstm layout has no peephole weights; "
            "load it into a config with peephole=False"
        )
    return {_rename(key): tensor for key, tensor in state.items()}


def _rename(key: str) -> str:
    match = UPSTREAM_CELL.match(key)
    if match is None:
        return key
    stack, index, parameter = match.groups()
    return f"{stack}.cells.{index}.{parameter}"
