"""Decoding and pre-processing against the model's forward, and what overlapping them buys.

Two workloads, each timed in interleaved rounds (one of each measurement per round, so
load on a shared machine hits them alike), medians reported:

- the I3D sample clip (79 frames of 224x224 GIF at 25 fps) through ``i3d-kinetics``:
  decode + pre-process (``Predictor.preprocess``), the forward alone, and the whole call.
  Goal: pre-processing at most 10% of the end-to-end time.
- a batch of JPEG photos (480x640) through ``resnext50_32x4d``: decoding and
  pre-processing them one by one, the forward alone on the ready batches, and the
  predictor's call, which decodes the next inputs on a background thread while the model
  runs. Goal: the call's throughput at least 0.9 of the forward's alone.

Weights are random (timing does not depend on them) but come from a file, so each
predictor runs its family's default path (onnxruntime for I3D and ResNeXt, exported on
first use) as it would with pretrained weights. Torch and onnxruntime run ``--threads``
threads (default 1), which leaves the machine's other core to the decoding thread.

    python benchmarks/bench_predict.py --runs 5 --threads 1
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

import torch
from PIL import Image
from results_file import write_report

import zoo

SAMPLE_CLIP = Path(__file__).parents[1] / "tests" / "data" / "v_CricketShot_g04_c01_rgb.gif"
RESULTS = Path(__file__).parent / "results" / "predict.json"


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--output", type=Path, default=RESULTS)
    return parser.parse_args()


def timed(function: Callable[[], object]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def rounds(measures: dict[str, Callable[[], object]], runs: int, warmup: int) -> dict:
    """Medians (ms) of each measure over ``runs`` rounds, the order rotating each round."""
    names = list(measures)
    times: dict[str, list[float]] = {name: [] for name in names}
    for index in range(warmup + runs):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            elapsed = timed(measures[name])
            if index >= warmup:
                times[name].append(elapsed)
    return {name: statistics.median(values) * 1e3 for name, values in times.items()}


def default_path(name: str, folder: Path) -> zoo.inference.Predictor:
    """The model's default predictor, with random weights read from a file."""
    from safetensors.torch import save_file

    model = zoo.load(name, pretrained=False)
    path = folder / f"{name}.safetensors"
    save_file({key: value.contiguous() for key, value in model.state_dict().items()}, path)
    return zoo.predictor(name, weights=path)


def sample_clip(args: argparse.Namespace, folder: Path) -> dict:
    predictor = default_path("i3d-kinetics", folder)
    prepared = predictor.preprocess(SAMPLE_CLIP)
    medians = rounds(
        {
            "decode_and_preprocess": lambda: predictor.preprocess(SAMPLE_CLIP),
            "forward": lambda: predictor.forward(prepared.inputs),
            "end_to_end": lambda: predictor(SAMPLE_CLIP),
        },
        args.runs,
        args.warmup,
    )
    return {
        "model": predictor.card.name,
        "backend": predictor.backend.describe()["backend"],
        "input": f"{SAMPLE_CLIP.name}: {prepared.note}, tensor {list(prepared.tensor.shape)}",
        "median_ms": {name: round(value, 1) for name, value in medians.items()},
        "preprocess_share_of_end_to_end": round(
            medians["decode_and_preprocess"] / medians["end_to_end"], 4
        ),
        "goal": "preprocess_share_of_end_to_end <= 0.10",
    }


def photos(folder: Path, count: int) -> list[Path]:
    """JPEG photos of 480x640: frames of the sample clip, upscaled, as a camera would save."""
    with Image.open(SAMPLE_CLIP) as gif:
        paths = []
        for index in range(count):
            gif.seek(index * 4 % gif.n_frames)
            path = folder / f"photo{index:02d}.jpg"
            gif.convert("RGB").resize((640, 480), Image.Resampling.BICUBIC).save(path, quality=90)
            paths.append(path)
    return paths


def image_batch(args: argparse.Namespace, folder: Path) -> dict:
    predictor = default_path("resnext50_32x4d", folder)
    paths = photos(folder, args.images)
    batches = [
        {"image": torch.cat([predictor.preprocess(p).tensor for p in paths[i : i + args.batch]])}
        for i in range(0, len(paths), args.batch)
    ]
    medians = rounds(
        {
            "decode_and_preprocess": lambda: [predictor.preprocess(path) for path in paths],
            "forward": lambda: [predictor.forward(batch) for batch in batches],
            "end_to_end_overlapped": lambda: predictor(paths, batch_size=args.batch),
        },
        args.runs,
        args.warmup,
    )
    sequential = medians["decode_and_preprocess"] + medians["forward"]
    return {
        "model": predictor.card.name,
        "backend": predictor.backend.describe()["backend"],
        "input": f"{len(paths)} JPEG photos 480x640, batches of {args.batch}",
        "median_ms": {name: round(value, 1) for name, value in medians.items()},
        "images_per_second": {
            "forward_alone": round(len(paths) / medians["forward"] * 1e3, 2),
            "end_to_end_overlapped": round(len(paths) / medians["end_to_end_overlapped"] * 1e3, 2),
            "decode_then_forward_sequentially": round(len(paths) / sequential * 1e3, 2),
        },
        "throughput_overlapped_over_forward_alone": round(
            medians["forward"] / medians["end_to_end_overlapped"], 4
        ),
        "preprocess_share_of_end_to_end": round(
            medians["decode_and_preprocess"] / medians["end_to_end_overlapped"], 4
        ),
        "goal": "throughput_overlapped_over_forward_alone >= 0.9",
    }


def main() -> None:
    args = parse_arguments()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as folder:
        os.environ["ZOO_CACHE"] = str(Path(folder) / "cache")  # exports of temporary weights
        report = {
            "sample_clip": sample_clip(args, Path(folder)),
            "image_batch": image_batch(args, Path(folder)),
            "runs": args.runs,
            "warmup": args.warmup,
            "threads": args.threads,
            "torch": torch.__version__,
            "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
            "cpu_count": os.cpu_count(),
            "measured": datetime.now(UTC).isoformat(timespec="seconds"),
        }
    write_report(args.output, "cpu", report)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
