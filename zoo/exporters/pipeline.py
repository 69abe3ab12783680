"""One export path for every registered model: card + export hints -> checked ONNX file.

The steps are the same for every architecture: plan the shapes (card and
hints), stage the output folder, build the model, export it, describe it,
convert it to float16 if asked, check it, write the card and the report, and
rename the folder into place. Nothing here knows an architecture by name.
"""

from __future__ import annotations

import io
import logging
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stderr
from importlib.metadata import PackageNotFoundError, version
from numbers import Integral
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING

from zoo import weights as weight_store
from zoo.architecture import Architecture, ExportHints
from zoo.cards import Card
from zoo.errors import ExportCheckError, ExportError, OptionError, OutputError, WeightsError
from zoo.exporters import checks, triton
from zoo.exporters.onnx import describe, export_graph, random_inputs, tensor_infos, to_float16
from zoo.exporters.plan import ExportPlan, plan_export
from zoo.exporters.report import Check, ExportReport, Format
from zoo.loading import HF_HUB_PREFIX, load
from zoo.output import staged_folder
from zoo.quantize.report import QuantizationReport
from zoo.registry import Registry, current_registry
from zoo.version import __version__
from zoo.weights.folder import folder_source

if TYPE_CHECKING:
    import onnx
    import torch

MODEL_FILE = "model.onnx"
CARD_FILE = "card.yaml"
REPORT_FILE = "export.json"
#: The oldest opset torch's exporters write (its legacy exporter's minimum).
MIN_OPSET = 7


def export(
    name_or_card: str | Card,
    output_dir: str | PathLike[str],
    *,
    format: Format = "onnx",
    weights: str | PathLike[str] | None = None,
    layout: str | None = None,
    pretrained: bool = True,
    batch: int | None = None,
    frames: int | None = None,
    opset: int | None = None,
    dynamic: bool = True,
    precision: str = "fp32",
    calibrate: str | PathLike[str] | None = None,
    validate: str | PathLike[str] | None = None,
    accept_drop: bool = False,
    check: bool = True,
    force: bool = False,
    registry: Registry | None = None,
) -> ExportReport:
    """Export a model to ``output_dir`` and check it; see :func:`zoo.export`."""
    started = time.perf_counter()
    if format not in ("onnx", "triton"):
        raise ExportError(f"unknown export format {format!r}; expected 'onnx' or 'triton'")
    _check_precision(precision, format, calibrate, validate)
    fp16 = precision == "fp16"
    if layout is not None and weights is None:
        raise ExportError(f"layout {layout!r} describes a weights file; none was given")
    _check_opset(opset)
    registry = registry or current_registry()
    local = folder_source(name_or_card, weights, pretrained)
    if local is not None:
        name_or_card, weights = local
    card = _card(name_or_card, registry)
    architecture = registry.architecture(card.architecture)
    hints = architecture.export
    plan = plan_export(card, hints, batch=batch, frames=frames, dynamic=dynamic)
    output_dir = Path(output_dir)
    target = output_dir / card.name if format == "triton" else output_dir
    tolerance = hints.fp16_tolerance if fp16 else hints.tolerance
    with (
        _staged(target, _planned_files(card, format, precision), force) as folder,
        _progress(card.name, precision, check) as step,  # on the terminal's stderr, taken first
        _collected_warnings() as caught,
    ):
        step("build")
        model = _model(name_or_card, card, pretrained, weights, layout, registry)
        model_path = triton.model_file(folder) if format == "triton" else folder / MODEL_FILE
        proto = _write_graph(model, card, hints, plan, model_path, opset, fp16, step)
        results = _check_graph(model_path, model, plan, tolerance, hints, step) if check else []
        ov_results = (
            checks.openvino_checks(model_path, model, plan, tolerance, hints.set_axis)
            if check and precision != "fp16"
            else []
        )
        quantization = None
        if precision == "int8" and calibrate is not None and all(r.passed for r in results):
            step("int8")
            quantization = _quantized(model_path, card, architecture, calibrate, validate)
            quantization = _accepted(quantization, card, accept_drop)
        step("write")
        inputs, outputs = tensor_infos(proto.graph.input), tensor_infos(proto.graph.output)
        files = [model_path, folder / CARD_FILE, folder / REPORT_FILE]
        if quantization is not None:
            files.append(folder / quantization.file)
        if format == "triton":
            files += triton.write_model_config(folder, card, plan, inputs, outputs)
        report = ExportReport(
            model=card.name,
            architecture=card.architecture,
            format=format,
            output_dir=str(target),
            files=sorted(str(path.relative_to(folder)) for path in files),
            weights=_weights_used(pretrained, weights),
            exporter=hints.exporter,
            exporter_reason=hints.exporter_reason,
            opset=_opset(proto),
            dynamic=plan.dynamic,
            precision=precision,
            inputs=inputs,
            outputs=outputs,
            checked=check,
            tolerance=tolerance,
            checks=results,
            passed=all(result.passed for result in results),
            openvino_checks=ov_results,
            size_bytes=model_path.stat().st_size,
            seconds=round(time.perf_counter() - started, 3),
            versions=_versions(),
            warnings=caught.lines(),
            quantization=quantization,
        )
        if not report.passed:
            raise ExportCheckError(
                f"{card.name}: onnxruntime differs from PyTorch beyond the tolerance: "
                + "; ".join(report.failures()),
                report,
            )
        (folder / CARD_FILE).write_text(card.to_yaml(), encoding="utf-8")
        (folder / REPORT_FILE).write_text(report.model_dump_json(indent=2), encoding="utf-8")
    return report


