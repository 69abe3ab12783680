"""CPU inference speed of the zoo's Faster R-CNN R50-FPN and ResNet-50 FPN against torchvision's.

One process builds torchvision's model as its COCO checkpoint is built (ResNet-50
with FrozenBatchNorm2d under ``BackboneWithFPN``, then ``FasterRCNN`` with 91
classes) with random, well-conditioned weights (see ``torchvision_model``), loads the same weights
into the zoo's model through the ``torchvision`` converter, checks that both give
the same detections (or pyramid), then times them interleaved (order alternating
each round, each forward timed alone) so that load on a shared machine hits both
alike. It reports the median of the timed runs and the ratio zoo / torchvision
(below 1: the zoo is faster), and writes them as JSON.

    python benchmarks/bench_fpn.py --model faster-rcnn-fpn --height 480 --width 640 --runs 5
    python benchmarks/bench_fpn.py --model resnet-fpn --height 800 --width 1088 --runs 5
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
import torchvision
from results_file import write_report
from safetensors.torch import save_file
from torch import Tensor, nn
from torchvision.models.detection import fasterrcnn_resnet50_fpn
from torchvision.ops.misc import FrozenBatchNorm2d

import zoo

RESULTS = Path(__file__).parent / "results" / "fpn.json"
AGREEMENT = 1e-5
DETECTED_CLASSES = [1, 3, 18]


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model", choices=["faster-rcnn-fpn", "resnet-fpn"], default="faster-rcnn-fpn"
    )
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--height", type=int, default=480, help="input height (before resizing)")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--runs", type=int, default=5, help="timed forwards per model")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", type=Path, default=RESULTS)
    return parser.parse_args()


def torchvision_model(name: str, x: Tensor) -> nn.Module:
    """torchvision's network as it is built for the COCO checkpoint, random but well-conditioned.

    ``fasterrcnn_resnet50_fpn(weights=None)`` has plain BatchNorm2d: its statistics are
    taken from the input itself (then a random affine), every conv and linear layer gets
    unit-gain noise and each pyramid output unit deviation, so the RPN yields a realistic
    1000 proposals per image and the box head real detections (default init saturates
    everything and leaves a few dozen degenerate proposals, which would time a cheaper
    network than the real one). BatchNorm is then frozen, as in the COCO model.
    """
    generator = torch.Generator().manual_seed(0)
    detector = fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None).eval()
    with torch.no_grad():
        for module in detector.modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                module.weight.normal_(0, module.weight[0].numel() ** -0.5, generator=generator)
                if module.bias is not None:
                    module.bias.uniform_(-0.1, 0.1, generator=generator)
        pixels = x if name == "resnet-fpn" else detector.transform(list(x))[0].tensors
        calibrate_batchnorm(detector.backbone, pixels, generator)
        for level, block in zip(
            detector.backbone(pixels).values(), detector.backbone.fpn.layer_blocks, strict=False
        ):
            block[0].weight /= level.std()
            block[0].bias /= level.std()
        detector.roi_heads.box_predictor.cls_score.bias[DETECTED_CLASSES] += 3.0
    freeze_batchnorm(detector)
    return detector.backbone if name == "resnet-fpn" else detector


def calibrate_batchnorm(backbone: nn.Module, pixels: Tensor, generator: torch.Generator) -> None:
    norms = [module for module in backbone.modules() if isinstance(module, nn.BatchNorm2d)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
    backbone.train()
    backbone(pixels)
    backbone.eval()
    for norm in norms:
        norm.weight.uniform_(0.5, 1.5, generator=generator)
        norm.bias.uniform_(-0.2, 0.2, generator=generator)


def freeze_batchnorm(model: nn.Module) -> None:
    """Swap every BatchNorm2d for torchvision's FrozenBatchNorm2d with the same tensors."""
    for name, module in list(model.named_modules()):
        if isinstance(module, nn.BatchNorm2d):
            frozen = FrozenBatchNorm2d(module.num_features, eps=module.eps)
            for buffer in ("weight", "bias", "running_mean", "running_var"):
                getattr(frozen, buffer).copy_(getattr(module, buffer).detach())
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent), child, frozen)


def build_models(name: str, x: Tensor, folder: Path) -> dict[str, nn.Module]:
    reference = torchvision_model(name, x).eval()
    path = folder / "weights.safetensors"
    save_file({key: value.contiguous() for key, value in reference.state_dict().items()}, path)
    ours = zoo.build(name, {}, weights=path, layout="torchvision").eval()
    return {"zoo": ours, "torchvision": reference}


def outputs_of(name: str, output: object) -> dict[str, Tensor]:
    """The tensors to compare: the first image's detections, or every pyramid level."""
    return output[0] if name == "faster-rcnn-fpn" else output


def check_agreement(name: str, models: dict[str, nn.Module], x: Tensor) -> dict[str, float]:
    """Relative difference per output (and, for the detector, how many it detected)."""
    with torch.inference_mode():
        ours = outputs_of(name, models["zoo"](x))
        theirs = outputs_of(name, models["torchvision"](x))
    if ours.keys() != theirs.keys() or any(ours[key].shape != theirs[key].shape for key in theirs):
        raise SystemExit(f"zoo and torchvision disagree on output shapes for {name}")
    differences = {
        key: (
            (ours[key].float() - theirs[key].float()).abs().max() / theirs[key].abs().max()
        ).item()
        for key in theirs
        if theirs[key].numel()
    }
    for key, difference in differences.items():
        if difference > AGREEMENT:
            raise SystemExit(f"zoo and torchvision disagree on {key}: {difference:.2e}")
    if name == "faster-rcnn-fpn":
        differences["detections"] = len(theirs["boxes"])
    return differences


def time_interleaved(
    models: dict[str, nn.Module], run: Callable[[nn.Module], object], runs: int, warmup: int
) -> dict[str, list[float]]:
    """Each round runs both models once, the order alternating, so drift hits both alike."""
    names = list(models)
    times: dict[str, list[float]] = {name: [] for name in names}
    with torch.inference_mode():
        for round_index in range(warmup + runs):
            order = names if round_index % 2 == 0 else names[::-1]
            for name in order:
                start = time.perf_counter()
                run(models[name])
                if round_index >= warmup:
                    times[name].append(time.perf_counter() - start)
    return times


def main() -> None:
    args = parse_arguments()
    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(1)
    # The detector takes [0, 1] images and resizes them itself; the pyramid takes normalised ones.
    if args.model == "faster-rcnn-fpn":
        x = torch.rand(args.batch, 3, args.height, args.width, generator=generator)
    else:
        x = torch.randn(args.batch, 3, args.height, args.width, generator=generator)
    with tempfile.TemporaryDirectory() as folder:
        models = build_models(args.model, x, Path(folder))
        agreement = check_agreement(args.model, models, x)
        times = time_interleaved(models, lambda model: model(x), args.runs, args.warmup)
    medians = {name: statistics.median(values) for name, values in times.items()}
    report = {
        "model": args.model,
        "input": [args.batch, 3, args.height, args.width],
        "runs": args.runs,
        "warmup": args.warmup,
        "threads": args.threads,
        "relative_difference_to_torchvision": agreement,
        "median_ms": {name: round(value * 1e3, 1) for name, value in medians.items()},
        "times_ms": {name: [round(t * 1e3, 1) for t in values] for name, values in times.items()},
        "ratio_zoo_to_torchvision": round(medians["zoo"] / medians["torchvision"], 3),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg()[0],
        "measured": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    write_report(args.output, args.model, report)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
