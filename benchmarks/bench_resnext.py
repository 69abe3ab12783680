"""CPU inference speed of the zoo's ResNeXt against torchvision's and timm's: same weights, input.

One process builds the three models from one set of random weights (BatchNorm
statistics randomised too), checks that they agree, then times them interleaved
(zoo, torchvision, timm in rotating order, each forward timed alone) so that
load on a shared machine hits all three alike. It reports the median of the
timed runs, the ratio of the medians zoo / upstream (below 1: the zoo is faster)
and the median of the per-round ratios (each round's forwards ran back to back,
so that ratio is the least disturbed by load that changes between rounds), for
the default and the channels_last memory format, and writes them as JSON.

    python benchmarks/bench_resnext.py --model resnext50_32x4d --runs 15 --threads 1
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

import timm
import torch
import torchvision
from results_file import write_report
from safetensors.torch import save_file
from torch import nn

import zoo

CONFIGS = {
    "resnet50": {"layers": (3, 4, 6, 3)},
    "resnext50_32x4d": {"layers": (3, 4, 6, 3), "groups": 32, "width_per_group": 4},
    "resnext101_32x8d": {"layers": (3, 4, 23, 3), "groups": 32, "width_per_group": 8},
}
RESULTS = Path(__file__).parent / "results" / "resnext.json"
AGREEMENT = 1e-5


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=sorted(CONFIGS), default="resnext50_32x4d")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--runs", type=int, default=15, help="timed forwards per model, format")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", type=Path, default=RESULTS)
    return parser.parse_args()


def randomise_batchnorm(model: nn.Module) -> None:
    generator = torch.Generator().manual_seed(0)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            size = module.num_features
            module.running_mean.copy_(torch.randn(size, generator=generator) * 0.1)
            module.running_var.copy_(torch.rand(size, generator=generator) + 0.5)


def build_models(name: str, folder: Path) -> dict[str, nn.Module]:
    """torchvision's model with random weights, and timm's and the zoo's loaded from the same."""
    torch.manual_seed(0)
    reference = getattr(torchvision.models, name)(weights=None)
    randomise_batchnorm(reference)
    path = folder / f"{name}.safetensors"
    save_file({key: value.contiguous() for key, value in reference.state_dict().items()}, path)
    timm_model = timm.create_model(name, pretrained=False)
    timm_model.load_state_dict(reference.state_dict())
    ours = zoo.build("resnext", CONFIGS[name], weights=path, layout="torchvision")
    return {"zoo": ours.eval(), "torchvision": reference.eval(), "timm": timm_model.eval()}


def check_agreement(models: dict[str, nn.Module], x: torch.Tensor) -> dict[str, float]:
    """Relative max difference of each upstream's logits to the zoo's: the same network."""
    with torch.inference_mode():
        ours = models["zoo"](x)
        upstream = {name: model(x) for name, model in models.items() if name != "zoo"}
    differences = {
        name: ((ours - logits).abs().max() / logits.abs().max()).item()
        for name, logits in upstream.items()
    }
    for name, difference in differences.items():
        if difference > AGREEMENT:
            raise SystemExit(f"zoo and {name} disagree: relative difference {difference:.2e}")
    return differences


def time_once(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> float:
    start = time.perf_counter()
    model(x)
    return time.perf_counter() - start


def time_interleaved(
    models: dict[str, nn.Module], x: torch.Tensor, runs: int, warmup: int
) -> dict[str, list[float]]:
    """Each round runs every model once, the order rotating, so drift hits all alike."""
    names = list(models)
    times: dict[str, list[float]] = {name: [] for name in names}
    with torch.inference_mode():
        for round_index in range(warmup + runs):
            shift = round_index % len(names)
            for name in names[shift:] + names[:shift]:
                elapsed = time_once(models[name], x)
                if round_index >= warmup:
                    times[name].append(elapsed)
    return times


def measure(
    models: dict[str, nn.Module], x: torch.Tensor, memory_format: torch.memory_format, args
) -> dict:
    models = {name: model.to(memory_format=memory_format) for name, model in models.items()}
    x = x.contiguous(memory_format=memory_format)
    times = time_interleaved(models, x, args.runs, args.warmup)
    medians = {name: statistics.median(values) for name, values in times.items()}
    report: dict = {"median_ms": {name: round(value * 1e3, 2) for name, value in medians.items()}}
    for upstream in ("torchvision", "timm"):
        paired = [ours / theirs for ours, theirs in zip(times["zoo"], times[upstream], strict=True)]
        report[f"ratio_zoo_to_{upstream}"] = round(medians["zoo"] / medians[upstream], 3)
        report[f"paired_ratio_zoo_to_{upstream}"] = round(statistics.median(paired), 3)
    return report


def main() -> None:
    args = parse_arguments()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as folder:
        models = build_models(args.model, Path(folder))
        x = torch.randn(args.batch, 3, args.size, args.size, generator=torch.Generator())
        agreement = check_agreement(models, x)
        formats = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}
        results = {label: measure(models, x, fmt, args) for label, fmt in formats.items()}
    report = {
        "model": args.model,
        "input": [args.batch, 3, args.size, args.size],
        "runs": args.runs,
        "warmup": args.warmup,
        "threads": args.threads,
        "relative_difference_to_zoo": agreement,
        "results": results,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "timm": timm.__version__,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "cpu_count": os.cpu_count(),
        "measured": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    write_report(args.output, args.model, report)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
