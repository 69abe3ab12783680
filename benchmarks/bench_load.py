"""zoo.load against safetensors.load_file and timm, for a ViT-B/16 from the same local file.

Each measurement runs in a fresh subprocess (so caches and allocator state do not
carry over), after the imports every method needs; the median of several runs is
reported with its ratio to the baselines. Peak RSS is VmHWM, reset after the imports
(``/proc/self/clear_refs``), minus the RSS then, compared with the weights file's size.

    python benchmarks/bench_load.py [--runs 5]

writes benchmarks/results/load.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CARD = "vit-b16-in1k"
TIMM_NAME = "vit_base_patch16_224"
RESULTS = Path(__file__).parent / "results" / "load.json"


def _status_bytes(field: str) -> int:
    """A ``/proc/self/status`` memory figure (Linux), in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def _reset_peak() -> int:
    """Reset the peak RSS (VmHWM) to the current RSS, so import-time peaks do not count."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status_bytes("VmRSS")


def worker(method: str, path: str) -> dict[str, float]:
    """One timed load in this process; returns seconds and memory figures."""
    import torch  # noqa: F401  (imported before the baseline on purpose)
    from safetensors.torch import load_file

    import zoo
    from zoo.loading import empty_model

    if method == "timm":
        import timm
    baseline = _reset_peak()
    start = time.perf_counter()
    if method == "load_file":
        state = load_file(path)
        sink = sum(tensor.numel() for tensor in state.values())
    elif method == "load_file+meta_build":
        state = load_file(path)
        registry = zoo.default_registry()
        card = registry.card(CARD)
        model = empty_model(registry.architecture(card.architecture), card.config)
        sink = len(state) + len(list(model.parameters()))
    elif method == "zoo.load":
        model = zoo.load(CARD, weights=path, layout="timm")
        sink = sum(p.numel() for p in model.parameters())
    elif method == "timm":
        model = timm.create_model(
            TIMM_NAME, pretrained=True, pretrained_cfg_overlay={"file": path}
        ).eval()
        sink = sum(p.numel() for p in model.parameters())
    else:
        raise ValueError(f"unknown method {method!r}")
    seconds = time.perf_counter() - start
    peak = _status_bytes("VmHWM") - baseline
    return {"seconds": seconds, "peak_above_baseline": peak, "sink": sink}


def run(method: str, path: Path) -> dict[str, float]:
    output = subprocess.run(
        [sys.executable, __file__, "--worker", method, str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--worker", nargs=2, metavar=("METHOD", "FILE"))
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker)))
        return
    import timm
    from safetensors.torch import save_file

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "vit_b16_timm.safetensors"
        save_file(timm.create_model(TIMM_NAME, pretrained=False).state_dict(), path)
        size = path.stat().st_size
        methods = ["load_file", "load_file+meta_build", "zoo.load", "timm"]
        samples = {method: [] for method in methods}
        for _ in range(args.runs):
            for method in methods:  # interleaved, so machine load hits every method alike
                samples[method].append(run(method, path))
    medians = {
        method: {
            "seconds": statistics.median(s["seconds"] for s in runs),
            "peak_rss_above_baseline_mb": statistics.median(s["peak_above_baseline"] for s in runs)
            / 1e6,
        }
        for method, runs in samples.items()
    }
    zoo_seconds = medians["zoo.load"]["seconds"]
    result = {
        "model": f"{CARD} (timm layout, converted in memory)",
        "weights_mb": size / 1e6,
        "runs": args.runs,
        "median": medians,
        "ratios": {
            "zoo.load / load_file": zoo_seconds / medians["load_file"]["seconds"],
            "zoo.load / (load_file + meta build)": zoo_seconds
            / medians["load_file+meta_build"]["seconds"],
            "zoo.load / timm": zoo_seconds / medians["timm"]["seconds"],
            "zoo.load peak RSS above baseline / weights size": medians["zoo.load"][
                "peak_rss_above_baseline_mb"
            ]
            / (size / 1e6),
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
