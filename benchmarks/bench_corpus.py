"""Corpus jobs: throughput of the engines against a plain loop, and memory against video length.

Three measurements, each its own sub-command, each writing its entry of
``benchmarks/results/corpus.json`` (with the machine's load, ``uptime``, beside it):

- ``throughput``: inputs/s over a corpus of copies of the I3D sample clip and generated
  480x640 photos, for ``i3d-kinetics400-rgb``, ``c3d-sports1m`` and ``resnet50.tv_in1k``
  (frame-wise on the clips): a plain loop over ``zoo.predictor`` (today's way: one
  predictor, one input after another), ``zoo.predict`` on the local engine, and on Ray on
  this machine (one local Ray instance, started before the timing). Rounds interleave the
  three, medians reported. Goals: local >= 1.8x the loop on 2 cores, Ray within 20% of local.
- ``workers``: the local engine's rule: inputs/s of ``zoo.features`` with 1, 2 and 3
  worker processes (threads: the cores divided among them) on the same corpus.
- ``memory``: peak RSS (the process's own ``ru_maxrss``, in a fresh process per run) of
  ``zoo features`` on generated 1-, 10- and 60-minute videos (C3D and I3D, a large stride so
  that the figure measures memory, not patience), and of ``zoo predict`` with I3D's
  whole-video protocol on generated 720p videos. Goal: flat in the length, at most 2 GiB.

Weights are random, from a file, so each model runs its default path (onnxruntime for I3D,
C3D and ResNet, exported once before the timing). Run it alone on the machine:

    flock /tmp/zoo-bench.lock python benchmarks/bench_corpus.py throughput --runs 3
    flock /tmp/zoo-bench.lock python benchmarks/bench_corpus.py memory --minutes 1,10,60
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from results_file import write_report

ROOT = Path(__file__).parents[1]
SAMPLE_CLIP = ROOT / "tests" / "data" / "v_CricketShot_g04_c01_rgb.gif"
RESULTS = Path(__file__).parent / "results" / "corpus.json"
MODELS = {
    "i3d": ("i3d-kinetics400-rgb", 8, 0),
    "c3d": ("c3d-sports1m", 16, 0),
    "resnet50": ("resnet50.tv_in1k", 6, 24),
}


def machine() -> dict:
    return {
        "measured": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "load_before": os.getloadavg(),
        "uptime": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
    }


def weights_file(name: str, folder: Path) -> Path:
    import torch
    from safetensors.torch import save_file

    import zoo

    torch.manual_seed(0)
    model = zoo.load(name, pretrained=False)
    path = folder / f"{name}.safetensors"
    save_file({key: value.contiguous() for key, value in model.state_dict().items()}, path)
    return path


def corpus(folder: Path, clips: int, photos: int) -> list[str]:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for number in range(clips):
        target = folder / f"clip-{number:03d}.gif"
        shutil.copy(SAMPLE_CLIP, target)
        paths.append(str(target))
    rng = np.random.default_rng(0)
    for number in range(photos):
        target = folder / f"photo-{number:03d}.jpg"
        Image.fromarray(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)).save(target)
        paths.append(str(target))
    return paths


def throughput(arguments: argparse.Namespace) -> None:
    import ray

    import zoo

    ray.init(include_dashboard=False, log_to_driver=False)
    report = {**machine(), "runs": arguments.runs, "models": {}}
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        for key in arguments.models.split(","):
            name, clips, photos = MODELS[key]
            paths = corpus(folder / key, clips, photos)
            file = weights_file(name, folder)
            predictor = zoo.predictor(name, weights=file)  # exports the ONNX file once
            predictor(paths[0])
            times: dict[str, list[float]] = {"loop": [], "local": [], "ray": []}
            for run in range(arguments.runs):
                order = ["loop", "local", "ray"]
                for way in order[run % 3 :] + order[: run % 3]:
                    out = folder / f"{key}-{way}-{run}.parquet"
                    start = time.perf_counter()
                    if way == "loop":
                        for path in paths:
                            predictor(path)
                    else:
                        zoo.predict(name, paths, out, weights=file, engine=way, workers=2)
                    times[way].append(time.perf_counter() - start)
            medians = {way: statistics.median(values) for way, values in times.items()}
            rates = {way: len(paths) / seconds for way, seconds in medians.items()}
            report["models"][key] = {
                "model": name,
                "inputs": f"{clips} copies of the sample clip, {photos} photos 480x640",
                "backend": predictor.backend.describe()["backend"],
                "seconds": {way: [round(t, 2) for t in values] for way, values in times.items()},
                "inputs_per_second": {way: round(rate, 3) for way, rate in rates.items()},
                "local_over_loop": round(rates["local"] / rates["loop"], 3),
                "ray_over_local": round(rates["ray"] / rates["local"], 3),
                "goals": "local_over_loop >= 1.8; ray_over_local >= 0.8",
            }
            print(key, report["models"][key], flush=True)
    report["load_after"] = os.getloadavg()
    write_report(arguments.output, "throughput", report)


def workers(arguments: argparse.Namespace) -> None:
    import zoo

    report = {**machine(), "runs": arguments.runs, "model": "c3d-sports1m features"}
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        paths = corpus(folder / "clips", 12, 0)
        file = weights_file("c3d-sports1m", folder)
        counts = [int(count) for count in arguments.counts.split(",")]
        times: dict[int, list[float]] = {count: [] for count in counts}
        for run in range(arguments.runs):
            for count in counts[run % len(counts) :] + counts[: run % len(counts)]:
                start = time.perf_counter()
                zoo.features(
                    "c3d-sports1m",
                    paths,
                    folder / f"out-{count}-{run}",
                    weights=file,
                    workers=count,
                )
                times[count].append(time.perf_counter() - start)
        report["inputs_per_second"] = {
            str(count): round(len(paths) / statistics.median(values), 3)
            for count, values in times.items()
        }
        report["seconds"] = {str(c): [round(t, 2) for t in v] for c, v in times.items()}
    report["load_after"] = os.getloadavg()
    print(report, flush=True)
    write_report(arguments.output, "workers", report)


def generated_video(path: Path, minutes: float, size: tuple[int, int], fps: int = 25) -> Path:
    """A moving gradient with noise, mpeg4, ``minutes`` long (cached by name)."""
    import av

    if path.is_file():
        return path
    height, width = size
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 32, (16, height, width, 3), dtype=np.uint8)
    ramp = (np.arange(width, dtype=np.uint16)[None, :, None] * 255 // width).astype(np.uint8)
    partial = path.with_suffix(f".{os.getpid()}.part.mp4")
    with av.open(str(partial), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.bit_rate = 2_000_000
        for index in range(int(minutes * 60 * fps)):
            frame = (
                np.broadcast_to(np.roll(ramp, index, axis=1), (height, width, 3))
                + noise[index % 16]
            )
            video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            container.mux(stream.encode(video_frame))
        container.mux(stream.encode())
    partial.rename(path)
    return path


PEAK = """
import resource, sys, zoo
{call}
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_rss(call: str) -> tuple[float, float]:
    """(peak RSS in GiB, seconds) of ``call`` run in a fresh Python process."""
    start = time.perf_counter()
    finished = subprocess.run(
        [sys.executable, "-c", PEAK.format(call=call)], capture_output=True, text=True
    )
    if finished.returncode != 0:
        raise RuntimeError(finished.stderr[-2000:])
    kib = int(finished.stdout.strip().splitlines()[-1])
    return round(kib / 2**20, 3), round(time.perf_counter() - start, 1)


