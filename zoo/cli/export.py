"""``zoo export``: a model to a checked ONNX file, or into a Triton model repository.

The command parses, calls :func:`zoo.export` and prints its report; torch and
the exporters are imported only when it runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import click

from zoo.cli.base import (
    fails_cleanly,
    force_option,
    main,
    megabytes,
    model_source_options,
    weights_arguments,
)
from zoo.cli.predict import quantization_options
from zoo.exporters.report import ExportReport, TensorInfo
from zoo.quantize.report import QuantizationReport


@main.command("export")
@click.argument("name")
@click.option(
    "-o",
    "--output",
    "output_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="Folder to write (onnx), or the Triton model repository to add the model to.",
)
@click.option("--onnx", "onnx_format", is_flag=True, help="Same as --format onnx (the default).")
@click.option(
    "--format",
    "export_format",
    type=click.Choice(["onnx", "triton"]),
    help="onnx: model.onnx, card.yaml, export.json; triton: REPO/NAME/config.pbtxt, 1/model.onnx.",
)
@model_source_options
@click.option(
    "--batch",
    type=click.IntRange(min=1),
    help="Example batch size (default: 2 for a dynamic batch axis, else 1).",
)
@click.option(
    "--frames", type=click.IntRange(min=1), help="Example clip length (default: the card's)."
)
@click.option(
    "--opset", type=click.IntRange(min=7), help="ONNX opset (default: the architecture's)."
)
@click.option("--static", is_flag=True, help="No dynamic axes: every size fixed at the example's.")
@click.option(
    "--precision",
    type=click.Choice(["fp32", "bf16", "fp16", "int8"]),
    default="fp32",
    show_default=True,
    help="fp16: a float16 graph with float32 inputs and outputs; int8: model.int8.onnx too, "
    "quantized on --calibrate inputs and checked against float32.",
)
@click.option("--fp16", is_flag=True, hidden=True, help="Deprecated: --precision fp16.")
@quantization_options[0]
@quantization_options[1]
@quantization_options[2]
@click.option("--no-check", "no_check", is_flag=True, help="Skip onnx.checker and onnxruntime.")
@force_option
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@fails_cleanly
def export(
    name: str,
    output_dir: Path,
    onnx_format: bool,
    export_format: Literal["onnx", "triton"] | None,  # a click.Choice of these
    weights: str | None,
    layout: str | None,
    random_init: bool,
    batch: int | None,
    frames: int | None,
    opset: int | None,
    static: bool,
    precision: str,
    fp16: bool,
    calibrate: str | None,
    validate: str | None,
    accept_drop: bool,
    no_check: bool,
    force: bool,
    as_json: bool,
) -> None:
    """Export model NAME to ONNX and check it against PyTorch with onnxruntime."""
    import zoo

    if onnx_format and export_format == "triton":
        raise click.ClickException("--onnx and --format triton exclude each other")
    if fp16:
        if precision != "fp32":
            raise click.UsageError("--fp16 is --precision fp16; give one of them")
        click.echo("warning: --fp16 is deprecated; use --precision fp16", err=True)
        precision = "fp16"
    report = zoo.export(
        name,
        output_dir,
        format=export_format or "onnx",
        **weights_arguments(weights, layout, random_init),
        batch=batch,
        frames=frames,
        opset=opset,
        dynamic=not static,
        precision=precision,
        calibrate=calibrate,
        validate=validate,
        accept_drop=accept_drop,
        check=not no_check,
        force=force,
    )
    if as_json:
        click.echo(report.model_dump_json(indent=2))
        return
    for line in summary(report):
        click.echo(line)


def summary(report: ExportReport) -> list[str]:
    """The report as a few lines: what was written, the graph's signature, each check."""
    files = ", ".join(report.files)
    lines = [
        f"wrote {report.output_dir}: {files} ({megabytes(report.size_bytes)} model, "
        f"{report.seconds:.1f}s)",
        f"{report.model}: {report.exporter} exporter, opset {report.opset}"
        + ("" if report.precision == "fp32" else f", {report.precision}")
        + f", weights {report.weights}",
    ]
    if report.exporter_reason:
        lines.append(f"  {report.exporter} because {report.exporter_reason}")
    lines.append(f"  inputs  {_signature(report.inputs)}")
    lines.append(f"  outputs {_signature(report.outputs)}")
    if not report.checked:
        lines.append("not checked (--no-check)")
    for runtime, checks in (("", report.checks), ("openvino ", report.openvino_checks)):
        for check in checks:
            differences = "; ".join(output.describe() for output in check.outputs)
            lines.append(
                f"check {runtime}{check.name}: {differences} (tolerance {report.tolerance:g}) "
                + ("ok" if check.passed else "FAILED")
            )
    if report.quantization is not None:
        lines += _quantization_lines(report.quantization)
    return lines


def _quantization_lines(quantization: QuantizationReport) -> list[str]:
    lines = [
        f"int8 {quantization.file}: {quantization.method} from {quantization.calibration} "
        f"({quantization.calibration_inputs} inputs), {megabytes(quantization.size_bytes)}",
        f"  validated on {quantization.validation} ({quantization.validation_inputs} inputs)",
    ]
    for accuracy in quantization.accuracy:
        verdict = "ok" if accuracy.passed else "BELOW, accepted (--accept-drop)"
        lines.append(f"  {accuracy.describe()} (threshold {accuracy.threshold:.0%}) {verdict}")
    return lines


def _signature(tensors: list[TensorInfo]) -> str:
    return ", ".join(f"{t.name} {t.dtype}[{', '.join(str(d) for d in t.shape)}]" for t in tensors)
