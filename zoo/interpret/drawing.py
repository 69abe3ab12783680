"""Pictures people would rather look at than read: heat overlays, the scatter, the attack.

Frames come in as uint8 (H, W, 3) arrays (the predictor's ``unrender`` makes them from
the model input); GIFs and contact sheets of clips are the predictor's own
(:mod:`zoo.inference.render`). Pillow writes PNG; matplotlib, used through its object API
(no pyplot state), draws the colour map, the scatter and the attack figure. Every file is
written under a temporary name and renamed, so none is ever half written.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zoo.interpret.results import FeatureMap
from zoo.output import atomic_path

COLOUR_MAP = "turbo"
DISPLAY_SIDE = 96


def scaled(heat: np.ndarray) -> np.ndarray:
    """A map in [0, 1], scaled by its largest value over the whole array (every frame alike,
    so a frame that matters less looks it). An all-zero map stays zero."""
    values = np.asarray(heat, dtype=np.float32).clip(min=0)
    peak = float(values.max()) if values.size else 0.0
    return values / peak if peak > 0 else values


def overlay(image: np.ndarray, heat: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """The heat map (H, W) in [0, 1], coloured, blended over the image (H, W, 3) uint8."""
    from matplotlib import colormaps

    if heat.shape != image.shape[:2]:
        raise ValueError(f"heat map {heat.shape} does not match the image {image.shape[:2]}")
    coloured = colormaps[COLOUR_MAP](heat)[..., :3] * 255
    weight = alpha * heat[..., None] ** 0.5
    return (image * (1 - weight) + coloured * weight).round().astype(np.uint8)


def enlarged(frames: np.ndarray, smallest: int = DISPLAY_SIDE) -> np.ndarray:
    """Frames (T, H, W, 3) repeated to at least ``smallest`` pixels a side: a 32x32 input
    stays a readable picture, each model pixel a visible block (nothing interpolated)."""
    factor = -(-smallest // min(frames.shape[1:3]))
    if factor <= 1:
        return frames
    return frames.repeat(factor, axis=1).repeat(factor, axis=2)


def write_array(path: Path, array: np.ndarray) -> Path:
    """The numbers behind a picture (a map, adversarial pixels, embeddings), float32 .npy."""
    with atomic_path(path) as temporary, temporary.open("wb") as handle:
        np.save(handle, np.asarray(array, dtype=np.float32))
    return path


def write_png(path: Path, image: np.ndarray) -> Path:
    from PIL import Image

    with atomic_path(path) as temporary:
        Image.fromarray(image).save(temporary, format="PNG", optimize=True)
    return path


def write_scatter(path: Path, feature_map: FeatureMap, title: str) -> Path:
    """The 2-D map as a scatter plot coloured by group, with the k-NN accuracy in the title."""
    figure, axes = _figure((6, 5))
    groups = sorted({point.group for point in feature_map.points})
    for group in groups:
        points = [p for p in feature_map.points if p.group == group]
        axes.scatter([p.x for p in points], [p.y for p in points], s=18, label=group, alpha=0.8)
    if len(groups) <= 20:
        axes.legend(fontsize=8, loc="best")
    if feature_map.knn_accuracy is not None:
        accuracy, chance = feature_map.knn_accuracy, feature_map.chance
        title += f"\nk-NN accuracy in the 2-D map {accuracy:.2f} (chance {chance:.2f})"
    axes.set_title(title, fontsize=9)
    axes.set_xlabel(f"{feature_map.method} 1")
    axes.set_ylabel(f"{feature_map.method} 2")
    return _save_figure(path, figure)


def write_attack_figure(
    path: Path, clean: np.ndarray, adversarial: np.ndarray, captions: Sequence[str], title: str
) -> Path:
    """Clean and adversarial side by side with their predictions, and the change between
    them stretched to full contrast (at eps = 2/255 it is invisible otherwise)."""
    change = adversarial.astype(np.float32) - clean.astype(np.float32)
    spread = float(np.abs(change).max()) or 1.0
    stretched = ((change / spread) * 127.5 + 127.5).round().astype(np.uint8)
    panels = [clean, adversarial, stretched]
    figure, axes = _figure((9, 3.4), columns=3)
    for ax, panel, caption in zip(axes, panels, captions, strict=True):
        ax.imshow(panel, interpolation="nearest")
        ax.set_title(caption, fontsize=8)
        ax.set_axis_off()
    figure.suptitle(title, fontsize=9)
    return _save_figure(path, figure)


def _figure(size: tuple[float, float], columns: int = 1) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, dpi=100, layout="constrained")
    axes = figure.subplots(1, columns)
    return figure, axes


def _save_figure(path: Path, figure: Any) -> Path:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    with atomic_path(path) as temporary:
        temporary.write_bytes(buffer.getvalue())
    return path
