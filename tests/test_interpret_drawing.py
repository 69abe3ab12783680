"""The pictures are written, readable, and show what they claim to (opened with Pillow)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from zoo.interpret import FeatureMap
from zoo.interpret.drawing import (
    contact_sheet,
    display_pixels,
    overlay,
    scaled,
    write_attack_figure,
    write_gif,
    write_png,
    write_scatter,
)
from zoo.interpret.results import MapPoint


def grey_image(size: int = 32) -> np.ndarray:
    return np.full((size, size, 3), 128, dtype=np.uint8)


def test_an_overlay_colours_the_hot_region_and_leaves_the_cold_one(tmp_path):
    heat = np.zeros((32, 32), dtype=np.float32)
    heat[:8, :8] = 1.0

    path = write_png(tmp_path / "cam.png", overlay(grey_image(), heat))

    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB"))
    assert image.format == "PNG" and pixels.shape == (32, 32, 3)
    assert (pixels[16:, 16:] == 128).all()
    assert np.abs(pixels[:8, :8].astype(int) - 128).max() > 50
    assert not list(tmp_path.glob(".*partial"))


def test_a_heat_map_is_scaled_over_the_whole_clip_so_frames_compare():
    clip = np.stack([np.full((4, 4), 2.0), np.full((4, 4), 1.0), np.full((4, 4), -1.0)])

    result = scaled(clip)

    assert result[0].max() == 1.0 and result[1].max() == 0.5 and result[2].max() == 0.0
    assert scaled(np.zeros((2, 2))).max() == 0.0


@pytest.mark.parametrize(
    ("channels", "order", "first_pixel"),
    [(1, "gray", [255, 255, 255]), (2, "flow-xy", [255, 0, 128]), (3, "BGR", [0, 0, 255])],
)
def test_grey_flow_and_bgr_pixels_are_shown_as_rgb(channels, order, first_pixel):
    pixels = torch.zeros(channels, 2, 2)
    pixels[0] = 1.0

    assert display_pixels(pixels, order)[0, 0].tolist() == first_pixel


def test_a_clip_becomes_a_gif_with_every_frame_and_a_contact_sheet(tmp_path):
    frames = [np.full((16, 20, 3), 40 * i, dtype=np.uint8) for i in range(6)]

    gif = write_gif(tmp_path / "cam.gif", frames)
    captions = [f"t={i}" for i in range(6)]
    sheet = write_png(tmp_path / "sheet.png", contact_sheet(frames, captions, columns=4))

    with Image.open(gif) as image:
        assert image.format == "GIF" and image.n_frames == 6 and image.size == (20, 16)
    with Image.open(sheet) as image:
        assert image.size == (4 * 20, 2 * (16 + 14))


def test_the_scatter_and_the_attack_figure_are_readable_pngs(tmp_path):
    mapped = FeatureMap(
        method="tsne",
        points=[MapPoint(name=str(i), group="ab"[i % 2], x=i, y=i % 2) for i in range(6)],
        knn_accuracy=1.0,
        chance=0.5,
    )
    scatter = write_scatter(tmp_path / "map.png", mapped, "two groups")
    figure = write_attack_figure(
        tmp_path / "attack.png",
        grey_image(),
        grey_image() + 2,
        ["clean: cat (90%)", "adversarial: dog (60%)", "change x64"],
        "FGSM eps=2/255",
    )

    for path in (scatter, figure):
        with Image.open(path) as image:
            assert image.format == "PNG" and min(image.size) > 200
            assert len(np.unique(np.asarray(image.convert("L")))) > 10  # not a blank canvas
