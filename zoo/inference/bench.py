"""``zoo bench``: how fast a predictor's model runs, in the manner of timm's benchmark script.

Warm-up steps, then timed steps of one batch each (CUDA synchronised before every clock
read), reported as samples per second, median and 95th-percentile latency, peak memory,
parameters and multiply-accumulates. The input is the card's example input (random pixels,
normalised as the card says), so only the model is timed: decoding and pre-processing are
measured separately by ``benchmarks/bench_predict.py``.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor

from zoo.cards import Card
from zoo.errors import ZooError, one_line
from zoo.inference.predictor import Predictor
from zoo.loading import empty_model
from zoo.registry import default_registry

#: The ways ``--compare`` runs a model (``channels_last`` is channels_last_3d for 5-D tensors).
VARIANTS = ("eager", "channels_last", "compile", "onnxruntime")


class BenchReport(BaseModel):
    """One model, one way of running it, one batch size."""

    model_config = ConfigDict(frozen=True)

    model: str
    variant: str = Field(description="default, eager, channels_last, compile or onnxruntime")
    settings: dict[str, Any] = Field(description="backend, device, dtype, memory format, compiled")
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
    speedup: float | None = Field(default=None, description="eager median / this median")


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
        gmacs=count_gmacs(predictor.card),
    )


def compare(
    name: str | Card, variants: list[str], *, batch: int, warmup: int, steps: int, **options: Any
) -> tuple[list[BenchReport], dict[str, str]]:
    """The same model and input run each way in ``variants``, with speed-ups against eager.

    A variant that cannot run here (no compiler for ``torch.compile``, a model that does
    not export) is left out of the reports and its error returned by variant name.
    """
    from zoo.inference import predictor as build_predictor

    reports, failures = [], {}
    for variant in variants:
        torch.manual_seed(0)  # the same random weights for every variant under --random
        try:
            predictor = build_predictor(name, **{**options, **variant_options(variant)})
            reports.append(
                benchmark(predictor, batch=batch, warmup=warmup, steps=steps, variant=variant)
            )
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
    """Predictor options that run ``card``'s model the way ``variant`` names."""
    if variant == "onnxruntime":
        return {"backend": "onnxruntime"}
    return {
        "backend": "torch",
        "memory_format": "channels_last" if variant == "channels_last" else "contiguous",
        "compile": variant == "compile",
    }


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
