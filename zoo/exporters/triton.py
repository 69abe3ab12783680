"""A Triton Inference Server model repository entry for an exported graph.

``REPO/<name>/config.pbtxt`` and ``REPO/<name>/1/model.onnx``, served by the
``onnxruntime_onnx`` platform. The config is written from the exported graph's
own inputs and outputs, so names, types and dims cannot drift from the file:
when every input and output starts with the dynamic batch axis, that axis
becomes ``max_batch_size`` (Triton's implicit batch) and dynamic batching is on;
any other dynamic axis (time, height, width, a detection count) is ``-1``.
Classifiers get their label names as ``labels.txt`` (``label_filename``), which
Triton's classification extension uses to answer with class names.

The text is written directly (no Triton package is needed to export); the tests
parse it into tritonclient's ``ModelConfig`` protobuf, which rejects unknown
fields and enums.
"""

from __future__ import annotations

import json
from pathlib import Path

from zoo.cards import Card
from zoo.exporters.plan import ExportPlan
from zoo.exporters.report import TensorInfo

MODEL_VERSION = "1"
LABELS_FILE = "labels.txt"
CONFIG_FILE = "config.pbtxt"
MAX_BATCH_SIZE = 8
MAX_QUEUE_DELAY_MICROSECONDS = 100
DATA_TYPES = {
    "float32": "TYPE_FP32",
    "float16": "TYPE_FP16",
    "float64": "TYPE_FP64",
    "int32": "TYPE_INT32",
    "int64": "TYPE_INT64",
    "bool": "TYPE_BOOL",
}


def model_file(folder: Path) -> Path:
    """Where the graph goes inside a Triton model folder."""
    return folder / MODEL_VERSION / "model.onnx"


def config_files(card: Card) -> list[str]:
    """The files :func:`write_model_config` writes for ``card``, relative to its folder."""
    return [CONFIG_FILE, *([LABELS_FILE] if _labels(card) else [])]


def _labels(card: Card) -> list[str] | None:
    return card.label_names() if card.task.endswith("classification") else None


def write_model_config(
    folder: Path,
    card: Card,
    plan: ExportPlan,
    inputs: list[TensorInfo],
    outputs: list[TensorInfo],
) -> list[Path]:
    """Write ``config.pbtxt`` (and ``labels.txt`` for a classifier); return the files."""
    batched = _batch_is_implicit(plan, inputs, outputs)
    labels = _labels(card)
    lines = [
        f"name: {json.dumps(card.name)}",
        'platform: "onnxruntime_onnx"',
        f"max_batch_size: {MAX_BATCH_SIZE if batched else 0}",
        *_tensors("input", inputs, batched, label_output=None),
        *_tensors("output", outputs, batched, label_output=outputs[0].name if labels else None),
    ]
    if batched:
        lines += [
            "dynamic_batching {",
            f"  max_queue_delay_microseconds: {MAX_QUEUE_DELAY_MICROSECONDS}",
            "}",
        ]
    lines += ["instance_group [", "  {", "    count: 1", "    kind: KIND_AUTO", "  }", "]"]
    config = folder / CONFIG_FILE
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    written = [config]
    if labels:
        written.append(folder / LABELS_FILE)
        written[-1].write_text("\n".join(labels) + "\n", encoding="utf-8")
    return written


def _batch_is_implicit(
    plan: ExportPlan, inputs: list[TensorInfo], outputs: list[TensorInfo]
) -> bool:
    """Triton's batch axis must lead every input and output and be free to vary."""
    batch_names = {
        axis.name
        for item in plan.inputs
        for index, axis in item.dynamic.items()
        if item.spec.layout[index] == "N"
    }
    return len(batch_names) == 1 and all(
        tensor.shape and tensor.shape[0] in batch_names for tensor in (*inputs, *outputs)
    )


def _tensors(
    kind: str, tensors: list[TensorInfo], batched: bool, label_output: str | None
) -> list[str]:
    lines = [f"{kind} ["]
    for position, tensor in enumerate(tensors):
        dims = tensor.shape[1:] if batched else tensor.shape
        shown = ", ".join(str(dim) if isinstance(dim, int) else "-1" for dim in dims)
        lines += [
            "  {",
            f"    name: {json.dumps(tensor.name)}",
            f"    data_type: {DATA_TYPES[tensor.dtype]}",
            f"    dims: [ {shown} ]",
        ]
        if tensor.name == label_output:
            lines.append(f"    label_filename: {json.dumps(LABELS_FILE)}")
        lines.append("  }," if position < len(tensors) - 1 else "  }")
    lines.append("]")
    return lines