def _planned_files(card: Card, format: Format, precision: str) -> list[str]:
    """What an export of ``card`` writes into its folder, known before any work."""
    from zoo.quantize.report import INT8_FILE

    if format == "triton":
        model = triton.model_file(Path()).as_posix()
        return [model, CARD_FILE, REPORT_FILE, *triton.config_files(card)]
    return [MODEL_FILE, CARD_FILE, REPORT_FILE, *([INT8_FILE] if precision == "int8" else [])]


@contextmanager
def _staged(target: Path, files: list[str], force: bool) -> Iterator[Path]:
    """zoo's output rule (:func:`zoo.output.staged_folder`), its refusals as ExportErrors."""
    try:
        with staged_folder(target, files, force=force) as folder:
            yield folder
    except OutputError as error:
        raise ExportError(str(error)) from None


def _write_graph(
    model: torch.nn.Module,
    card: Card,
    hints: ExportHints,
    plan: ExportPlan,
    path: Path,
    opset: int | None,
    fp16: bool,
    step: Callable[[str], None],
) -> onnx.ModelProto:
    """Export, describe, optionally convert to float16, and save the graph to ``path``."""
    import onnx

    example = random_inputs(plan, check=False, seed=checks.EXPORT_SEED)
    checks.eager_outputs(model, example)  # a clear error for inputs the model refuses
    step(f"export ({hints.exporter})")
    proto = export_graph(model, example, plan, hints, opset or hints.opset)
    _check_written_opset(proto, opset, hints)
    describe(proto, card)
    if fp16:
        step("float16")
        proto = to_float16(proto)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(proto, str(path))
    return proto


def _check_precision(
    precision: str,
    format: str,
    calibrate: str | PathLike[str] | None,
    validate: str | PathLike[str] | None,
) -> None:
    """The precisions a file can have, and the inputs only int8 takes."""
    if precision == "bf16":
        raise ExportError(
            "precision bf16 is a way to run a float32 graph, not a file: export fp32 and run "
            "it with --precision bf16 (OpenVINO, or torch autocast)"
        )
    if precision not in ("fp32", "fp16", "int8"):
        raise ExportError(f"unknown precision {precision!r}; expected fp32, fp16 or int8")
    if precision == "int8" and calibrate is None:
        raise ExportError(
            "precision int8 needs calibration inputs: --calibrate DIR (calibrate=), a folder "
            "or manifest of inputs like those the model will see"
        )
    if precision == "int8" and format == "triton":
        raise ExportError("precision int8 writes an ONNX folder; export it with --format onnx")
    if precision != "int8" and (calibrate is not None or validate is not None):
        raise ExportError("--calibrate and --validate are inputs for --precision int8")


def _quantized(
    model_path: Path,
    card: Card,
    architecture: Architecture,
    calibrate: str | PathLike[str],
    validate: str | PathLike[str] | None,
) -> QuantizationReport:
    """``model.int8.onnx`` beside the checked float32 file, with the gate's figures."""
    from zoo.quantize.int8 import quantize

    return quantize(
        model_path, card, architecture, calibrate=calibrate, validate=validate, accept_drop=True
    )


def _accepted(
    quantization: QuantizationReport, card: Card, accept_drop: bool
) -> QuantizationReport:
    """The report, or the gate's refusal with its numbers (the staged folder then goes)."""
    from zoo.quantize.gate import enforce

    for accuracy in quantization.accuracy:
        enforce(accuracy, card.name, accept_drop=accept_drop)
    return quantization


def _check_graph(
    path: Path,
    model: torch.nn.Module,
    plan: ExportPlan,
    tolerance: float,
    hints: ExportHints,
    step: Callable[[str], None],
) -> list[Check]:
    step("check")
    checks.check_file(path)
    return checks.run_checks(path, model, plan, tolerance, hints.set_axis)


