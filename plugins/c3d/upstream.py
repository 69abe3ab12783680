"""C3D checkpoints as DavideA/c3d-pytorch and mmaction2 lay them out: what the converters read.

Neither upstream is a dependency of the zoo's tests (the port is a script, mmaction2
needs mmcv), so these examples take a zoo C3D's tensors and give them the
upstream names documented in :mod:`zoo_plugins.c3d.convert`; the parity tests in
``tests/test_c3d.py`` prove those names against re-creations of the upstream modules.
Imported by the conformance kit (``Architecture.converter_examples``) only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zoo_plugins.c3d import C3DConfig
from zoo_plugins.c3d.convert import MMACTION2_CONV_NAMES

if TYPE_CHECKING:
    from torch import Tensor

ZOO_TO_MMACTION2 = {zoo: upstream for upstream, zoo in MMACTION2_CONV_NAMES.items()}


def davidea_state(config: C3DConfig) -> dict[str, Tensor]:
    """The port's names are the zoo's: ``conv1`` ... ``conv5b``, ``fc6`` ... ``fc8``."""
    from zoo_plugins.c3d.model import build

    return build(config).state_dict()


def mmaction2_state(config: C3DConfig) -> dict[str, Tensor]:
    """A recognizer: ``backbone.conv1a.conv.weight`` ..., ``backbone.fc6``, ``cls_head.fc_cls``."""
    state = {}
    for key, tensor in davidea_state(config).items():
        module, _, parameter = key.partition(".")
        if module == "fc8":
            state[f"cls_head.fc_cls.{parameter}"] = tensor
        elif module.startswith("conv"):
            state[f"backbone.{ZOO_TO_MMACTION2.get(module, module)}.conv.{parameter}"] = tensor
        else:
            state[f"backbone.{key}"] = tensor
    return state
