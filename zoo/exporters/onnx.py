"""PyTorch to one self-contained ONNX file: export, name the axes, describe, convert to float16.

``torch.onnx.export(..., dynamo=True)`` is the exporter; the deprecated
TorchScript exporter runs only for an architecture whose hints ask for it, with
their reason recorded in the report. Dynamic axes are ``torch.export.Dim``
objects named as the hints name them, bounded by the clip lengths the network
accepts; shared names (one batch for two inputs) are one ``Dim``.

The metadata makes the file self-describing: a consumer finds the card name,
zoo version, task, every input's preprocessing (layout, size, frames, value
range, mean/std, channel order, ...) and the label names in ``metadata_props``.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.architecture import ExportHints
from zoo.cards import Card
from zoo.errors import ExportError
from zoo.exporters.plan import ExportPlan, InputPlan
from zoo.exporters.report import TensorInfo
from zoo.version import __version__

if TYPE_CHECKING:
    import onnx
    import torch

ELEMENT_TYPES = {1: "float32", 6: "int32", 7: "int64", 9: "bool", 10: "float16", 11: "float64"}
"""onnx.TensorProto element types the zoo's graphs use, by their names in numpy."""

PREPROCESSING_FIELDS = (
    "name",
    "layout",
    "channels",
    "channel_order",
    "frames",
    "fps",
    "sampling",
    "size",
    "resize",
    "crop",
    "interpolation",
    "value_range",
    "mean",
    "std",
)


def random_inputs(plan: ExportPlan, *, check: bool, seed: int) -> tuple[torch.Tensor, ...]:
    """Fresh float32 inputs in the card's layout, at the export or the check shapes.

    Pixels are drawn uniformly from the card's value range and normalised with
    its mean and std, so the network sees values in the range it was made for.
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    return tuple(_random_input(item, check, generator) for item in plan.inputs)


def _random_input(item: InputPlan, check: bool, generator: torch.Generator) -> torch.Tensor:
    import torch

    spec = item.spec
    shape = item.check_shape if check else item.shape
    low, high = spec.value_range
    values = torch.rand(shape, generator=generator) * (high - low) + low
    if spec.mean is not None and spec.std is not None:
        channel = spec.layout.index("C")
        view = [1] * len(shape)
        view[channel] = spec.channels
        mean = torch.tensor(spec.mean).view(view)
        std = torch.tensor(spec.std).view(view)
        values = (values - mean) / std
    return values.float()


def export_graph(
    model: torch.nn.Module,
    inputs: tuple[torch.Tensor, ...],
    plan: ExportPlan,
    hints: ExportHints,
    opset: int,
) -> onnx.ModelProto:
    """The model as an in-memory ONNX graph, inputs named as the card, outputs as the hints."""
    names = [item.spec.name for item in plan.inputs]
    try:
        if hints.exporter == "legacy":
            proto = _legacy_export(model, inputs, plan, names, opset)
        else:
            proto = _dynamo_export(model, inputs, plan, names, opset)
    except Exception as error:  # the exporters fail in many ways; the root cause says why
        raise ExportError(f"the {hints.exporter} exporter failed: {root_cause(error)}") from error
    _check_io_names(proto, names, plan.output_names)
    _check_input_axes(proto, plan)
    _name_output_axes(proto, plan)
    return proto


def _dynamo_export(
    model: torch.nn.Module,
    inputs: tuple[torch.Tensor, ...],
    plan: ExportPlan,
    names: list[str],
    opset: int,
) -> onnx.ModelProto:
    """``torch.export`` with ``Dim.DYNAMIC`` axes: it infers their valid range itself.

    Named ``Dim`` objects would need the range that the network's shape arithmetic
    implies (for I3D, clips long enough that no intermediate time axis is 1), which
    only torch.export can work out; ``DYNAMIC`` still refuses to fix such an axis.
    The graph's axes are then renamed after the hints.
    """
    import torch

    shapes = tuple(
        {index: torch.export.Dim.DYNAMIC for index in item.dynamic} or None for item in plan.inputs
    )
    program = torch.onnx.export(
        model,
        inputs,
        dynamo=True,
        input_names=names,
        output_names=plan.output_names,
        opset_version=opset,
        dynamic_shapes=shapes if plan.dynamic else None,
        external_data=False,
        verbose=False,
    )
    if program is None:  # returned by the legacy exporter (dynamo=False) only
        raise ExportError("torch.onnx.export(dynamo=True) returned no ONNX program")
    proto = program.model_proto
    _rename_input_axes(proto, plan)
    return proto


def _rename_input_axes(proto: onnx.ModelProto, plan: ExportPlan) -> None:
    """Give each dynamic input axis its hint name, wherever its symbol appears in the graph."""
    renamed = {}
    for value, item in zip(proto.graph.input, plan.inputs, strict=True):
        dims = value.type.tensor_type.shape.dim
        for index, axis in item.dynamic.items():
            if dims[index].HasField("dim_param"):
                renamed[dims[index].dim_param] = axis.name
    graph = proto.graph
    for value in (*graph.input, *graph.output, *graph.value_info):
        for dim in value.type.tensor_type.shape.dim:
            if dim.HasField("dim_param") and dim.dim_param in renamed:
                dim.dim_param = renamed[dim.dim_param]


def _legacy_export(
    model: torch.nn.Module,
    inputs: tuple[torch.Tensor, ...],
    plan: ExportPlan,
    names: list[str],
    opset: int,
) -> onnx.ModelProto:
    import onnx
    import torch

    axes = {
        item.spec.name: {index: axis.name for index, axis in item.dynamic.items()}
        for item in plan.inputs
        if item.dynamic
    }
    axes.update({name: dict(found) for name, found in plan.output_axes.items() if found})
    with tempfile.TemporaryDirectory(prefix="zoo-legacy-export-") as folder:
        path = Path(folder) / "model.onnx"  # torch.onnx.export's f is a path
        torch.onnx.export(
            model,
            inputs,
            path,
            dynamo=False,
            input_names=names,
            output_names=plan.output_names,
            opset_version=opset,
            dynamic_axes=axes or None,
            do_constant_folding=True,
        )
        return onnx.load(path)


def _check_io_names(proto: onnx.ModelProto, inputs: list[str], outputs: list[str]) -> None:
    found_inputs = [value.name for value in proto.graph.input]
    found_outputs = [value.name for value in proto.graph.output]
    if found_inputs != inputs:
        raise ExportError(
            f"the graph's inputs are {found_inputs}, expected the card's inputs {inputs}"
        )
    if found_outputs != outputs:
        raise ExportError(
            f"the forward returns {len(found_outputs)} tensors ({found_outputs}), expected "
            f"the {len(outputs)} outputs the export hints name ({outputs})"
        )


def _check_input_axes(proto: onnx.ModelProto, plan: ExportPlan) -> None:
    """The exporter may fall back to a fixed shape on its own; a planned dynamic axis must vary."""
    for value, item in zip(proto.graph.input, plan.inputs, strict=True):
        dims = value.type.tensor_type.shape.dim
        for index, axis in item.dynamic.items():
            if dims[index].HasField("dim_value"):
                raise ExportError(
                    f"input {value.name!r} axis {index} ({axis.name!r}) came out fixed at "
                    f"{dims[index].dim_value}: torch.export could not keep it dynamic at this "
                    "size (the forward's shape arithmetic fixes it); export at another size "
                    "or a static graph"
                )


def _name_output_axes(proto: onnx.ModelProto, plan: ExportPlan) -> None:
    """Give each dynamic output axis the hints' name; a hinted axis left fixed is an error."""
    for value in proto.graph.output:
        dims = value.type.tensor_type.shape.dim
        for index, name in plan.output_axes.get(value.name, {}).items():
            if index >= len(dims):
                raise ExportError(
                    f"output {value.name!r} has {len(dims)} axes; the export hints name axis "
                    f"{index} ({name!r})"
                )
            if dims[index].HasField("dim_value"):
                raise ExportError(
                    f"output {value.name!r} axis {index} came out fixed at "
                    f"{dims[index].dim_value}; the export hints make it dynamic ({name!r})"
                )
            dims[index].dim_param = name


