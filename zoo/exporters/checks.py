"""Is the file right? onnx's full checker, then onnxruntime against PyTorch eager.

Each check feeds both the same fresh random inputs: once at the shapes the
graph was exported at, and once (when anything is dynamic) with every dynamic
axis at another size, which is what proves the axis really is dynamic. Every
output is compared as ``max |onnx - torch|`` and that divided by
``max |torch|``; the relative figure must stay within the tolerance. Integer
outputs (class labels) must be equal.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from zoo.errors import ExportError
from zoo.exporters.onnx import random_inputs, root_cause
from zoo.exporters.plan import ExportPlan
from zoo.exporters.report import Check, OutputDifference

if TYPE_CHECKING:
    import numpy as np
    import torch

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
    path: Path, model: torch.nn.Module, plan: ExportPlan, tolerance: float
) -> list[Check]:
    """onnxruntime (CPU) against ``model`` at the export shapes and, if dynamic, other ones."""
    session = ort_session(path)
    checks = [_check(session, model, plan, tolerance, check=False)]
    if plan.dynamic:
        checks.append(_check(session, model, plan, tolerance, check=True))
    return checks


def ort_session(path: Path) -> object:
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
    session: object, model: torch.nn.Module, plan: ExportPlan, tolerance: float, check: bool
) -> Check:
    inputs = random_inputs(plan, check=check, seed=CHECK_SEED if check else EXPORT_SEED)
    names = [item.spec.name for item in plan.inputs]
    expected = eager_outputs(model, inputs)
    feed = {name: tensor.numpy() for name, tensor in zip(names, inputs, strict=True)}
    try:
        found = session.run(plan.output_names, feed)
    except Exception as error:  # onnxruntime raises its own untyped errors
        shapes = {name: array.shape for name, array in feed.items()}
        raise ExportError(f"onnxruntime failed on inputs {shapes}: {root_cause(error)}") from error
    if len(expected) != len(found):
        raise ExportError(
            f"PyTorch returns {len(expected)} tensors, the graph {len(found)} ({plan.output_names})"
        )
    outputs = [
        compare(name, ours, theirs, tolerance)
        for name, ours, theirs in zip(plan.output_names, found, expected, strict=True)
    ]
    return Check(
        name=_describe_shapes(plan, check),
        input_shapes={name: list(x.shape) for name, x in zip(names, inputs, strict=True)},
        outputs=outputs,
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


def _describe_shapes(plan: ExportPlan, check: bool) -> str:
    if not check:
        return "at the export shapes"
    changed = ", ".join(f"{axis.name} {axis.check_size}" for axis in plan.axes().values())
    return f"at other sizes ({changed})"
