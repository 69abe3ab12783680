"""Is the file right? onnx's full checker, then onnxruntime (and OpenVINO) against PyTorch.

Each check feeds both the same fresh random inputs: once at the shapes the
graph was exported at, and once (when anything is dynamic) with every dynamic
axis at another size, which is what proves the axis really is dynamic. Every
output is compared as ``max |onnx - torch|`` and that divided by
``max |torch|``; the relative figure must stay within the tolerance. Integer
outputs (class labels) must be equal. Outputs whose first axis is the hints'
``set_axis`` (a detector's detections) are rows of one set: rows are matched
before comparing, since two rows whose scores tie may come in either order.
OpenVINO, when installed, runs the same checks; they are reported beside onnxruntime's
and decide whether the OpenVINO backend may run the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from zoo.errors import ExportError, RuntimeCompileError
from zoo.exporters.onnx import random_inputs, root_cause
from zoo.exporters.plan import ExportPlan
from zoo.exporters.report import Check, OutputDifference

if TYPE_CHECKING:
    import numpy as np
    import torch
    from onnxruntime import InferenceSession

TINY = 1e-12
EXPORT_SEED, CHECK_SEED = 1, 2


def check_file(path: Path) -> None:
    """onnx.checker with ``full_check``: the graph, its types and shapes are consistent."""
    import onnx

    try:
        onnx.checker.check_model(str(path), full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as error:
        raise ExportError(f"onnx.checker rejects {path.name}: {root_cause(error)}") from error


def run_checks(
    path: Path,
    model: torch.nn.Module,
    plan: ExportPlan,
    tolerance: float,
    set_axis: str | None = None,
) -> list[Check]:
    """onnxruntime (CPU) against ``model`` at the export shapes and, if dynamic, other ones."""
    session = ort_session(path)
    shapes = [False, True] if plan.dynamic else [False]
    return [_check(session, model, plan, tolerance, set_axis, check) for check in shapes]


def openvino_checks(
    path: Path,
    model: torch.nn.Module,
    plan: ExportPlan,
    tolerance: float,
    set_axis: str | None = None,
) -> list[Check]:
    """The same checks with OpenVINO (float32, set explicitly) when it is installed, else none.

    A graph OpenVINO cannot compile gives no checks and no error: the file is still right
    for onnxruntime, and the OpenVINO backend falls back to onnxruntime for it.
    """
    try:
        session = _OpenVinoSession(path)
    except ModuleNotFoundError:
        return []
    except RuntimeCompileError:
        return []
    shapes = [False, True] if plan.dynamic else [False]
    return [_check(session, model, plan, tolerance, set_axis, check) for check in shapes]


class _OpenVinoSession:
    """OpenVINO's compiled model behind onnxruntime's ``run(names, feed)``, for :func:`_check`."""

    def __init__(self, path: Path) -> None:
        import openvino

        from zoo.inference.precision import OPENVINO_HINTS

        try:
            compiled = openvino.Core().compile_model(
                str(path), "CPU", {"INFERENCE_PRECISION_HINT": OPENVINO_HINTS["fp32"]}
            )
        except Exception as error:  # OpenVINO raises plain RuntimeErrors
            raise RuntimeCompileError(f"OpenVINO cannot compile {path.name}: {error}") from None
        self.request = compiled.create_infer_request()
        self.outputs = {port.get_any_name(): port for port in compiled.outputs}

    def run(self, names: list[str], feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        results = self.request.infer(feed)
        return [results[self.outputs[name]].copy() for name in names]


def ort_session(path: Path) -> InferenceSession:
    import onnxruntime

    try:
        return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own untyped errors
        raise ExportError(f"onnxruntime cannot load {path.name}: {root_cause(error)}") from error


def eager_outputs(model: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> list[np.ndarray]:
    """The forward's tensors, flattened in order (dicts by insertion, lists of dicts too)."""
    import torch
    from torch.utils._pytree import tree_leaves

    try:
        with torch.inference_mode():
            result = model(*inputs)
    except (ValueError, RuntimeError, TypeError) as error:
        shapes = ", ".join(str(tuple(tensor.shape)) for tensor in inputs)
        raise ExportError(f"the model does not take inputs of shape {shapes}: {error}") from error
    return [leaf.numpy() for leaf in tree_leaves(result) if isinstance(leaf, torch.Tensor)]


