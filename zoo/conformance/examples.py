"""What the kit feeds a model, and how it reads the answer against the card.

Models are those of :func:`zoo.small.small_card`: the architecture's
``test_config`` merged over the card's config, fed the card's inputs resized by
``test_inputs``, a small model of the same code paths. Outputs are matched to
the card's ``outputs`` by position (a tensor, a tuple), by name (a dict; in
order when its keys are upstream's, as the FPN's torchvision level names
"0".."3", "pool" are the card's p2..p5, pool, which is how the ONNX export names
them too) or per sample (a list of dicts, one per image, as detectors return
them).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from zoo.architecture import Architecture
from zoo.cards import Card, InputSpec, OutputSpec
from zoo.small import merge

if TYPE_CHECKING:
    import numpy as np
    import torch

BATCH = 2
SEED = 0
# A per-sample output size the card states in terms of an input axis: "H", "W/4", "T/8".
AXIS_SIZE = re.compile(r"^(?P<axis>[THW])(?:/(?P<stride>\d+))?$")


def small_config(architecture: Architecture, config: Mapping[str, Any]) -> BaseModel:
    return architecture.validate_config(merge(config, architecture.test_config))


def example_inputs(card: Card, batch: int = BATCH) -> list[torch.Tensor]:
    """Random inputs of the card's shapes, uniform over each input's value range."""
    import torch

    generator = torch.Generator().manual_seed(SEED)
    tensors = []
    for spec in card.inputs:
        low, high = spec.value_range
        noise = torch.rand(spec.example_shape(batch), generator=generator)
        tensors.append(noise * (high - low) + low)
    return tensors


def synthetic_media(card: Card) -> np.ndarray:
    """Random uint8 RGB pixels of the card's kind, an eighth larger than the model's input so
    that resizing and cropping run: an image, or a clip two frames longer than the card's
    sampling takes (an input derived from frame pairs, optical flow, needs one more)."""
    import numpy as np

    spec = card.inputs[0]
    height, width = (side + side // 8 for side in spec.size)
    shape: tuple[int, ...] = (height, width, 3)
    if spec.frames is not None:
        shape = (max(_frames_taken(other) for other in card.inputs) + 2, *shape)
    return np.random.default_rng(SEED).integers(0, 256, shape, dtype=np.uint8)


def _frames_taken(spec: InputSpec) -> int:
    """A clip's length, or the shortest whole video the network takes (I3D's protocol)."""
    protocol = spec.sampling_protocol
    if protocol.protocol == "whole" and protocol.min_frames:
        return protocol.min_frames
    return spec.frames or 1


def wrong_inputs(card: Card, inputs: list[torch.Tensor]) -> dict[str, list[torch.Tensor]]:
    """The example inputs with the first one mis-shaped in ways no network may accept silently."""
    import torch

    spec, first = card.inputs[0], inputs[0]
    channel_axis = spec.layout.index("C")
    shape = list(first.shape)
    shape[channel_axis] += 1
    return {
        f"an input with {shape[channel_axis]} channels instead of {spec.channels}": [
            torch.zeros(shape),
            *inputs[1:],
        ],
        f"an input without its batch axis (layout {spec.layout[1:]})": [first[0], *inputs[1:]],
    }


def output_problems(result: Any, card: Card, batch: int = BATCH) -> list[str]:
    """What in a forward's result differs from the card's outputs; empty when nothing does."""
    named, problems = _by_name(result, card.outputs)
    if problems:
        return problems
    sizes = _axis_sizes(card.inputs[0])
    for spec in card.outputs:
        value = named[spec.name]
        if isinstance(value, list):
            if len(value) != batch:
                problems.append(f"{spec.name}: {len(value)} samples for a batch of {batch}")
            shapes = [tuple(sample.shape) for sample in value]
        else:
            shapes = [tuple(value.shape[1:])] if value.shape[:1] == (batch,) else []
            if not shapes:
                problems.append(
                    f"{spec.name}: shape {tuple(value.shape)} has no leading batch axis of {batch}"
                )
        problems += [
            f"{spec.name}: per-sample shape {shape}, the card says {spec.shape}"
            for shape in shapes
            if not _fits(shape, spec.shape, sizes)
        ]
    return problems


def _by_name(result: Any, outputs: list[OutputSpec]) -> tuple[dict[str, Any], list[str]]:
    import torch

    names = [spec.name for spec in outputs]
    if isinstance(result, torch.Tensor):
        values: list[Any] = [result]
    elif isinstance(result, tuple | list) and all(isinstance(v, torch.Tensor) for v in result):
        values = list(result)
    elif isinstance(result, Mapping):
        return _from_mapping(result, names)
    elif isinstance(result, list) and all(isinstance(sample, Mapping) for sample in result):
        per_sample = [_from_mapping(sample, names) for sample in result]
        problems = [problem for _, found in per_sample for problem in found]
        if problems:
            return {}, problems
        return {name: [found[name] for found, _ in per_sample] for name in names}, []
    else:
        return {}, [f"the forward returned {type(result).__name__}; expected tensors"]
    if len(values) != len(names):
        return {}, [f"the forward returned {len(values)} tensors, the card names {names}"]
    return dict(zip(names, values, strict=True)), []


def _from_mapping(result: Mapping[str, Any], names: list[str]) -> tuple[dict[str, Any], list[str]]:
    """By the card's names; a mapping keyed by upstream's names instead pairs up in order."""
    if all(name in result for name in names):
        return {name: result[name] for name in names}, []
    if len(result) == len(names):
        return dict(zip(names, result.values(), strict=True)), []
    return {}, [f"the forward's outputs {list(result)} are neither the card's {names} nor as many"]


def _axis_sizes(spec: InputSpec) -> dict[str, int]:
    sizes = {"H": spec.size[0], "W": spec.size[1]}
    if spec.frames is not None:
        sizes["T"] = spec.frames
    return sizes


def _fits(shape: tuple[int, ...], expected: list[int | str], sizes: dict[str, int]) -> bool:
    """Integers must match; ``H/4``-style sizes must match the input's; other names are free."""
    if len(shape) != len(expected):
        return False
    for size, wanted in zip(shape, expected, strict=True):
        if isinstance(wanted, int):
            if size != wanted:
                return False
            continue
        found = AXIS_SIZE.match(wanted)
        if found and found["axis"] in sizes:
            stride = int(found["stride"] or 1)
            if size != math.ceil(sizes[found["axis"]] / stride):
                return False
    return True
