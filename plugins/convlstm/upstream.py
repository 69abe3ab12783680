"""The conv-lstm package's stacks as an encoding-forecasting network: what the converter reads.

Imported by the conformance kit (``Architecture.converter_examples``) and tests
only; conv-lstm is a test dependency, never needed to load a model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zoo_plugins.convlstm import ConvLSTMConfig

if TYPE_CHECKING:
    from torch import Tensor


def conv_lstm_state(config: ConvLSTMConfig) -> tuple[ConvLSTMConfig, dict[str, Tensor]]:
    """``encoder``, ``forecaster`` (bottom cell with no input) and the 1x1 ``output`` conv.

    conv-lstm's cells have no peepholes, so the example is made for (and returned
    with) the config without them.
    """
    from conv_lstm import ConvLSTM
    from torch import nn

    hidden, kernel = config.hidden_channels, config.kernel_size
    patch_channels = config.in_channels * config.patch_size**2
    modules = {
        "encoder": ConvLSTM(patch_channels, hidden, kernel, num_layers=len(hidden)),
        "forecaster": ConvLSTM(0, hidden, kernel, num_layers=len(hidden)),
        "output": nn.Conv2d(sum(hidden), patch_channels, kernel_size=1),
    }
    state = {
        f"{name}.{key}": tensor
        for name, module in modules.items()
        for key, tensor in module.state_dict().items()
    }
    return config.model_copy(update={"peephole": False}), state
