"""The pictures are written, readable, and show what they claim to (opened with Pillow)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from zoo.interpret import FeatureMap
from zoo.interpret.drawing import (
    enlarged,
    overlay,
    scaled,
    write_array,
    write_attack_figure,
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


def test_small_frames_are_enlarged_by_repeating_pixels_not_blurring_them():
    frames = np.arange(2 * 32 * 32 * 3, dtype=np.uint8).reshape(2, 32, 32, 3)

    big = enlarged(frames)

    assert big.shape == (2, 96, 96, 3)
    assert (big[:, ::3, ::3] == frames).all() and (big[:, 1::3, 2::3] == frames).all()
    assert enlarged(np.zeros((1, 224, 224, 3), np.uint8)).shape == (1, 224, 224, 3)


def test_an_array_is_written_whole_as_float32(tmp_path):
    path = write_array(tmp_path / "deep" / "heat.npy", np.arange(6).reshape(2, 3))

    assert np.load(path).dtype == np.float32 and np.load(path).tolist() == [[0, 1, 2], [3, 4, 5]]
    assert [p.name for p in path.parent.iterdir()] == ["heat.npy"]


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
