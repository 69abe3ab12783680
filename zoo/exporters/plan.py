"""What to export: the example shapes, the dynamic axes and the shapes to check at.

Everything here is read from the card (input names, layouts, sizes) and the
architecture's :class:`~zoo.ExportHints` (dynamic axes, clip-length bounds, a fixed
batch), so one loop serves every architecture. No torch: a bad ``--frames`` or
``--batch`` is refused before any model is built.

The check shapes follow one rule per kind of axis, so that every dynamic axis is
run at a size it was not exported at: batch 1 (a graph exported at batch 1
would have frozen it); the shortest clip the network accepts (``min_frames``),
or one frame more when the export already uses it; height 32 less (at least 32)
and width 32 more.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from zoo.architecture import ExportHints
from zoo.cards import Card, InputSpec
from zoo.errors import ExportError

DEFAULT_DYNAMIC_BATCH = 2
SIZE_STEP = 32


@dataclass(frozen=True)
class Axis:
    """One dynamic axis: its symbolic name and the two sizes it is run at."""

    name: str
    export_size: int
    check_size: int


@dataclass(frozen=True)
class InputPlan:
    """One graph input: its card spec, its example shape and which of its axes vary."""

    spec: InputSpec
    shape: tuple[int, ...]
    dynamic: dict[int, Axis] = field(default_factory=dict)

    @property
    def check_shape(self) -> tuple[int, ...]:
        sizes = list(self.shape)
        for index, axis in self.dynamic.items():
            sizes[index] = axis.check_size
        return tuple(sizes)


@dataclass(frozen=True)
class ExportPlan:
    inputs: list[InputPlan]
    output_names: list[str]
    output_axes: dict[str, dict[int, str]]
    batch: int

    @property
    def dynamic(self) -> bool:
        return any(plan.dynamic for plan in self.inputs)

    def axes(self) -> dict[str, Axis]:
        return {axis.name: axis for plan in self.inputs for axis in plan.dynamic.values()}


def plan_export(
    card: Card,
    hints: ExportHints,
    *,
    batch: int | None = None,
    frames: int | None = None,
    dynamic: bool = True,
) -> ExportPlan:
    """The shapes to export ``card``'s model at; a clear error for sizes it cannot take."""
    batch = _batch(card, hints, batch, dynamic)
    frames_by_input = _frames(card, hints, frames)
    inputs = []
    for spec in card.inputs:
        sizes = {"N": batch, "C": spec.channels, "H": spec.size[0], "W": spec.size[1]}
        if spec.name in frames_by_input:  # the inputs with a T axis
            sizes["T"] = frames_by_input[spec.name]
        shape = tuple(sizes[letter] for letter in spec.layout)
        axes = hints.dynamic_axes.get(spec.name, {}) if dynamic else {}
        if hints.batch is not None:
            axes = {index: name for index, name in axes.items() if spec.layout[index] != "N"}
        _check_axes(card, spec, axes)
        inputs.append(
            InputPlan(
                spec=spec,
                shape=shape,
                dynamic={
                    index: _axis(name, spec.layout[index], shape[index], hints)
                    for index, name in axes.items()
                },
            )
        )
    plan = ExportPlan(
        inputs=inputs,
        output_names=list(hints.output_names),
        output_axes={
            name: hints.dynamic_axes.get(name, {}) if dynamic else {} for name in hints.output_names
        },
        batch=batch,
    )
    _check_shared_names(card, plan)
    return plan


def _batch(card: Card, hints: ExportHints, batch: int | None, dynamic: bool) -> int:
    if hints.batch is not None:
        if batch is not None and batch != hints.batch:
            raise ExportError(
                f"{card.name}: the {card.architecture} graph takes batch {hints.batch} only "
                f"(its outputs are per-image lists), found batch {batch}"
            )
        return hints.batch
    batch_is_dynamic = dynamic and any(
        axes.get(0) for name, axes in hints.dynamic_axes.items() if name in card_input_names(card)
    )
    if batch is None:
        return DEFAULT_DYNAMIC_BATCH if batch_is_dynamic else 1
    if batch < 1:
        raise ExportError(f"{card.name}: batch must be at least 1, found {batch}")
    if batch == 1 and batch_is_dynamic:
        raise ExportError(
            f"{card.name}: a dynamic batch axis must be exported at batch 2 or more "
            "(torch.export freezes an axis of size 1), found batch 1; use batch 2, or "
            "export a static graph"
        )
    return batch