def memory(arguments: argparse.Namespace) -> None:
    cache = Path(arguments.videos)
    cache.mkdir(parents=True, exist_ok=True)
    report = {**machine(), "goal": "peak RSS flat in the video's length and <= 2 GiB"}
    runs = {}
    with tempfile.TemporaryDirectory() as scratch:
        for minutes in [float(m) for m in arguments.minutes.split(",")]:
            video = generated_video(cache / f"video-{minutes:g}min-360p.mp4", minutes, (360, 640))
            for name, stride in (("c3d-sports1m", 1000), ("i3d-kinetics400-rgb", 2000)):
                if name.startswith("i3d") and minutes > arguments.i3d_features_up_to:
                    continue
                out = Path(scratch) / f"{name}-{minutes:g}"
                call = (
                    f"zoo.features({name!r}, [{str(video)!r}], {str(out)!r}, pretrained=False, "
                    f"stride={stride}, workers=1)"
                )
                rss, seconds = peak_rss(call)
                key = f"features {name} {minutes:g} min 640x360 stride {stride}"
                runs[key] = {"peak_rss_gib": rss, "seconds": seconds}
                print(key, runs[key], flush=True)
        for minutes in [float(m) for m in arguments.i3d_minutes.split(",")]:
            video = generated_video(cache / f"video-{minutes:g}min-720p.mp4", minutes, (720, 1280))
            out = Path(scratch) / f"predict-{minutes:g}.parquet"
            call = (
                f"zoo.predict('i3d-kinetics400-rgb', [{str(video)!r}], {str(out)!r}, "
                "pretrained=False, workers=1)"
            )
            rss, seconds = peak_rss(call)
            key = f"predict i3d-kinetics400-rgb whole video {minutes:g} min 1280x720"
            runs[key] = {"peak_rss_gib": rss, "seconds": seconds}
            print(key, runs[key], flush=True)
    report["runs"] = runs
    report["load_after"] = os.getloadavg()
    write_report(arguments.output, "memory", report)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=RESULTS)
    commands = parser.add_subparsers(dest="command", required=True)
    speed = commands.add_parser("throughput")
    speed.add_argument("--runs", type=int, default=3)
    speed.add_argument("--models", default="i3d,c3d,resnet50")
    rule = commands.add_parser("workers")
    rule.add_argument("--runs", type=int, default=3)
    rule.add_argument("--counts", default="1,2,3")
    rss = commands.add_parser("memory")
    rss.add_argument("--minutes", default="1,10,60")
    rss.add_argument("--i3d-features-up-to", type=float, default=60)
    rss.add_argument("--i3d-minutes", default="1,10")
    rss.add_argument("--videos", default=str(Path(tempfile.gettempdir()) / "zoo-bench-videos"))
    arguments = parser.parse_args()
    {"throughput": throughput, "workers": workers, "memory": memory}[arguments.command](arguments)


if __name__ == "__main__":
    main()
