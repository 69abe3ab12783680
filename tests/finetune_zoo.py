"""What the fine-tuning tests train on: generated data, small cards and parent folders.

- Images whose class is their colour (a red, green or blue field with noise, and a gray
  square placed at random to distract).
- Videos whose class is the direction a white square moves (left or right): every frame
  of a video looks alike, only their order tells the class. Each video is saved with its
  time-reversed twin, which is the same frames in the other class, so a model that
  ignores frame order (average-pooled late fusion) cannot beat chance, exactly.
- Small cards of the built-in ResNeXt, C3D and fusion models and of the third-party
  ``tinyframe`` plugin, registered in a registry of their own.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import finetune_plugin
import numpy as np
import torch
from conftest import cards_plugin
from media import write_image, write_video

import zoo
from zoo.cards import Card
from zoo.loading import count_parameters, empty_model
from zoo.publish import write_folder
from zoo.registry import Registry, using_registry
from zoo_plugins import c3d, fusion, resnext

COLOURS = {"blue": (40, 60, 220), "green": (40, 190, 70), "red": (210, 50, 40)}
IMAGE_SIZE = 16
FRAMES = 16
"""Video clips: 16 frames of 16x16 pixels, the smallest clip C3D takes."""
SQUARE = 4
PLUGINS = {
    "resnext": resnext,
    "c3d": c3d,
    "fusion": fusion,
    "tinyframe": finetune_plugin,
}
IMAGE_INPUT = {"name": "image", "layout": "NCHW", "channels": 3, "size": [IMAGE_SIZE] * 2}
VIDEO_INPUT = {
    "name": "video",
    "layout": "NCTHW",
    "channels": 3,
    "frames": FRAMES,
    "temporal": {"protocol": "clips", "clips": 1},
    "size": [IMAGE_SIZE] * 2,
}
TINY_VIT = {
    "image_size": 16,
    "patch_size": 4,
    "width": 16,
    "depth": 2,
    "heads": 2,
    "num_classes": 5,
}
TINY_RESNEXT = {"layers": [1, 1, 1, 1], "groups": 2, "width_per_group": 4, "num_classes": 5}


def colour_images(root: Path, per_class: int, seed: int = 0) -> Path:
    """``root/<colour>/<i>.png``: a noisy field of the class colour, a gray square on it."""
    rng = np.random.default_rng(seed)
    for name, colour in COLOURS.items():
        (root / name).mkdir(parents=True)
        for index in range(per_class):
            noise = rng.integers(-40, 40, (IMAGE_SIZE, IMAGE_SIZE, 3))
            image = np.clip(np.asarray(colour) + noise, 0, 255).astype(np.uint8)
            side = int(rng.integers(3, 7))
            top, left = rng.integers(0, IMAGE_SIZE - side, 2)
            image[top : top + side, left : left + side] = int(rng.integers(60, 200))
            write_image(root / name / f"{index:03d}.png", image)
    return root


def moving_square(right: bool, top: int, start: int) -> np.ndarray:
    """A white square on black, one pixel right (or left) every other frame: (T, H, W, 3)."""
    frames = np.zeros((FRAMES, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    for t in range(FRAMES):
        left = start + t // 2
        frames[t, top : top + SQUARE, left : left + SQUARE] = 255
    return frames if right else frames[::-1].copy()


def motion_videos(root: Path, pairs: int, seed: int) -> Path:
    """``root/left`` and ``root/right``: ``pairs`` videos each, every right video's reverse
    in left (lossless ffv1, so the twins hold exactly the same frames)."""
    rng = np.random.default_rng(seed)
    travel = FRAMES // 2
    for folder in ("left", "right"):
        (root / folder).mkdir(parents=True)
    for index in range(pairs):
        top = int(rng.integers(0, IMAGE_SIZE - SQUARE + 1))
        start = int(rng.integers(0, IMAGE_SIZE - SQUARE - travel + 2))
        for folder, right in (("right", True), ("left", False)):
            path = root / folder / f"{index:03d}.mkv"
            write_video(path, moving_square(right, top, start), fps=8)
    return root


def card(name: str, architecture: str, config: dict[str, Any], **fields: Any) -> Card:
    data = {
        "name": name,
        "architecture": architecture,
        "config": config,
        "task": "image-classification",
        "summary": f"{name}, for the fine-tuning tests",
        "inputs": [IMAGE_INPUT],
        "outputs": [{"name": "logits", "shape": [config["num_classes"]]}],
        "parameters": 1,
        "license": "mit",
        **fields,
    }
    registry = Registry.from_plugins({**PLUGINS, "cards": cards_plugin("cards", *base_cards())})
    with using_registry(registry):
        model = empty_model(registry.architecture(architecture), config)
    return Card.from_data({**data, "parameters": count_parameters(model)}, origin=name)


@cache
def base_cards() -> tuple[Card, ...]:
    """The image models (the fusion models' backbones among them)."""
    return tuple(
        Card.from_data(
            {
                "name": name,
                "architecture": architecture,
                "config": config,
                "task": "image-classification",
                "summary": name,
                "inputs": [IMAGE_INPUT],
                "outputs": [{"name": "logits", "shape": [config["num_classes"]]}],
                "parameters": 1,
                "license": "mit",
            },
            origin=name,
        )
        for name, architecture, config in (
            ("tiny-resnext", "resnext", TINY_RESNEXT),
            ("tiny-frame", "tinyframe", {"num_classes": 5}),
        )
    )


def video_card(name: str, architecture: str, config: dict[str, Any]) -> Card:
    return card(name, architecture, config, task="video-classification", inputs=[VIDEO_INPUT])


@cache
def video_cards() -> tuple[Card, ...]:
    """Models that see time (C3D, early fusion, CNN+LSTM) and one that does not."""
    backbone = {"backbone": "tiny-frame", "num_classes": 5, "dropout": 0.0}
    return (
        video_card(
            "tiny-c3d",
            "c3d",
            {
                "channels": [4, 8, 8, 8, 16, 16, 16, 16],
                "hidden": 32,
                "frames": FRAMES,
                "size": IMAGE_SIZE,
                "num_classes": 5,
                "dropout": 0.0,
            },
        ),
        video_card("tiny-early-fusion", "early-fusion", {**backbone, "frames": FRAMES}),
        video_card("tiny-cnn-lstm", "cnn-lstm", {**backbone, "hidden_size": 16}),
        video_card("tiny-late-fusion-avg", "late-fusion", {**backbone, "pooling": "avg"}),
    )


@cache
def finetune_registry() -> Registry:
    cards = [*base_cards(), *video_cards()]
    return Registry.from_plugins({**PLUGINS, "cards": cards_plugin("cards", *cards)})


def parent_folder(
    registry: Registry, name: str, folder: Path, seed: int = 0, images: torch.Tensor | None = None
) -> Path:
    """A zoo folder of card ``name`` with random weights (from ``seed``), its BatchNorm
    statistics measured on ``images`` (model inputs) as a pretrained model's would be."""
    made = registry.card(name)
    torch.manual_seed(seed)
    model = zoo.build(made.architecture, made.config, registry=registry)
    if images is not None:
        calibrate_batchnorm(model, images)
    state = {key: value.contiguous() for key, value in model.state_dict().items()}
    write_folder(made, state, folder)
    return folder


def calibrate_batchnorm(model: torch.nn.Module, images: torch.Tensor) -> None:
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average over what it sees
    with torch.no_grad():
        model.train()(images)
    for norm in norms:
        norm.momentum = 0.1