def describe(proto: onnx.ModelProto, card: Card) -> None:
    """Write the card's facts into ``metadata_props``: the file needs nothing else to be run."""
    import onnx

    labels = card.label_names()
    properties = {
        "zoo.card": card.name,
        "zoo.version": __version__,
        "zoo.architecture": card.architecture,
        "zoo.task": card.task,
        "zoo.inputs": json.dumps(
            [
                spec.model_dump(mode="json", include=set(PREPROCESSING_FIELDS))
                for spec in card.inputs
            ]
        ),
        "zoo.outputs": json.dumps([output.name for output in proto.graph.output]),
    }
    if labels is not None:
        properties["zoo.labels"] = json.dumps(labels)
    onnx.helper.set_model_props(proto, properties)
    proto.doc_string = card.summary


def to_float16(proto: onnx.ModelProto) -> onnx.ModelProto:
    """Float16 weights and arithmetic, float32 inputs and outputs (onnxconverter-common)."""
    from onnxconverter_common import float16

    try:
        return float16.convert_float_to_float16(proto, keep_io_types=True)
    except Exception as error:  # the converter raises whatever its graph walk hits
        raise ExportError(f"float16 conversion failed: {root_cause(error)}") from error


def tensor_infos(values: Any) -> list[TensorInfo]:
    """Name, element type and shape (a string for a dynamic axis) of graph inputs or outputs."""
    infos = []
    for value in values:
        tensor = value.type.tensor_type
        shape: list[int | str] = [
            dim.dim_value if dim.HasField("dim_value") else (dim.dim_param or "?")
            for dim in tensor.shape.dim
        ]
        dtype = ELEMENT_TYPES.get(tensor.elem_type, str(tensor.elem_type))
        infos.append(TensorInfo(name=value.name, dtype=dtype, shape=shape))
    return infos


def root_cause(error: BaseException, limit: int = 400) -> str:
    """The first line of the innermost cause: the exporters wrap the reason in pages of advice."""
    while error.__cause__ is not None:
        error = error.__cause__
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = f"{type(error).__name__}: {lines[0] if lines else ''}".rstrip(": ")
    return text if len(text) <= limit else text[: limit - 1] + "…"
