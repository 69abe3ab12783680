"""The predictor's default path against each family's upstream eager forward, on CPU.

For one family at a time, one process builds the upstream implementation (torchvision,
timm, transformers, the I3D and C3D authors' ports, the conv-lstm package) with random
weights, writes them to a file, and builds the zoo's predictors from that same file in
its upstream layout: the default path (the plugin's measured hints) and each variant
(eager, channels_last, torch.compile, onnxruntime when zoo.export is available). It
checks that every zoo variant agrees with upstream, then times them interleaved (each
round runs every contender once, in rotating order, so load on a shared machine hits
all alike) and reports medians, the speed-up upstream / variant, and the median of
the per-round speed-ups.

    python benchmarks/bench_backends.py --family resnext --runs 7 --threads 1
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
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from results_file import write_report
from safetensors.torch import save_file
from torch import Tensor, nn

import zoo
from zoo.cards import Card
from zoo.inference.bench import variant_options

RESULTS = Path(__file__).parent / "results" / "backends.json"
AGREEMENT = 1e-3
VARIANTS = (
    "default",
    "eager",
    "channels_last",
    "compile",
    "onnxruntime",
    "openvino",
    "torch-bf16",
    "openvino-bf16",
    "onnxruntime-int8",
    "openvino-int8",
)
#: Variants in a reduced precision: their difference to upstream is reported, not bounded.
REDUCED = ("torch-bf16", "openvino-bf16", "onnxruntime-int8", "openvino-int8")


def first_tensor(output: Any) -> Tensor:
    """A comparable tensor: logits, DETR's logits, a detector's first image's boxes."""
    if isinstance(output, Tensor):
        return output
    if isinstance(output, list):
        return output[0]["boxes"]
    if isinstance(output, dict):
        return output.get("logits", next(iter(output.values())))
    return output.logits


@dataclass
class Upstream:
    """An upstream model, its weights file and layout, the zoo card and the input.

    ``upstream_view`` and ``zoo_view`` turn each side's output into the same tensor for
    the agreement check (the C3D port returns a softmax, the zoo logits).
    """

    call: Callable[[Tensor], Any]
    weights: Path
    layout: str
    card: Card
    input: Tensor
    upstream_view: Callable[[Any], Tensor] = first_tensor
    zoo_view: Callable[[Any], Tensor] = first_tensor


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--family", choices=sorted(FAMILIES), required=True)
    parser.add_argument(
        "--variants",
        nargs="+",
        choices=VARIANTS,
        default=["default", "eager", "onnxruntime", "openvino"],
    )
    parser.add_argument(
        "--calibrate",
        type=Path,
        help="int8 variants: a folder of inputs to quantize with (benchmarks/calibration.py)",
    )
    parser.add_argument("--validate", type=Path, help="int8 variants: held-out inputs")
    parser.add_argument("--runs", type=int, default=7, help="timed rounds")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", type=Path, default=RESULTS)
    return parser.parse_args()


SEED = torch.Generator().manual_seed(0)


def image(height: int = 224, width: int = 224) -> Tensor:
    """A normalised-looking input: random pixels in [0, 1] through ImageNet-like scaling."""
    return (torch.rand(1, 3, height, width, generator=SEED) - 0.45) / 0.225


def save(state: dict[str, Tensor], folder: Path) -> Path:
    path = folder / "upstream.safetensors"
    save_file({key: value.contiguous() for key, value in state.items()}, path)
    return path


def randomise_batchnorm(model: nn.Module, eps: float | None = None) -> None:
    generator = torch.Generator().manual_seed(0)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d | nn.BatchNorm3d):
            size = module.num_features
            module.running_mean.copy_(torch.randn(size, generator=generator) * 0.1)
            module.running_var.copy_(torch.rand(size, generator=generator) + 0.5)
            if eps is not None:
                module.eps = eps


def resnext(folder: Path) -> Upstream:
    import torchvision

    model = torchvision.models.resnext50_32x4d(weights=None).eval()
    randomise_batchnorm(model)
    card = zoo.card("resnext50_32x4d.tv_in1k")
    return Upstream(model, save(model.state_dict(), folder), "torchvision", card, image())


def vit(folder: Path) -> Upstream:
    import timm

    model = timm.create_model("vit_base_patch16_224", pretrained=False).eval()
    return Upstream(
        model, save(model.state_dict(), folder), "timm", zoo.card("vit-b16-in1k"), image()
    )


def detr(folder: Path) -> Upstream:
    import transformers
    from bench_detr import randomise

    config = transformers.DetrConfig(
        use_pretrained_backbone=False, backbone="resnet50", num_labels=91
    )
    model = transformers.DetrForObjectDetection(config).eval()
    randomise(model)
    return Upstream(
        lambda pixels: model(pixel_values=pixels),
        save(model.state_dict(), folder),
        "transformers",
        zoo.card("detr-resnet50-coco"),
        image(800, 1066),
    )