def _check_opset(opset: int | None) -> None:
    """An opset that exists: the exporters would silently write another one instead."""
    if opset is None:
        return
    import onnx

    newest = onnx.defs.onnx_opset_version()
    if (
        isinstance(opset, bool)
        or not isinstance(opset, Integral)
        or not MIN_OPSET <= opset <= newest
    ):
        raise OptionError(
            f"{{opset}} {opset!r} is not an opset zoo can export to: the installed onnx "
            f"knows opsets {MIN_OPSET} to {newest}",
            "opset",
        )


def _check_written_opset(proto: onnx.ModelProto, opset: int | None, hints: ExportHints) -> None:
    """The graph has the opset asked for; torch's exporters fall back to another silently."""
    written = _opset(proto)
    if opset is not None and written != opset:
        raise OptionError(
            f"the {hints.exporter} exporter cannot write this model at {{opset}} {opset} (it "
            f"wrote opset {written} instead); ask for opset {written} or later, or leave "
            "{opset} out for the architecture's own",
            "opset",
        )
    if opset is None and written != hints.opset:
        raise ExportError(
            f"the {hints.exporter} exporter wrote opset {written}, not the opset {hints.opset} "
            "the architecture's ExportHints name; correct ExportHints.opset"
        )


def _card(name_or_card: str | Card, registry: Registry) -> Card:
    if isinstance(name_or_card, Card):
        return name_or_card
    if name_or_card.startswith(HF_HUB_PREFIX):
        spec = name_or_card.removeprefix(HF_HUB_PREFIX)
        return weight_store.fetch_hub_repo(spec, with_weights=False)[0]
    return registry.card(name_or_card)


def _model(
    name_or_card: str | Card,
    card: Card,
    pretrained: bool,
    weights: str | PathLike[str] | None,
    layout: str | None,
    registry: Registry,
) -> torch.nn.Module:
    """The model in eval mode; missing weights name both ways to export without them."""
    source = (
        name_or_card
        if isinstance(name_or_card, str) and name_or_card.startswith(HF_HUB_PREFIX)
        else card
    )
    try:
        return load(
            source, pretrained=pretrained, weights=weights, layout=layout, registry=registry
        )
    except WeightsError as error:
        if weights is not None or not pretrained:
            raise
        raise WeightsError(
            f"{error}; to export without the pretrained weights, use random ones (--random, "
            "pretrained=False) or a local file (--weights FILE, weights=...)"
        ) from error


def _weights_used(pretrained: bool, weights: str | PathLike[str] | None) -> str:
    if weights is not None:
        return str(weights)
    return "pretrained" if pretrained else "random"


def _opset(proto: onnx.ModelProto) -> int:
    return next(entry.version for entry in proto.opset_import if entry.domain in ("", "ai.onnx"))


def _versions() -> dict[str, str]:
    found = {"zoo": __version__}
    for package in ("torch", "onnx", "onnxruntime", "openvino", "nncf"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            continue
    return found


class _Caught(logging.Handler):
    """Warnings and log records (torch.onnx, onnx-ir, the converters) kept for the report."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[warnings.WarningMessage] = []
        self.logged: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.logged.append(f"{record.name}: {record.getMessage()}")

    def lines(self) -> list[str]:
        messages = [f"{w.category.__name__}: {w.message}" for w in self.records] + self.logged
        return sorted({_first_line(message) for message in messages})


@contextmanager
def _collected_warnings() -> Iterator[_Caught]:
    """Keep what the exporters warn, log and print about for the report, off the terminal.

    torch.onnx logs through a stderr handler of its own that does not propagate (and that
    torch re-installs while exporting), so what reaches stderr meanwhile is kept too.
    """
    caught = _Caught()
    root = logging.getLogger()
    root.addHandler(caught)
    printed = io.StringIO()
    try:
        with warnings.catch_warnings(record=True) as records, redirect_stderr(printed):
            warnings.simplefilter("always")
            caught.records = records
            yield caught
    finally:
        root.removeHandler(caught)
        caught.logged += [line for line in printed.getvalue().splitlines() if line.strip()]


def _first_line(message: str, limit: int = 300) -> str:
    return (message.strip().splitlines() or [""])[0][:limit]


@contextmanager
def _progress(name: str, precision: str, check: bool) -> Iterator[Callable[[str], None]]:
    """A step counter on stderr, shown only on a terminal (tqdm's ``disable=None``)."""
    from tqdm.auto import tqdm

    total = 3 + (precision != "fp32") + check  # build, export, [float16], [check], [int8], write
    with tqdm(total=total, desc=f"export {name}", unit="step", disable=None, leave=False) as bar:

        def step(label: str) -> None:
            bar.set_postfix_str(label, refresh=False)
            bar.update(1)

        yield step
