"""``zoo bench``: how fast a predictor's model runs, in the manner of timm's benchmark script.

Warm-up steps, then timed steps of one batch each (CUDA synchronised before every clock
read), reported as samples per second, median and 95th-percentile latency, peak memory,
parameters, multiply-accumulates and the GFLOP/s achieved (two operations per
multiply-accumulate, at the median latency). The input is the card's example input (random pixels,
normalised as the card says), so only the model is timed: decoding and pre-processing are
measured separately by ``benchmarks/bench_predict.py``.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from os import PathLike
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor

from zoo.cards import Card
from zoo.errors import ZooError, one_line
from zoo.inference.predictor import Predictor
from zoo.loading import empty_model
from zoo.quantize.gate import Accuracy
from zoo.registry import default_registry

#: The float32 ways ``--compare`` runs a model (``channels_last`` is channels_last_3d for
#: 5-D tensors), then the reduced-precision ones, each measured against float32 too.
VARIANTS = ("eager", "channels_last", "compile", "onnxruntime", "openvino")
REDUCED_VARIANTS = ("torch-bf16", "openvino-bf16", "onnxruntime-int8", "openvino-int8")


class BenchReport(BaseModel):
    """One model, one way of running it, one batch size."""

    model_config = ConfigDict(frozen=True)

    model: str
    variant: str = Field(description="default, or one of VARIANTS and REDUCED_VARIANTS")
    settings: dict[str, Any] = Field(description="backend, device, precision, memory format, ...")
    batch: int
    input_shapes: dict[str, list[int]]
    threads: int
    warmup: int
    steps: int
    samples_per_second: float
    latency_ms_median: float
    latency_ms_p95: float
    peak_memory_mb: float | None
    memory: str = Field(description="what peak_memory_mb measures")
    parameters: int
    gmacs: float | None = Field(description="multiply-accumulates per sample, 1e9 (torch count)")
    gflops: float | None = Field(
        description="achieved 1e9 floating-point operations per second (2 per MAC), at the median"
    )
    speedup: float | None = Field(default=None, description="eager median / this median")
    accuracy: Accuracy | None = Field(
        default=None, description="a reduced-precision variant against float32 eager"
    )


def example_inputs(card: Card, batch: int, seed: int = 0) -> dict[str, Tensor]:
    """Random pixels in [0, 1] of the card's example shape, as model inputs (normalised)."""
    from zoo.inference.transforms import Normalization

    generator = torch.Generator().manual_seed(seed)
    return {
        spec.name: Normalization(spec)(torch.rand(spec.example_shape(batch), generator=generator))
        for spec in card.inputs
    }


def benchmark(
    predictor: Predictor,
    *,
    batch: int = 1,
    warmup: int = 3,
    steps: int = 10,
    variant: str = "default",
) -> BenchReport:
    """Time the predictor's forward on the card's example input of ``batch`` samples."""
    inputs = example_inputs(predictor.card, batch)
    device = torch.device(predictor.backend.describe()["device"])
    reset_peak_memory(device)
    for _ in range(warmup):
        predictor.forward(inputs)
    times = [_timed(predictor.forward, inputs, device) for _ in range(steps)]
    peak, memory = peak_memory_mb(device)
    median = statistics.median(times)
    gmacs = count_gmacs(predictor.card)
    return BenchReport(
        model=predictor.card.name,
        variant=variant,
        settings=predictor.backend.describe(),
        batch=batch,
        input_shapes={name: list(value.shape) for name, value in inputs.items()},
        threads=torch.get_num_threads(),
        warmup=warmup,
        steps=steps,
        samples_per_second=round(batch * steps / sum(times), 3),
        latency_ms_median=round(median * 1e3, 3),
        latency_ms_p95=round(_percentile(times, 95) * 1e3, 3),
        peak_memory_mb=peak,
        memory=memory,
        parameters=predictor.card.parameters,
        gmacs=gmacs,
        gflops=None if gmacs is None else round(2 * gmacs * batch / median, 2),
    )