def fpn(folder: Path) -> Upstream:
    from bench_fpn import torchvision_model

    x = torch.rand(1, 3, 480, 640, generator=SEED)  # the detector normalises [0, 1] itself
    model = torchvision_model("faster-rcnn-fpn", x).eval()
    card = zoo.card("fpn-resnet50-coco")
    return Upstream(model, save(model.state_dict(), folder), "torchvision", card, x)


def i3d(folder: Path) -> Upstream:
    from cdfvd.third_party.i3d import pytorch_i3d as port

    torch.manual_seed(0)
    model = port.InceptionI3d(num_classes=400, in_channels=3).eval()
    randomise_batchnorm(model, eps=1e-3)  # the port's copy sets 1e-5; the authors' is 1e-3
    return Upstream(
        model,
        save(model.state_dict(), folder),
        "authors",
        zoo.card("i3d-kinetics400-rgb"),
        torch.rand(1, 3, 32, 224, 224, generator=SEED) * 2 - 1,
    )


def c3d(folder: Path) -> Upstream:
    model = DavideAC3D().eval()
    return Upstream(
        model,
        save(model.state_dict(), folder),
        "davidea",
        zoo.card("c3d-sports1m"),
        torch.rand(1, 3, 16, 112, 112, generator=SEED) * 255,
        zoo_view=lambda output: first_tensor(output).softmax(-1),  # the port: probabilities
    )


def convlstm(folder: Path) -> Upstream:
    from conv_lstm import ConvLSTM

    data = zoo.card("convlstm-moving-digits").to_data()
    data["config"]["peephole"] = False  # conv-lstm's cells have none
    data["name"], data["aliases"], data["weights"] = "convlstm-no-peephole", [], []
    card = Card.from_data(data)
    config = card.config
    channels = config["in_channels"] * config["patch_size"] ** 2
    hidden = config["hidden_channels"]
    torch.manual_seed(0)
    encoder = ConvLSTM(channels, hidden, config["kernel_size"], num_layers=len(hidden))
    forecaster = ConvLSTM(0, hidden, config["kernel_size"], num_layers=len(hidden))
    output = nn.Conv2d(sum(hidden), channels, kernel_size=1)
    state = {
        f"{name}.{key}": tensor
        for name, module in (("encoder", encoder), ("forecaster", forecaster), ("output", output))
        for key, tensor in module.state_dict().items()
    }
    network = ConvLSTMPackageNetwork(encoder, forecaster, output, config)
    frames = torch.rand(1, 10, 1, 32, 32, generator=SEED)
    return Upstream(network, save(state, folder), "conv-lstm", card, frames)


class DavideAC3D(nn.Module):
    """DavideA/c3d-pytorch's C3D as published (its forward ends in a softmax)."""

    def __init__(self) -> None:
        super().__init__()
        widths = (3, 64, 128, 256, 256, 512, 512, 512, 512)
        names = ("conv1", "conv2", "conv3a", "conv3b", "conv4a", "conv4b", "conv5a", "conv5b")
        for name, c_in, c_out in zip(names, widths[:-1], widths[1:], strict=True):
            setattr(self, name, nn.Conv3d(c_in, c_out, kernel_size=3, padding=1))
        self.names = names
        self.pools = {
            "conv1": nn.MaxPool3d((1, 2, 2), (1, 2, 2)),
            "conv2": nn.MaxPool3d(2, 2),
            "conv3b": nn.MaxPool3d(2, 2),
            "conv4b": nn.MaxPool3d(2, 2),
            "conv5b": nn.MaxPool3d(2, 2, padding=(0, 1, 1)),
        }
        self.fc6, self.fc7, self.fc8 = (
            nn.Linear(8192, 4096),
            nn.Linear(4096, 4096),
            nn.Linear(4096, 487),
        )
        self.dropout, self.relu = nn.Dropout(0.5), nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        for name in self.names:
            x = self.relu(getattr(self, name)(x))
            if name in self.pools:
                x = self.pools[name](x)
        h = self.dropout(self.relu(self.fc6(x.view(-1, 8192))))
        h = self.dropout(self.relu(self.fc7(h)))
        return torch.softmax(self.fc8(h), dim=1)


class ConvLSTMPackageNetwork(nn.Module):
    """The encoding-forecasting network run with the conv-lstm package's cells."""

    def __init__(self, encoder: nn.Module, forecaster: nn.Module, output: nn.Module, config):
        super().__init__()
        self.encoder, self.forecaster, self.output = encoder, forecaster, output
        self.patch, self.steps = config["patch_size"], config["output_frames"]

    def forward(self, frames: Tensor) -> Tensor:
        n = frames.shape[0]
        patches = F.pixel_unshuffle(frames.flatten(0, 1), self.patch).unflatten(0, frames.shape[:2])
        size = patches.shape[-2:]
        states = [cell.init_hidden(n, size) for cell in self.encoder.cell_list]
        for t in range(patches.shape[1]):
            x = patches[:, t]
            for layer, cell in enumerate(self.encoder.cell_list):
                states[layer] = cell(x, states[layer])
                x = states[layer][0]
        forecast = []
        for _ in range(self.steps):
            x = patches.new_zeros(n, 0, *size)
            for layer, cell in enumerate(self.forecaster.cell_list):
                states[layer] = cell(x, states[layer])
                x = states[layer][0]
            hidden = torch.cat([h for h, _ in states], dim=1)
            forecast.append(F.pixel_shuffle(torch.sigmoid(self.output(hidden)), self.patch))
        return torch.stack(forecast, dim=1)


