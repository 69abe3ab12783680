"""ViT-B/16 inference speed: the zoo against timm and transformers, same weights, same input.

One randomly initialised transformers model is saved in its own layout; the zoo loads that
file through its converter and timm receives the zoo's state dict (the zoo's layout is
timm's), so all three compute the same function. Each round times every model once,
interleaved, so load from other processes hits them alike; medians and ratios come
from one run. Results go to ``benchmarks/results/vit.json``.

    OMP_NUM_THREADS=1 python benchmarks/bench_vit.py --batch 1 4 --rounds 15
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import timm
import torch
import transformers
from torch import Tensor, nn

import zoo

RESULTS = Path(__file__).parent / "results" / "vit.json"
EPS = 1e-12  # transformers' LayerNorm eps; timm and the zoo are told the same


def build_models(folder: Path) -> tuple[dict[str, Callable[[Tensor], Tensor]], float]:
    """The three implementations with identical weights, and the zoo's load time in seconds."""
    torch.manual_seed(0)
    upstream = transformers.ViTForImageClassification(transformers.ViTConfig(num_labels=1000))
    upstream.save_pretrained(folder)
    start = time.perf_counter()
    ours = zoo.build(
        "vit", {"layer_norm_eps": EPS}, weights=folder / "model.safetensors", layout="transformers"
    )
    load_seconds = time.perf_counter() - start
    reference = timm.create_model(
        "vit_base_patch16_224",
        pretrained=False,
        norm_layer=functools.partial(nn.LayerNorm, eps=EPS),
    )
    reference.load_state_dict(ours.state_dict())
    for model in (ours, reference, upstream):
        model.eval()
    models = {
        "zoo": ours,
        "timm": reference,
        "transformers": lambda x: upstream(pixel_values=x).logits,
    }
    return models, load_seconds


def largest_relative_difference(models: dict[str, Callable], x: Tensor) -> float:
    """How far timm and transformers are from the zoo: proof that they run the same weights."""
    outputs = {name: model(x) for name, model in models.items()}
    ours = outputs.pop("zoo")
    return max(((ours - out).abs().max() / out.abs().max()).item() for out in outputs.values())


def time_interleaved(
    models: dict[str, Callable], x: Tensor, rounds: int, warmup: int
) -> dict[str, dict[str, float]]:
    """Median wall-clock and CPU seconds per forward, round-robin from a rotating first model.

    CPU time (this process only) is the steadier figure on a machine shared with other
    jobs: waiting for a core counts in wall-clock time but not in CPU time.
    """
    names = list(models)
    samples: dict[str, dict[str, list[float]]] = {
        clock: {name: [] for name in names} for clock in ("wall", "cpu")
    }
    for round_index in range(warmup + rounds):
        first = round_index % len(names)
        for name in names[first:] + names[:first]:
            wall, cpu = time.perf_counter(), time.process_time()
            models[name](x)
            if round_index >= warmup:
                samples["wall"][name].append(time.perf_counter() - wall)
                samples["cpu"][name].append(time.process_time() - cpu)
    return {
        clock: {name: statistics.median(times) for name, times in by_name.items()}
        for clock, by_name in samples.items()
    }


def ratios(medians: dict[str, float]) -> dict[str, float]:
    return {
        "zoo_to_timm": medians["zoo"] / medians["timm"],
        "zoo_to_transformers": medians["zoo"] / medians["transformers"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder, torch.inference_mode():
        models, load_seconds = build_models(Path(folder))
        runs = []
        for batch in args.batch:
            x = torch.randn(batch, 3, 224, 224)
            medians = time_interleaved(models, x, args.rounds, args.warmup)
            runs.append(
                {
                    "batch": batch,
                    "median_wall_seconds": medians["wall"],
                    "median_cpu_seconds": medians["cpu"],
                    "wall_ratios": ratios(medians["wall"]),
                    "cpu_ratios": ratios(medians["cpu"]),
                    "max_relative_difference_to_zoo": largest_relative_difference(models, x),
                }
            )
            print(json.dumps(runs[-1]))
    result = {
        "model": "ViT-B/16, 224x224, 1000 classes, float32, eval, torch.inference_mode",
        "device": "cpu",
        "threads": torch.get_num_threads(),
        "rounds": args.rounds,
        "warmup": args.warmup,
        "zoo_build_with_weights_seconds": load_seconds,
        "versions": {
            "torch": torch.__version__,
            "timm": timm.__version__,
            "transformers": transformers.__version__,
            "python": platform.python_version(),
        },
        "machine": platform.machine(),
        "runs": runs,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
