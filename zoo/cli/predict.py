"""``zoo predict`` and ``zoo bench``: run a model on files, or time it.

Both build a predictor (torch is imported when they run, never at import) and only parse
and print: decoding, batching and results are :mod:`zoo.inference`'s. ``zoo predict``
reports a bad input on one line and carries on with the others; its exit status is 1
when any input failed (with a count of them, when there were several inputs).
"""

from __future__ import annotations

import functools
import json
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from zoo.cli.base import (
    FiniteFloat,
    device_option,
    echo_table,
    fails_cleanly,
    main,
    model_source_options,
    weights_arguments,
)
from zoo.cli.jobs import corpus_options, finish, job_arguments

if TYPE_CHECKING:
    from zoo.inference import Predictor, Result
    from zoo.inference.bench import BenchReport

PRECISIONS = click.Choice(["fp32", "bf16", "fp16", "int8"])
BACKENDS = click.Choice(["torch", "onnxruntime", "openvino"])
MEMORY_FORMATS = click.Choice(["contiguous", "channels_last"])
#: The runtime options' keywords of zoo.predictor, by the name click gives each option.
RUNTIME_KEYWORDS = {
    "device": "device",
    "precision": "precision",
    "backend": "backend",
    "onnx": "onnx",
    "memory_format": "memory_format",
    "compile_": "compile",
    "calibrate": "calibrate",
    "validate": "validate",
    "accept_drop": "accept_drop",
}


def runtime_options(command: Any) -> Any:
    """Where and how the model runs; defaults are the architecture's fastest measured way.

    Every option lands in the command's keyword ``runtime`` (a dict of
    :func:`zoo.predictor` keywords), so each command that builds a predictor takes them
    all alike and passes them on with ``build(name, runtime, source)``.
    """
    options = [
        device_option,
        click.option(
            "--precision",
            type=PRECISIONS,
            help="fp32 (default); bf16 (OpenVINO or torch autocast; a CPU needs AVX512-BF16 or "
            "AMX); fp16 (torch autocast, GPU); int8 (needs --calibrate or an int8 --onnx).",
        ),
        click.option("--backend", type=BACKENDS, help="Default: the architecture's fastest."),
        click.option(
            "--onnx",
            type=click.Path(exists=True, dir_okay=False),
            help="The model.onnx (or model.int8.onnx) `zoo export` wrote, for an ONNX backend.",
        ),
        click.option("--memory-format", type=MEMORY_FORMATS, help="Override the default."),
        click.option("--compile/--no-compile", "compile_", default=None, help="torch.compile"),
        *quantization_options,
    ]
    for option in reversed(options):
        command = option(command)
    return _collected(command, RUNTIME_KEYWORDS, "runtime")


quantization_options = [
    click.option(
        "--calibrate",
        type=click.Path(exists=True),
        help="int8: a folder or manifest of inputs to quantize with (pre-processed as "
        "predict does); a fifth is held out to check agreement unless --validate is given.",
    ),
    click.option(
        "--validate",
        type=click.Path(exists=True),
        help="int8: a folder or manifest of held-out inputs to compare with float32 on.",
    ),
    click.option(
        "--accept-drop",
        is_flag=True,
        help="int8: use the quantized model even below the agreement threshold.",
    ),
]