FAMILIES: dict[str, Callable[[Path], Upstream]] = {
    "c3d": c3d,
    "convlstm": convlstm,
    "detr": detr,
    "fpn": fpn,
    "i3d": i3d,
    "resnext": resnext,
    "vit": vit,
}


def contenders(
    upstream: Upstream, variants: list[str], calibrate: Path | None, validate: Path | None
) -> tuple[dict[str, Callable[[], Any]], dict[str, str], dict[str, Any]]:
    """The calls to time, why each variant that cannot run here did not, int8's gate figures."""
    card, x = upstream.card, upstream.input
    calls: dict[str, Callable[[], Any]] = {"upstream": lambda: upstream.call(x)}
    failures, gates = {}, {}
    for variant in variants:
        options = {} if variant == "default" else variant_options(variant)
        if variant.endswith("int8"):
            options |= {"calibrate": calibrate, "validate": validate, "accept_drop": True}
        try:
            predictor = zoo.predictor(
                card, weights=upstream.weights, layout=upstream.layout, device="cpu", **options
            )
        except zoo.ZooError as error:
            failures[variant] = str(error)
            continue
        if variant.endswith("int8"):  # the gate's figures, kept beside the int8 file
            file = Path(predictor.backend.describe()["file"]).with_name("quantization.json")
            gates[variant] = json.loads(file.read_text())["accuracy"]
        inputs = {card.inputs[0].name: x}
        calls[variant] = lambda predictor=predictor, inputs=inputs: predictor.forward(inputs)
    return calls, failures, gates


def check_agreement(upstream: Upstream, calls: dict[str, Callable[[], Any]]) -> dict[str, float]:
    """Relative max difference of each zoo variant to upstream: the same network and weights."""
    with torch.inference_mode():
        reference = upstream.upstream_view(calls["upstream"]()).float()
        differences = {
            name: relative_difference(upstream.zoo_view(call()).float(), reference)
            for name, call in calls.items()
            if name != "upstream"
        }
    for name, difference in differences.items():
        if difference > AGREEMENT and name not in REDUCED:
            raise SystemExit(f"{name} disagrees with upstream: relative difference {difference}")
    return differences


def relative_difference(found: Tensor, reference: Tensor) -> float:
    return ((found - reference).abs().max() / reference.abs().max()).item()


def time_interleaved(calls: dict[str, Callable[[], Any]], runs: int, warmup: int) -> dict:
    names = list(calls)
    times: dict[str, list[float]] = {name: [] for name in names}
    with torch.inference_mode():
        for round_index in range(warmup + runs):
            shift = round_index % len(names)
            for name in names[shift:] + names[:shift]:
                start = time.perf_counter()
                calls[name]()
                if round_index >= warmup:
                    times[name].append(time.perf_counter() - start)
    return times


def summarise(times: dict[str, list[float]]) -> dict:
    medians = {name: statistics.median(values) for name, values in times.items()}
    upstream = times["upstream"]
    return {
        "median_ms": {name: round(value * 1e3, 2) for name, value in medians.items()},
        "speedup_vs_upstream": {
            name: round(medians["upstream"] / value, 3)
            for name, value in medians.items()
            if name != "upstream"
        },
        "paired_speedup_vs_upstream": {
            name: round(statistics.median(u / v for u, v in zip(upstream, values, strict=True)), 3)
            for name, values in times.items()
            if name != "upstream"
        },
    }


def main() -> None:
    args = parse_arguments()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as folder:
        os.environ["ZOO_CACHE"] = str(Path(folder) / "cache")  # exports of temporary weights
        upstream = FAMILIES[args.family](Path(folder))
        calls, failures, gates = contenders(upstream, args.variants, args.calibrate, args.validate)
        agreement = check_agreement(upstream, calls)
        times = time_interleaved(calls, args.runs, args.warmup)
    card = upstream.card
    default = zoo.default_registry().architecture(card.architecture).inference
    report = {
        "family": args.family,
        "card": card.name,
        "input": list(upstream.input.shape),
        "default_hints": default.model_dump(mode="json"),
        "runs": args.runs,
        "warmup": args.warmup,
        "threads": args.threads,
        "relative_difference_to_upstream": agreement,
        "did_not_run": failures,
        "int8_gate": gates,
        "load_average": os.getloadavg(),
        **summarise(times),
        "torch": torch.__version__,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "cpu_count": os.cpu_count(),
        "measured": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    write_report(args.output, args.family, report)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
