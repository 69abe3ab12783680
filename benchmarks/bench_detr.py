"""CPU inference speed of the zoo's DETR against transformers' DetrForObjectDetection.

One process builds transformers' model (timm ResNet backbone, built offline) with
random weights, BatchNorm statistics randomised too, loads the same weights into
the zoo's model through the ``transformers`` converter, checks that both give the
same logits and boxes, then times them interleaved (the order alternating each
round, each forward timed alone) so that load on a shared machine hits both
alike. It reports the median of the timed runs and the ratio zoo / transformers
(below 1: the zoo is faster), both in wall-clock time and in the process's CPU
time, and writes them as JSON. On a shared machine the wall clock mostly
measures how much of a core the process got; with one thread, CPU time is the
stable measure of the work each forward does.

    python benchmarks/bench_detr.py --model detr-resnet50 --height 800 --width 1066 --runs 7
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import torch
import transformers
from results_file import write_report
from safetensors.torch import save_file
from torch import nn

import zoo

BACKBONES = {
    "detr-resnet50": ("resnet50", (3, 4, 6, 3)),
    "detr-resnet101": ("resnet101", (3, 4, 23, 3)),
}
RESULTS = Path(__file__).parent / "results" / "detr.json"
AGREEMENT = 1e-5
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=sorted(BACKBONES), default="detr-resnet50")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--height", type=int, default=800)
    parser.add_argument("--width", type=int, default=1066)
    parser.add_argument("--runs", type=int, default=7, help="timed forwards per model")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", type=Path, default=RESULTS)
    return parser.parse_args()


def randomise(model: nn.Module) -> None:
    """Every tensor random at a scale that keeps activations sane, BatchNorm statistics too."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for key, tensor in model.state_dict().items():
            if not tensor.is_floating_point():
                continue
            noise = torch.randn(tensor.shape, generator=generator)
            if key.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
            elif tensor.dim() == 1:
                tensor.copy_(0.1 * noise + (1.0 if key.endswith("weight") else 0.0))
            else:
                tensor.copy_(noise / tensor[0].numel() ** 0.5)


def build_models(name: str, folder: Path) -> dict[str, nn.Module]:
    backbone, layers = BACKBONES[name]
    config = transformers.DetrConfig(
        use_pretrained_backbone=False, backbone=backbone, num_labels=91
    )
    reference = transformers.DetrForObjectDetection(config).eval()
    randomise(reference)
    path = folder / "detr.safetensors"
    save_file({key: value.contiguous() for key, value in reference.state_dict().items()}, path)
    ours = zoo.build("detr", {"backbone_layers": layers}, weights=path, layout="transformers")
    return {"zoo": ours.eval(), "transformers": reference}


def forward(name: str, model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if name == "zoo":
        outputs = model(x)
        return outputs["logits"], outputs["boxes"]
    outputs = model(pixel_values=x)
    return outputs.logits, outputs.pred_boxes


def check_agreement(models: dict[str, nn.Module], x: torch.Tensor) -> dict[str, float]:
    with torch.inference_mode():
        ours = forward("zoo", models["zoo"], x)
        theirs = forward("transformers", models["transformers"], x)
    differences = {
        output: ((a - b).abs().max() / b.abs().max()).item()
        for output, a, b in zip(("logits", "boxes"), ours, theirs, strict=True)
    }
    for output, difference in differences.items():
        if difference > AGREEMENT:
            raise SystemExit(f"zoo and transformers disagree on {output}: {difference:.2e}")
    return differences


def time_interleaved(
    models: dict[str, nn.Module], x: torch.Tensor, runs: int, warmup: int
) -> dict[str, dict[str, list[float]]]:
    """Each round runs both models once, the order alternating, so drift hits both alike."""
    names = list(models)
    times = {clock: {name: [] for name in names} for clock in CLOCKS}
    with torch.inference_mode():
        for round_index in range(warmup + runs):
            order = names if round_index % 2 == 0 else names[::-1]
            for name in order:
                starts = {clock: read() for clock, read in CLOCKS.items()}
                forward(name, models[name], x)
                if round_index >= warmup:
                    for clock, read in CLOCKS.items():
                        times[clock][name].append(read() - starts[clock])
    return times


def summarise(times: dict[str, list[float]]) -> dict:
    medians = {name: statistics.median(values) for name, values in times.items()}
    return {
        "median_ms": {name: round(value * 1e3, 1) for name, value in medians.items()},
        "ratio_zoo_to_transformers": round(medians["zoo"] / medians["transformers"], 3),
    }


def main() -> None:
    args = parse_arguments()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as folder:
        models = build_models(args.model, Path(folder))
        x = torch.randn(args.batch, 3, args.height, args.width, generator=torch.Generator())
        agreement = check_agreement(models, x)
        times = time_interleaved(models, x, args.runs, args.warmup)
    report = {
        "model": args.model,
        "input": [args.batch, 3, args.height, args.width],
        "runs": args.runs,
        "warmup": args.warmup,
        "threads": args.threads,
        "relative_difference_to_transformers": agreement,
        "results": {clock: summarise(clock_times) for clock, clock_times in times.items()},
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "attention": models["transformers"].config._attn_implementation,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "cpu_count": os.cpu_count(),
        "measured": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    write_report(args.output, args.model, report)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