def _frames(card: Card, hints: ExportHints, frames: int | None) -> dict[str, int]:
    """The clip length of every input with a T axis: the card's, or ``frames`` for all."""
    timed = [spec for spec in card.inputs if spec.frames is not None]
    if frames is None:
        return {spec.name: spec.frames for spec in timed if spec.frames is not None}
    if not timed:
        layouts = ", ".join(spec.layout for spec in card.inputs)
        raise ExportError(
            f"{card.name}: frames applies to inputs with a T axis; this model's inputs are "
            f"{layouts}"
        )
    if hints.min_frames is not None and frames < hints.min_frames:
        raise ExportError(
            f"{card.name}: {frames} frames is below the {hints.min_frames} frames the "
            f"{card.architecture} network accepts"
        )
    if hints.max_frames is not None and frames > hints.max_frames:
        raise ExportError(
            f"{card.name}: {frames} frames is above the {hints.max_frames} frames the "
            f"{card.architecture} network accepts"
        )
    return {spec.name: frames for spec in timed}


def _axis(name: str, letter: str, size: int, hints: ExportHints) -> Axis:
    if letter == "N":
        return Axis(name, size, 1 if size > 1 else 2)
    if letter == "T":
        shortest = hints.min_frames or 1
        other = shortest if shortest != size else size + 1
        if hints.max_frames is not None and other > hints.max_frames:
            other = size - 1
        return Axis(name, size, other)
    if letter == "H":
        return Axis(name, size, max(SIZE_STEP, size - SIZE_STEP))
    return Axis(name, size, size + SIZE_STEP)


def _check_axes(card: Card, spec: InputSpec, axes: dict[int, str]) -> None:
    for index in axes:
        if not 0 <= index < len(spec.layout) or spec.layout[index] == "C":
            raise ExportError(
                f"{card.name}: the {card.architecture} export hints make axis {index} of input "
                f"{spec.name!r} (layout {spec.layout}) dynamic; expected an N, T, H or W axis"
            )


def _check_shared_names(card: Card, plan: ExportPlan) -> None:
    """Axes that share a symbolic name are one dimension: their sizes must agree."""
    seen: dict[str, Axis] = {}
    for input_plan in plan.inputs:
        for axis in input_plan.dynamic.values():
            other = seen.setdefault(axis.name, axis)
            if other != axis:
                raise ExportError(
                    f"{card.name}: dynamic axis {axis.name!r} is exported at sizes "
                    f"{other.export_size} and {axis.export_size} in different inputs; give "
                    "the inputs the same size or the axes different names"
                )


def card_input_names(card: Card) -> list[str]:
    return [spec.name for spec in card.inputs]


def support_summary(card: Card, hints: ExportHints) -> str:
    """What the exported graph accepts, in words: the export column of docs/tasks/export.md.

    Dynamic axes by meaning (batch, frames with their minimum, height and width),
    then what stays fixed, then the exporter when it is the fallback.
    """
    plan = plan_export(card, hints)
    varying: list[str] = []
    fixed: list[str] = []
    for item in plan.inputs:
        letters = {item.spec.layout[index] for index in item.dynamic}
        if "N" in letters and "batch" not in varying:
            varying.append("batch")
        if "T" in letters and not any(part.startswith("frames") for part in varying):
            varying.append(f"frames ≥ {hints.min_frames}" if hints.min_frames else "frames")
        if {"H", "W"} & letters and "height, width" not in varying:
            varying.append("height, width")
        if "T" in item.spec.layout and "T" not in letters and item.spec.frames:
            fixed.append(f"{item.spec.frames} frames")
        if not {"H", "W"} & letters:
            fixed.append("x".join(str(side) for side in item.spec.size))
    if hints.batch is not None:
        fixed.insert(0, f"batch {hints.batch}")
    parts = [f"dynamic {', '.join(varying)}"] if varying else []
    parts += [f"fixed {', '.join(dict.fromkeys(fixed))}"] if fixed else []
    if hints.exporter == "legacy":
        parts.append("legacy exporter")
    return "; ".join(parts)
