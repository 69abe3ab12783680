"""Upstream C3D checkpoint layouts to the zoo's own (the module names of :mod:`.model`).

``davidea``
    DavideA/c3d-pytorch, whose ``c3d.pickle`` holds the Sports-1M weights converted from
    the authors' Caffe model: ``conv1``, ``conv2``, ``conv3a`` … ``conv5b``, ``fc6``,
    ``fc7``, ``fc8`` (487 classes), each with ``weight`` and ``bias``. The zoo's names are
    the same; the converter checks the layout and drops ``fc8`` for a features-only config.
``mmaction2``
    open-mmlab/mmaction2: the ``C3D`` backbone wraps each convolution in a ``ConvModule``
    (``conv1a.conv.weight``, ``conv2a.conv.weight``, ``conv3a.conv.weight`` …), ends at
    ``fc6`` and ``fc7``, and its recognizers prefix ``backbone.``; the classifier is the
    ``I3DHead``'s ``cls_head.fc_cls`` (dropout, then a linear layer on the fc7 features),
    which becomes ``fc8``. A backbone-only checkpoint has no classifier: load it with
    ``num_classes: null``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zoo.errors import WeightsError
from zoo_plugins.c3d import C3DConfig

if TYPE_CHECKING:
    from torch import Tensor

CLASSIFIER = "fc8."
MMACTION2_BACKBONE = "backbone."
MMACTION2_CLASSIFIER = "cls_head.fc_cls."
# mmaction2 names the first two convolutions conv1a and conv2a; the others match.
MMACTION2_CONV_NAMES = {"conv1a": "conv1", "conv2a": "conv2"}


def from_davidea(state: dict[str, Tensor], config: C3DConfig) -> dict[str, Tensor]:
    """The port's keys are the zoo's; without ``num_classes`` its fc8 is left out."""
    _require(state, "conv1.weight", "davidea", hint="DavideA/c3d-pytorch's C3D state dict")
    if config.num_classes is None:
        return {key: value for key, value in state.items() if not key.startswith(CLASSIFIER)}
    return dict(state)


def from_mmaction2(state: dict[str, Tensor], config: C3DConfig) -> dict[str, Tensor]:
    """Strip ``backbone.``, unwrap ``ConvModule``, rename conv1a/conv2a, head to fc8."""
    state = {key.removeprefix(MMACTION2_BACKBONE): value for key, value in state.items()}
    _require(state, "conv1a.conv.weight", "mmaction2", hint="mmaction2's C3D backbone")
    has_classifier = any(key.startswith(MMACTION2_CLASSIFIER) for key in state)
    if config.num_classes is not None and not has_classifier:
        raise WeightsError(
            "the mmaction2 checkpoint holds the C3D backbone only (no cls_head.fc_cls.* keys), "
            f"but the config asks for {config.num_classes} classes; build it with "
            "num_classes=None to get the fc7 features, or give a recognizer checkpoint"
        )
    converted = {}
    for key, value in state.items():
        if key.startswith(MMACTION2_CLASSIFIER):
            if config.num_classes is not None:
                converted[CLASSIFIER + key.removeprefix(MMACTION2_CLASSIFIER)] = value
            continue
        converted[_mmaction2_key(key)] = value
    return converted


def _mmaction2_key(key: str) -> str:
    """``conv1a.conv.weight`` -> ``conv1.weight``; other keys (fc6, fc7, unknown) unchanged."""
    module, _, rest = key.partition(".")
    if not rest.startswith("conv."):
        return key
    return f"{MMACTION2_CONV_NAMES.get(module, module)}.{rest.removeprefix('conv.')}"


def _require(state: dict[str, Tensor], key: str, layout: str, hint: str) -> None:
    """Fail early, naming the layout, when the file is plainly not in it."""
    if key not in state:
        found = ", ".join(sorted(state)[:4]) or "no keys"
        raise WeightsError(
            f"weights are not in the {layout!r} layout ({hint}): expected a {key!r} key, "
            f"found {found}{' …' if len(state) > 4 else ''}"
        )