def _check(
    session: InferenceSession | _OpenVinoSession,
    model: torch.nn.Module,
    plan: ExportPlan,
    tolerance: float,
    set_axis: str | None,
    check: bool,
) -> Check:
    inputs = random_inputs(plan, check=check, seed=CHECK_SEED if check else EXPORT_SEED)
    names = [item.spec.name for item in plan.inputs]
    expected = eager_outputs(model, inputs)
    feed = {name: tensor.numpy() for name, tensor in zip(names, inputs, strict=True)}
    try:
        found = session.run(plan.output_names, feed)
    except Exception as error:  # onnxruntime raises its own untyped errors
        shapes = {name: array.shape for name, array in feed.items()}
        runtime = "OpenVINO" if isinstance(session, _OpenVinoSession) else "onnxruntime"
        raise ExportError(f"{runtime} failed on inputs {shapes}: {root_cause(error)}") from error
    if len(expected) != len(found):
        raise ExportError(
            f"PyTorch returns {len(expected)} tensors, the graph {len(found)} ({plan.output_names})"
        )
    found, reordered = _in_expected_order(found, expected, plan, set_axis)
    outputs = [
        compare(name, ours, theirs, tolerance)
        for name, ours, theirs in zip(plan.output_names, found, expected, strict=True)
    ]
    return Check(
        name=_describe_shapes(plan, check),
        input_shapes={name: list(x.shape) for name, x in zip(names, inputs, strict=True)},
        outputs=outputs,
        reordered=reordered,
        passed=all(output.passed for output in outputs),
    )


def compare(
    name: str, found: np.ndarray, expected: np.ndarray, tolerance: float
) -> OutputDifference:
    """Largest absolute and relative difference; integers must match exactly."""
    import numpy as np

    if found.shape != expected.shape:
        return OutputDifference(
            name=name,
            shape=list(found.shape),
            expected_shape=list(expected.shape),
            passed=False,
        )
    if expected.size == 0:
        return OutputDifference(
            name=name, shape=list(found.shape), max_abs=0.0, max_rel=0.0, passed=True
        )
    difference = np.abs(found.astype(np.float64) - expected.astype(np.float64))
    max_abs = float(difference.max())
    max_rel = max_abs / max(float(np.abs(expected.astype(np.float64)).max()), TINY)
    exact = not np.issubdtype(expected.dtype, np.floating)
    return OutputDifference(
        name=name,
        shape=list(found.shape),
        max_abs=max_abs,
        max_rel=max_rel,
        passed=max_abs == 0 if exact else max_rel <= tolerance,
    )


def _in_expected_order(
    found: list[np.ndarray], expected: list[np.ndarray], plan: ExportPlan, set_axis: str | None
) -> tuple[list[np.ndarray], bool]:
    """The set outputs' rows matched to PyTorch's, and whether that changed their order."""
    import numpy as np

    if set_axis is None:
        return found, False
    in_set = [axes.get(0) == set_axis for axes in plan.output_axes.values()]
    matched = match_rows(found, expected, in_set)
    reordered = any(not np.array_equal(a, b) for a, b in zip(matched, found, strict=True))
    return matched, reordered


def match_rows(
    found: list[np.ndarray], expected: list[np.ndarray], in_set: list[bool]
) -> list[np.ndarray]:
    """``found`` with the rows of the set outputs reordered to best match ``expected``'s.

    Each row (a detection: its box, score and label together) is scaled output by
    output to PyTorch's largest magnitude, and paired greedily, in PyTorch's order,
    with the closest unpaired row. Outputs whose row counts differ are left alone:
    the comparison reports the shapes.
    """
    import numpy as np

    chosen = [index for index, member in enumerate(in_set) if member]
    counts = {found[index].shape[0] for index in chosen} | {expected[i].shape[0] for i in chosen}
    if not chosen or len(counts) != 1 or counts == {0}:
        return found
    scale = {index: max(float(np.abs(expected[index]).max()), TINY) for index in chosen}
    ours, theirs = _rows(found, scale), _rows(expected, scale)
    order, free = [], list(range(len(ours)))
    for row in theirs:
        nearest = min(free, key=lambda candidate: float(np.abs(ours[candidate] - row).max()))
        order.append(nearest)
        free.remove(nearest)
    return [array[order] if member else array for array, member in zip(found, in_set, strict=True)]


def _rows(arrays: list[np.ndarray], scale: dict[int, float]) -> np.ndarray:
    """One row per set entry: the chosen outputs flattened side by side, each scaled."""
    import numpy as np

    columns = [arrays[index].reshape(len(arrays[index]), -1) / s for index, s in scale.items()]
    return np.concatenate(columns, axis=1)


def _describe_shapes(plan: ExportPlan, check: bool) -> str:
    if not check:
        return "at the export shapes"
    changed = ", ".join(f"{axis.name} {axis.check_size}" for axis in plan.axes().values())
    return f"at other sizes ({changed})"
