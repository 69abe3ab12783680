"""CPU inference speed of each family's exported graph in onnxruntime against PyTorch eager.

For each model, ``zoo.export`` writes the graph a user gets (dynamic axes as the
architecture's hints say, float32, checked), with random but well-conditioned
weights (unit-gain layers: a detector then proposes and detects as many boxes as
a trained one, where default init leaves it almost idle). Both runtimes then see
the same input, the card's example at batch 1, on one thread each; the outputs
are compared once, and each round times PyTorch and onnxruntime once, in
alternating order, so load on a shared machine hits both alike. The report is
the median of each and the ratio onnxruntime / PyTorch: below 1, onnxruntime is
faster; above 1, slower.

    python benchmarks/bench_export.py                        # every family, full size
    python benchmarks/bench_export.py --models vit-b16-in1k --runs 9
    python benchmarks/bench_export.py --small --runs 3       # small configs: a quick trial
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import onnxruntime
import torch
from results_file import write_report
from safetensors.torch import save_file
from torch import nn
from torch.utils._pytree import tree_leaves

import zoo
from zoo.cards import Card
from zoo.exporters.checks import compare, match_rows
from zoo.exporters.report import ExportReport
from zoo.small import small_card

RESULTS = Path(__file__).parent / "results" / "export.json"
FAMILIES = [
    "c3d-sports1m",
    "i3d-kinetics400-rgb",
    "i3d-kinetics400-two-stream",
    "convlstm-moving-digits",
    "resnext50_32x4d.tv_in1k",
    "vit-b16-in1k",
    "detr-resnet50-coco",
    "fpn-resnet50-coco",
    "resnet50-fpn",
]


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=FAMILIES, help="card names")
    parser.add_argument("--runs", type=int, default=5, help="timed rounds per model")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--small", action="store_true", help="the small test configs")
    parser.add_argument("--output", type=Path, default=RESULTS)
    return parser.parse_args()


def well_conditioned(model: nn.Module, seed: int = 0) -> nn.Module:
    """Unit-gain random weights: activations keep their scale through every layer."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv2d | nn.Conv3d | nn.Linear):
                module.weight.normal_(0, module.weight[0].numel() ** -0.5, generator=generator)
    return model.eval()


def exported(card: Card, folder: Path) -> tuple[nn.Module, Path, ExportReport]:
    """The PyTorch model and the checked ONNX file of the same weights."""
    weights = folder / "weights.safetensors"
    torch.manual_seed(0)  # the tensors well_conditioned leaves alone: same model every run
    model = well_conditioned(zoo.load(card, pretrained=False))
    save_file({key: value.contiguous() for key, value in model.state_dict().items()}, weights)
    report = zoo.export(card, folder / "onnx", weights=weights)
    return zoo.load(card, weights=weights), folder / "onnx" / "model.onnx", report


def session(path: Path, threads: int) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def example_inputs(card: Card) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return [torch.rand(spec.example_shape(batch=1), generator=generator) for spec in card.inputs]


def agreement(card: Card, found: list[np.ndarray], expected: list[np.ndarray]) -> dict:
    """Largest relative difference per output (a detector's detections matched as a set)."""
    hints = zoo.default_registry().architecture(card.architecture).export
    names = hints.output_names
    if hints.set_axis is not None:
        in_set = [hints.dynamic_axes.get(name, {}).get(0) == hints.set_axis for name in names]
        found = match_rows(found, expected, in_set)
    return {
        name: compare(name, ours, theirs, 1.0).max_rel
        for name, ours, theirs in zip(names, found, expected, strict=True)
    }


def time_interleaved(runners: dict[str, Callable[[], object]], runs: int, warmup: int) -> dict:
    names = list(runners)
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(warmup + runs):
        order = names if round_index % 2 == 0 else names[::-1]
        for name in order:
            start = time.perf_counter()
            runners[name]()
            if round_index >= warmup:
                times[name].append(time.perf_counter() - start)
    return times


def measure(card: Card, args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        model, path, report = exported(card, Path(folder))
        export_seconds = time.perf_counter() - started
        ort = session(path, args.threads)
        inputs = example_inputs(card)
        feed = {spec.name: x.numpy() for spec, x in zip(card.inputs, inputs, strict=True)}
        with torch.inference_mode():
            expected = [t.numpy() for t in tree_leaves(model(*inputs))]
            found = ort.run(None, feed)
            runners = {"torch": lambda: model(*inputs), "onnxruntime": lambda: ort.run(None, feed)}
            times = time_interleaved(runners, args.runs, args.warmup)
    medians = {name: statistics.median(values) for name, values in times.items()}
    paired = [o / t for o, t in zip(times["onnxruntime"], times["torch"], strict=True)]
    return {
        "input_shapes": {name: list(array.shape) for name, array in feed.items()},
        "outputs": {
            info.name: list(array.shape) for info, array in zip(report.outputs, found, strict=True)
        },
        "relative_difference": agreement(card, found, expected),
        "exporter": report.exporter,
        "export_seconds": round(export_seconds, 1),
        "median_ms": {name: round(value * 1e3, 2) for name, value in medians.items()},
        "ratio_onnxruntime_to_torch": round(medians["onnxruntime"] / medians["torch"], 3),
        "paired_ratio_onnxruntime_to_torch": round(statistics.median(paired), 3),
    }


def main() -> None:
    args = parse_arguments()
    torch.set_num_threads(args.threads)
    for name in args.models:
        card = small_card(name) if args.small else zoo.card(name)
        result = measure(card, args)
        report = {
            **result,
            "model": card.name,
            "config": "small" if args.small else "card",
            "runs": args.runs,
            "warmup": args.warmup,
            "threads": args.threads,
            "torch": torch.__version__,
            "onnxruntime": onnxruntime.__version__,
            "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
            "cpu_count": os.cpu_count(),
            "measured": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        key = f"{card.name} (small)" if args.small else card.name
        write_report(args.output, key, report)
        print(
            json.dumps({key: report["median_ms"] | {"ratio": report["ratio_onnxruntime_to_torch"]}})
        )


if __name__ == "__main__":
    main()