def compare(
    name: str | Card,
    variants: list[str],
    *,
    batch: int,
    warmup: int,
    steps: int,
    validate: str | PathLike[str] | None = None,
    **options: Any,
) -> tuple[list[BenchReport], dict[str, str]]:
    """The same model and input run each way in ``variants``, with speed-ups against eager.

    A variant that cannot run here (no compiler for ``torch.compile``, a model that does
    not export, bf16 on a CPU without it, int8 without ``calibrate=``) is left out of the
    reports and its error returned by variant name. A reduced-precision variant is also
    compared with float32 eager: on ``validate=`` inputs (or the held-out part of
    ``calibrate=``'s), else on the timed example input.
    """
    import torch

    from zoo.inference import predictor as build_predictor

    calibrate = options.pop("calibrate", None)
    accept_drop = options.pop("accept_drop", False)
    reports, failures = [], {}
    reference = None
    for variant in variants:
        torch.manual_seed(0)  # the same random weights for every variant under --random
        extra = variant_options(variant)
        if extra.get("precision") == "int8":
            extra |= {"calibrate": calibrate, "validate": validate, "accept_drop": accept_drop}
        try:
            predictor = build_predictor(name, **{**options, **extra})
            report = benchmark(predictor, batch=batch, warmup=warmup, steps=steps, variant=variant)
            if variant == "eager":
                reference = predictor
            elif variant in REDUCED_VARIANTS and reference is not None:
                rows = accuracy_rows(predictor, batch, calibrate, validate)
                accuracy = measure_against(reference, predictor, rows, extra["precision"])
                report = report.model_copy(update={"accuracy": accuracy})
            reports.append(report)
        except (ZooError, RuntimeError) as error:
            failures[variant] = one_line(f"{type(error).__name__}: {error}")
    baseline = next((r.latency_ms_median for r in reports if r.variant == "eager"), None)
    if baseline is not None:
        reports = [
            report.model_copy(update={"speedup": round(baseline / report.latency_ms_median, 3)})
            for report in reports
        ]
    return reports, failures


def variant_options(variant: str) -> dict[str, Any]:
    """Predictor options that run a model the way ``variant`` names."""
    if variant in ("onnxruntime", "openvino"):
        return {"backend": variant}
    if variant in REDUCED_VARIANTS:
        backend, precision = variant.split("-")
        return {"backend": backend, "precision": precision}
    return {
        "backend": "torch",
        "memory_format": "channels_last" if variant == "channels_last" else "contiguous",
        "compile": variant == "compile",
    }


def accuracy_rows(
    predictor: Predictor,
    batch: int,
    calibrate: str | PathLike[str] | None,
    validate: str | PathLike[str] | None,
) -> list[dict[str, Tensor]]:
    """Held-out rows when there are any (``validate``, or ``calibrate``'s), else the example."""
    from zoo.quantize.inputs import prepared_rows, split

    source = calibrate if calibrate is not None else validate
    if source is None:
        return [example_inputs(predictor.card, batch)]
    files = split(source, validate).validation
    return prepared_rows(files, predictor.card, predictor.architecture)


def measure_against(
    reference: Predictor, predictor: Predictor, rows: list[dict[str, Any]], precision: str
) -> Accuracy:
    """The gate's figures (:mod:`zoo.quantize.gate`) of ``predictor`` against float32."""
    from zoo.quantize.gate import measure

    return measure(
        predictor.card,
        predictor.architecture,
        reference.forward,
        predictor.forward,
        rows,
        precision=precision,
        runtime=predictor.backend.name,
    )


def count_gmacs(card: Card) -> float | None:
    """Multiply-accumulates per sample (torch's FLOP counter / 2), counted on the meta device.

    None for models whose forward depends on values (detectors' proposals and NMS).
    """
    from torch.utils.flop_counter import FlopCounterMode

    registry = default_registry()
    try:
        model = empty_model(registry.architecture(card.architecture), card.config).eval()
        inputs = [torch.empty(spec.example_shape(1), device="meta") for spec in card.inputs]
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(*inputs)
    except (RuntimeError, NotImplementedError, ValueError, TypeError):
        return None
    return round(counter.get_total_flops() / 2 / 1e9, 3)


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_mb(device: torch.device) -> tuple[float | None, str]:
    """CUDA: the allocator's peak; elsewhere the process's peak resident set size."""
    if device.type == "cuda":
        return round(torch.cuda.max_memory_allocated(device) / 2**20, 1), "CUDA max allocated"
    try:
        import resource
    except ImportError:  # Windows
        return None, "not measured"
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, kilobytes on Linux
    return round(peak * scale / 2**20, 1), "process peak RSS"


def _timed(
    function: Callable[[dict[str, Tensor]], Any], inputs: dict[str, Tensor], device: torch.device
) -> float:
    _synchronize(device)
    start = time.perf_counter()
    function(inputs)
    _synchronize(device)
    return time.perf_counter() - start


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _percentile(values: list[float], percent: float) -> float:
    ordered = sorted(values)
    position = min(len(ordered) - 1, round(percent / 100 * (len(ordered) - 1)))
    return ordered[position]
