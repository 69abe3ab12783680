"""torchvision's R(2+1)D checkpoint layout to this plugin's module names.

torchvision (``torchvision.models.video.r2plus1d_18``) keeps the network in
nested ``Sequential``s, so its keys are positions: the stem is
``stem.{0,1,3,4}`` (spatial conv, its BatchNorm, temporal conv, the stem's
BatchNorm), a block's convolution is ``layerS.B.convJ.0.{0,1,3}`` followed by
``convJ.1`` (the block's BatchNorm), and the shortcut is ``downsample.{0,1}``.
This plugin names them (``stem.spatial``, ``stages.S-1.B.convJ.temporal``,
``normJ``, ``shortcut.conv``). The mapping is total: a key it does not know is
an error that names the key, never silently dropped.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from zoo.errors import WeightsError
from zoo_example_plugin import R2Plus1DConfig

if TYPE_CHECKING:
    from torch import Tensor

FACTORIZED = {"0": "spatial", "1": "norm", "3": "temporal"}
STEM = {"0": "stem.spatial", "1": "stem.norm", "3": "stem.temporal", "4": "stem_norm"}
SHORTCUT = {"0": "conv", "1": "norm"}
STEM_KEY = re.compile(r"^stem\.(?P<index>\d+)\.(?P<rest>.+)$")
CONV_KEY = re.compile(
    r"^layer(?P<stage>\d)\.(?P<block>\d+)\.conv(?P<conv>[12])\.(?P<part>\d)(?:\.(?P<index>\d))?"
    r"\.(?P<rest>[a-z_]+)$"
)
SHORTCUT_KEY = re.compile(
    r"^layer(?P<stage>\d)\.(?P<block>\d+)\.downsample\.(?P<index>\d)\.(?P<rest>[a-z_]+)$"
)


def from_torchvision(state: dict[str, Tensor], config: R2Plus1DConfig) -> dict[str, Tensor]:
    """Rename every key; the classifier ``fc`` is dropped when the config has no classes."""
    if "stem.0.weight" not in state:
        found = ", ".join(sorted(state)[:4]) or "no keys"
        raise WeightsError(
            "weights are not in torchvision's R(2+1)D layout: expected a 'stem.0.weight' key, "
            f"found {found}{' …' if len(state) > 4 else ''}"
        )
    converted = {}
    for key, value in state.items():
        if key.startswith("fc.") and config.num_classes is None:
            continue
        converted[_renamed(key)] = value
    return converted


def _renamed(key: str) -> str:
    if key.startswith("fc."):
        return key
    if found := STEM_KEY.match(key):
        return f"{_part(STEM, found['index'], key)}.{found['rest']}"
    if found := CONV_KEY.match(key):
        return _conv_key(found, key)
    if found := SHORTCUT_KEY.match(key):
        stage = int(found["stage"]) - 1
        module = _part(SHORTCUT, found["index"], key)
        return f"stages.{stage}.{found['block']}.shortcut.{module}.{found['rest']}"
    raise WeightsError(f"torchvision R(2+1)D key {key!r} has no place in this model")


def _conv_key(found: re.Match[str], key: str) -> str:
    """``layerS.B.convJ.0.I.x`` is inside the (2+1)D conv; ``layerS.B.convJ.1.x`` its norm."""
    block = f"stages.{int(found['stage']) - 1}.{found['block']}"
    if found["part"] == "1" and found["index"] is None:
        return f"{block}.norm{found['conv']}.{found['rest']}"
    if found["part"] == "0" and found["index"] is not None:
        module = _part(FACTORIZED, found["index"], key)
        return f"{block}.conv{found['conv']}.{module}.{found['rest']}"
    raise WeightsError(f"torchvision R(2+1)D key {key!r} has no place in this model")


def _part(table: dict[str, str], index: str, key: str) -> str:
    try:
        return table[index]
    except KeyError:
        raise WeightsError(f"torchvision R(2+1)D key {key!r} has no place in this model") from None