def _collected(command: Any, keywords: dict[str, str], into: str) -> Any:
    """``command`` taking the options named in ``keywords`` as one dict keyword ``into``."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        kwargs[into] = {keywords[name]: kwargs.pop(name) for name in keywords}
        return command(*args, **kwargs)

    return wrapper


def build(name: str, runtime: dict[str, Any], source: dict[str, Any], **extra: Any) -> Predictor:
    from zoo.inference import predictor

    return predictor(name, **runtime, **source, **extra)


@main.command()
@click.argument("name")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--topk", default=5, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--threshold",
    default=0.5,
    show_default=True,
    type=FiniteFloat(0, 1),
    help="Detectors: the lowest score kept.",
)
@click.option("--clips", type=click.IntRange(min=1), help="Clips (frames, frame-wise) averaged.")
@click.option(
    "--max-frames",
    type=click.IntRange(min=1),
    help="Longest whole-video clip run at once (192); longer ones run in windows.",
)
@click.option("--batch-size", default=8, show_default=True, type=click.IntRange(min=1))
@runtime_options
@model_source_options
@click.option("--json", "as_json", is_flag=True, help="One JSON object per input, per line.")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    help="Folder for written outputs (forecast GIFs); or a results table (.parquet): one row "
    "per input, resumable, INPUTS may be folders, globs and manifests.",
)
@corpus_options
@click.option(
    "--show-input",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the exact model input as a contact sheet (.png) or animation (.gif).",
)
@click.pass_context
@fails_cleanly
def predict(
    context: click.Context,
    name: str,
    inputs: tuple[str, ...],
    topk: int,
    threshold: float,
    clips: int | None,
    max_frames: int | None,
    batch_size: int,
    runtime: dict[str, Any],
    weights: str | None,
    layout: str | None,
    random_init: bool,
    as_json: bool,
    output: Path | None,
    show_input: Path | None,
    **corpus: Any,
) -> None:
    """Run model NAME on INPUTS (images or videos) and print labels, boxes or forecasts.

    With -o results.parquet the inputs run as a corpus job (see `zoo features`): one row per
    input in the table, a rerun computes only what is missing, bad inputs are listed.
    """
    from zoo.output import output_folder

    source = weights_arguments(weights, layout, random_init)
    extra: dict[str, Any] = {"clips": clips, "max_frames": max_frames}
    if output is not None and output.suffix.lower() == ".parquet":
        if show_input is not None or as_json:
            raise click.UsageError("--show-input and --json print per input; -o writes a table")
        from zoo.corpus import predict as run

        report = run(
            name,
            inputs,
            output,
            topk=topk,
            threshold=threshold,
            batch_size=batch_size,
            progress=sys.stderr.isatty(),
            **job_arguments(corpus),
            **runtime,
            **source,
            **extra,
        )
        finish(context, report, as_json=False)
        return
    force = corpus.pop("force")
    _refuse_corpus_options(corpus, output)
    predictor = build(name, runtime, source, **extra)
    gifs = _forecast_files(inputs) if output is not None and _forecasts(predictor) else []
    folder = output_folder(output, gifs, force=force) if output and gifs else nullcontext()
    with folder:
        if show_input is not None:
            _show_inputs(predictor, inputs, show_input)
        failed = _predict_all(
            predictor,
            inputs,
            [output / name for name in gifs] if output else [],
            as_json=as_json,
            options={"topk": topk, "threshold": threshold, "batch_size": batch_size},
        )
    if failed:
        if len(inputs) > 1:  # one input's error line already says everything
            click.echo(f"error: {failed} of {len(inputs)} inputs failed", err=True)
        context.exit(1)


def _predict_all(
    predictor: Predictor,
    inputs: tuple[str, ...],
    gifs: list[Path],
    *,
    as_json: bool,
    options: dict[str, Any],
) -> int:
    """Print each input's result (writing its forecast GIF, if any); return the failures."""
    from tqdm import tqdm

    from zoo.errors import InputError
    from zoo.inference.results import Forecast

    outcomes = predictor.stream(inputs, **options)
    failed = 0
    bar = tqdm(total=len(inputs), unit="input", file=sys.stderr, disable=not sys.stderr.isatty())
    with bar:
        for number, outcome in enumerate(outcomes):
            bar.update()
            if isinstance(outcome, InputError):
                failed += 1
                bar.write(f"error: {outcome}", file=sys.stderr)
                continue
            if gifs and isinstance(outcome, Forecast):
                outcome = outcome.write_gif(gifs[number])
            _print_result(outcome, as_json, bar)
    return failed


def _refuse_corpus_options(corpus: dict[str, Any], output: Path | None) -> None:
    """Corpus options mean nothing without a results table; -o must then be a folder."""
    given = [
        f"--{key.replace('_', '-')}"
        for key, value in corpus.items()
        if value not in (None, False, "local")
    ]
    if given:
        raise click.UsageError(f"{', '.join(given)} apply to a results table: -o results.parquet")
    if output is not None and output.exists() and not output.is_dir():
        raise click.UsageError(
            f"-o {output} is a file; give a folder (for forecast GIFs) or a .parquet table"
        )


def _show_inputs(predictor: Predictor, inputs: tuple[str, ...], path: Path) -> None:
    """The model input of each decodable input as a picture (``<stem>-<n>`` for several)."""
    from zoo.errors import InputError

    for number, item in enumerate(inputs, start=1):
        target = path if len(inputs) == 1 else path.with_name(f"{path.stem}-{number}{path.suffix}")
        try:
            pictures = predictor.show_input(predictor.preprocess(item), target)
        except InputError:
            continue  # reported once, with the prediction's errors
        for picture in pictures:
            click.echo(f"wrote {picture} (model input of {item})", err=True)


def _forecasts(predictor: Predictor) -> bool:
    return predictor.card.task == "video-forecasting"


def _forecast_files(inputs: tuple[str, ...]) -> list[str]:
    """``<stem>.forecast.gif`` per input, in order; a repeated stem gets ``-2``, ``-3``, ..."""
    names: list[str] = []
    for source in inputs:
        stem = Path(source).stem
        name, number = f"{stem}.forecast.gif", 1
        while name in names:
            number += 1
            name = f"{stem}-{number}.forecast.gif"
        names.append(name)
    return names


def _print_result(result: Result, as_json: bool, bar: Any) -> None:
    data = result.to_json_data()
    lines = [json.dumps(data)] if as_json else _table(data)
    for line in lines:
        bar.write(line, file=sys.stdout)


