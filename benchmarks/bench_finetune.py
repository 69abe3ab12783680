"""What ``zoo finetune`` costs over a hand-written PyTorch loop, and how long a linear probe takes.

Training step: ``zoo.finetune`` (full mode) against a plain loop a user would write with
torchvision's ``ImageFolder``, ``RandomResizedCrop`` and ``RandomHorizontalFlip``, the
same zoo model (ResNet-50, random weights), AdamW, label smoothing and gradient clipping,
the same batch size and the same DataLoader workers. Each contender trains one epoch over
the same JPEG folder; samples per second count data loading and steps (zoo's figure is
its epoch record's, which times exactly that, not validation). After one untimed epoch
of each (first-use costs), runs alternate between the two; the report gives medians and
the median of per-round ratios (goal: zoo at least 0.95 of the hand-written loop).

Linear probe: ``zoo.finetune(mode="linear")`` on 1,000 images, end to end (features of
every image computed once through the predictor's pre-processing, then the head), and
the time of the head's epochs alone.

    flock /tmp/zoo-bench.lock python benchmarks/bench_finetune.py --runs 3

writes benchmarks/results/finetune.json, with the machine's load (``uptime``) beside it.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from results_file import write_report
from torch import nn

import zoo
from zoo.finetuning import finetune

RESULTS = Path(__file__).parent / "results" / "finetune.json"
MODEL = "resnet50.tv_in1k"
SMALL = "small:"
CLASSES = 4


def model_card(name: str) -> zoo.Card:
    """A card by name; ``small:NAME`` is its architecture's test size (``zoo.small``), a
    model so quick that the data pipeline, not the network, sets the pace."""
    from zoo.small import small_card

    return small_card(name.removeprefix(SMALL)) if name.startswith(SMALL) else zoo.card(name)


def write_images(root: Path, count: int, size: int = 256, seed: int = 0) -> Path:
    """``count`` JPEGs of noise and a coloured square, spread over CLASSES class folders."""
    rng = np.random.default_rng(seed)
    for index in range(count):
        folder = root / f"class{index % CLASSES}"
        folder.mkdir(parents=True, exist_ok=True)
        image = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
        image[64:192, 64:192] = (index % CLASSES) * 60
        Image.fromarray(image).save(folder / f"{index:05d}.jpg", quality=90)
    return root


def hand_written_epoch(card: zoo.Card, data: Path, batch_size: int, workers: int) -> float:
    """Samples per second of one epoch of the loop a user writes by hand."""
    from torchvision import datasets
    from torchvision.transforms import v2

    spec = card.inputs[0]
    transform = v2.Compose(
        [
            v2.PILToTensor(),
            v2.RandomResizedCrop(spec.size, antialias=True),
            v2.RandomHorizontalFlip(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(spec.mean, spec.std),
        ]
    )
    dataset = datasets.ImageFolder(str(data), transform=transform)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=True, drop_last=True, num_workers=workers
    )
    torch.manual_seed(0)
    model = zoo.build(card.architecture, {**card.config, "num_classes": CLASSES}).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)
    criterion = nn.CrossEntropyLoss(label_smoothing=0.1)
    samples = 0
    started = time.perf_counter()
    for images, labels in loader:
        loss = criterion(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        samples += len(labels)
    return samples / (time.perf_counter() - started)


def zoo_epoch(card: zoo.Card, data: Path, out: Path, batch_size: int, workers: int) -> float:
    report = finetune(
        card,
        data,
        out,
        pretrained=False,
        epochs=1,
        batch_size=batch_size,
        workers=workers,
        val_split=0.02,
        device="cpu",
        force=True,
    )
    return report.history[0].samples_per_second


def training_step(
    name: str, data: Path, scratch: Path, runs: int, batch_size: int, workers: int
) -> dict:
    card = model_card(name)
    rates: dict[str, list[float]] = {"zoo": [], "by hand": []}
    zoo_epoch(card, data, scratch / "warm-up", batch_size, workers)  # first-use costs, untimed
    hand_written_epoch(card, data, batch_size, workers)
    for run in range(runs):
        order = ["zoo", "by hand"] if run % 2 == 0 else ["by hand", "zoo"]
        for contender in order:
            if contender == "zoo":
                rate = zoo_epoch(card, data, scratch / f"out-{run}", batch_size, workers)
            else:
                rate = hand_written_epoch(card, data, batch_size, workers)
            rates[contender].append(rate)
            print(f"{name} run {run + 1}: {contender} {rate:.2f} samples/s", flush=True)
    ratios = [z / h for z, h in zip(rates["zoo"], rates["by hand"], strict=True)]
    return {
        "model": name,
        "input": list(card.inputs[0].size),
        "images": sum(1 for _ in data.rglob("*.jpg")),
        "batch_size": batch_size,
        "workers": workers,
        "samples_per_second": rates,
        "median_samples_per_second": {key: statistics.median(v) for key, v in rates.items()},
        "median_round_ratio": statistics.median(ratios),
        "goal": 0.95,
    }


def linear_probe(data: Path, out: Path, batch_size: int, workers: int) -> dict:
    started = time.perf_counter()
    report = finetune(
        MODEL,
        data,
        out,
        mode="linear",
        pretrained=False,
        epochs=10,
        batch_size=batch_size,
        workers=workers,
        device="cpu",
        force=True,
    )
    seconds = time.perf_counter() - started
    head = sum(record.seconds for record in report.history)
    return {
        "model": MODEL,
        "images": report.train_files + report.val_files,
        "epochs": report.epochs,
        "seconds_end_to_end": round(seconds, 2),
        "seconds_training_the_head": round(head, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--models", nargs="+", default=[MODEL, SMALL + MODEL], help="small:NAME: the test size"
    )
    parser.add_argument("--images", type=int, nargs="+", default=[48, 256], help="per model")
    parser.add_argument("--probe-images", type=int, default=1000, help="0: no linear probe")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = {}
    with tempfile.TemporaryDirectory(prefix="zoo-bench-finetune-") as folder:
        scratch = Path(folder)
        for number, (name, images) in enumerate(zip(args.models, args.images, strict=True)):
            load = os.getloadavg()
            data = write_images(scratch / f"step-{number}", images)
            step = training_step(name, data, scratch, args.runs, args.batch_size, args.workers)
            results[f"training-step {name}"] = {**step, **_machine(args, load)}
        if args.probe_images:
            load = os.getloadavg()
            probe = linear_probe(
                write_images(scratch / "probe", args.probe_images, seed=1),
                scratch / "probe-out",
                args.batch_size,
                args.workers,
            )
            results["linear-probe"] = {**probe, **_machine(args, load)}
    for key, report in results.items():
        write_report(RESULTS, key, report)
        if key.startswith("training-step"):
            ratio = report["median_round_ratio"]
            print(f"{key}: zoo / hand-written samples/s {ratio:.3f} (goal >= 0.95)")
    if "linear-probe" in results:
        probe = results["linear-probe"]
        print(f"linear probe, {probe['images']} images: {probe['seconds_end_to_end']} s")


def _machine(args: argparse.Namespace, load_before: tuple[float, ...]) -> dict:
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": platform.machine(),
        "threads": args.threads,
        "load_average_before": [round(value, 2) for value in load_before],
        "load_average_after": [round(value, 2) for value in os.getloadavg()],
        "runs": args.runs,
    }


if __name__ == "__main__":
    main()
