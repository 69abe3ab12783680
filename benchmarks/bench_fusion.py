"""What the fusion models cost over their image backbone: forward time and load time.

Forward: each fusion card's model (random backbone and head, 1 thread) against what a
user would write by hand with the same image model and the same weights: the image
model on the clip's frames as one batch, then the same pooling, LSTM or stacking. The
fusion model does the same arithmetic, so the ratio should be 1; the script checks that
both give the same logits first. Timings are interleaved (rotating order, each forward
timed alone) and reported as medians with the median of the per-round ratios.

Load: ``zoo.load(fusion card, weights=<backbone file>, layout="backbone")`` against
``zoo.load(backbone card, weights=<same file>)``, each in a fresh subprocess (the fusion
load also probes the backbone's feature width on the meta device and draws the head).

    python benchmarks/bench_fusion.py --runs 9 --threads 1

writes one entry per card to benchmarks/results/fusion.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import torch
from results_file import write_report
from torch import nn

import zoo
from zoo.weights import save_safetensors

CARDS = ("late-fusion-resnext50-8f", "cnn-lstm-resnext50-8f", "early-fusion-resnext50-10f")
RESULTS = Path(__file__).parent / "results" / "fusion.json"


def by_hand(card: zoo.Card, model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """The same network written out around the image model (ResNeXt here), as a user would."""
    pooled = model.backbone.forward_pooled  # the same module and weights: only the wrapping
    head = model.head

    def per_frame(video: torch.Tensor) -> torch.Tensor:
        frames = video.transpose(1, 2).flatten(0, 1)
        return head.classify(head.summarise(pooled(frames).unflatten(0, (video.shape[0], -1))))

    def stacked(video: torch.Tensor) -> torch.Tensor:
        return head.classify(pooled(video.transpose(1, 2).flatten(1, 2)))

    return stacked if card.architecture == "early-fusion" else per_frame


def forward_times(card: zoo.Card, runs: int, warmup: int) -> dict:
    torch.manual_seed(0)
    model = zoo.load(card, pretrained=False)
    manual = by_hand(card, model)
    clip = torch.randn(card.inputs[0].example_shape(batch=1))
    contenders = {"zoo": model, "by hand": manual}
    with torch.inference_mode():
        torch.testing.assert_close(model(clip), manual(clip), rtol=0, atol=0)
        for _ in range(warmup):
            for forward in contenders.values():
                forward(clip)
        samples: dict[str, list[float]] = {name: [] for name in contenders}
        for round_ in range(runs):
            order = list(contenders)[round_ % 2 :] + list(contenders)[: round_ % 2]
            for name in order:
                start = time.perf_counter()
                contenders[name](clip)
                samples[name].append(time.perf_counter() - start)
    rounds = [z / h for z, h in zip(samples["zoo"], samples["by hand"], strict=True)]
    medians = {name: statistics.median(values) for name, values in samples.items()}
    return {
        "input": list(clip.shape),
        "median_seconds": medians,
        "ratio_of_medians": medians["zoo"] / medians["by hand"],
        "median_round_ratio": statistics.median(rounds),
    }


def load_worker(name: str, path: str, layout: str) -> float:
    import zoo as fresh

    start = time.perf_counter()
    fresh.load(name, weights=path, layout=layout)
    return time.perf_counter() - start


def load_times(card: zoo.Card, runs: int) -> dict:
    backbone = card.config["backbone"]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "backbone.safetensors"
        save_safetensors(zoo.load(backbone, pretrained=False).state_dict(), path)
        jobs = {"fusion": (card.name, "backbone"), "backbone": (backbone, "zoo")}
        samples: dict[str, list[float]] = {name: [] for name in jobs}
        for _ in range(runs):
            for name, (model, layout) in jobs.items():
                samples[name].append(_run_worker(model, path, layout))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    return {"median_seconds": medians, "ratio": medians["fusion"] / medians["backbone"]}


def _run_worker(model: str, path: Path, layout: str) -> float:
    command = [sys.executable, __file__, "--worker", model, str(path), layout]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return float(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cards", nargs="+", default=list(CARDS))
    parser.add_argument("--worker", nargs=3, metavar=("MODEL", "FILE", "LAYOUT"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.worker:
        print(load_worker(*args.worker))
        return
    for name in args.cards:
        card = zoo.card(name)
        report = {
            "forward": forward_times(card, args.runs, args.warmup),
            "load": load_times(card, args.runs),
            "threads": args.threads,
            "runs": args.runs,
            "machine": platform.processor() or platform.machine(),
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        write_report(RESULTS, name, report)
        print(json.dumps({name: report}, indent=2))


if __name__ == "__main__":
    main()