def _table(data: dict[str, Any]) -> list[str]:
    """A readable block per result: a heading line, then a table by task."""
    heading = f"{data['input']}  ({data['model']}{'; ' + data['note'] if data['note'] else ''})"
    if "predictions" in data:
        rows = [
            [str(rank), row["label"], str(row["index"]), f"{row['score']:.4f}"]
            for rank, row in enumerate(data["predictions"], start=1)
        ]
        return [heading, *_indented(["rank", "label", "index", "score"], rows)]
    if "detections" in data:
        rows = [
            [row["label"], f"{row['score']:.3f}", ", ".join(f"{v:.1f}" for v in row["box"])]
            for row in data["detections"]
        ]
        summary = f"  {len(rows)} detections with score > {data['threshold']}"
        return [heading, summary, *_indented(["label", "score", "box (x1, y1, x2, y2)"], rows)]
    if "forecast" in data:
        where = data["forecast"] or "not written (give -o DIR to write a GIF)"
        return [heading, f"  forecast {'x'.join(map(str, data['shape']))}: {where}"]
    return [heading, *(f"  {key}: {shape}" for key, shape in data["shapes"].items())]


def _indented(header: list[str], rows: list[list[str]]) -> list[str]:
    if not rows:
        return []
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = []
    for row in [header, *rows]:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        lines.append(("  " + "  ".join(cells)).rstrip())
    return lines


@main.command()
@click.argument("name")
@click.option("--batch", default=1, show_default=True, type=click.IntRange(min=1))
@click.option("--warmup", default=3, show_default=True, type=click.IntRange(min=0))
@click.option("--steps", default=10, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--threads", type=click.IntRange(min=1), help="torch, onnxruntime and OpenVINO threads."
)
@click.option(
    "--compare",
    is_flag=True,
    help="Run eager, channels_last, torch.compile, onnxruntime and openvino on the same input, "
    "then bf16 and int8 (with --calibrate) against float32.",
)
@runtime_options
@model_source_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@fails_cleanly
def bench(
    name: str,
    batch: int,
    warmup: int,
    steps: int,
    threads: int | None,
    compare: bool,
    runtime: dict[str, Any],
    weights: str | None,
    layout: str | None,
    random_init: bool,
    as_json: bool,
) -> None:
    """Time model NAME's forward on its card's example input: throughput, latency, memory."""
    import torch

    from zoo.errors import ZooError
    from zoo.inference import bench as benchmarks

    if threads is not None:
        torch.set_num_threads(threads)
    source = weights_arguments(weights, layout, random_init)
    timing: dict[str, Any] = {"batch": batch, "warmup": warmup, "steps": steps}
    if not compare:
        reports = [benchmarks.benchmark(build(name, runtime, source), **timing)]
    else:
        chosen = {key: runtime.pop(key) for key in COMPARED}
        if any(value is not None for value in chosen.values()):
            raise click.UsageError("--compare runs every variant; drop " + _given(chosen))
        variants = [*benchmarks.VARIANTS, *benchmarks.REDUCED_VARIANTS]
        reports, failures = benchmarks.compare(name, variants, **timing, **runtime, **source)
        for variant, problem in failures.items():
            click.echo(f"warning: variant {variant} did not run: {problem}", err=True)
        if not reports:
            raise ZooError(f"no variant of {name} ran")
    if as_json:
        click.echo(json.dumps([report.model_dump(mode="json") for report in reports], indent=2))
        return
    _bench_table(reports)


#: What ``--compare`` chooses itself for each variant.
COMPARED = ("backend", "precision", "onnx", "memory_format", "compile")


def _given(options: dict[str, Any]) -> str:
    given = [key.replace("_", "-") for key, value in options.items() if value is not None]
    return ", ".join(f"--{key}" for key in given)


def _bench_table(reports: list[BenchReport]) -> None:
    first = reports[0]
    click.echo(
        f"{first.model}: batch {first.batch}, inputs {first.input_shapes}, "
        f"{first.parameters / 1e6:.1f}M parameters, "
        f"{'?' if first.gmacs is None else f'{first.gmacs:.2f}'} GMACs per sample, "
        f"{first.threads} threads, {first.steps} timed steps after {first.warmup} warm-up"
    )
    rows = [
        [
            report.variant,
            ", ".join(f"{key}={value}" for key, value in report.settings.items() if key != "file"),
            f"{report.samples_per_second:.2f}",
            f"{report.latency_ms_median:.1f}",
            f"{report.latency_ms_p95:.1f}",
            "-" if report.gflops is None else f"{report.gflops:.1f}",
            "-" if report.peak_memory_mb is None else f"{report.peak_memory_mb:.0f}",
            "-" if report.speedup is None else f"{report.speedup:.2f}x",
            _agreement(report),
        ]
        for report in reports
    ]
    header = [
        "variant",
        "settings",
        "samples/s",
        "median ms",
        "p95 ms",
        "GFLOP/s",
        "peak MB",
        "vs eager",
        "vs fp32",
    ]
    echo_table(header, rows)


def _agreement(report: BenchReport) -> str:
    """The reduced-precision figures in one cell: agreement (rows), largest relative error."""
    accuracy = report.accuracy
    if accuracy is None:
        return "-"
    error = (
        ""
        if accuracy.max_relative_error is None
        else f", max rel {accuracy.max_relative_error:.1e}"
    )
    return f"{accuracy.agreement:.1%} of {accuracy.rows}{error}"
