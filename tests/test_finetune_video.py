"""The lecture's point, measured: which video models see time.

Every video shows a white square moving left or right, and each one's time-reversed
twin is in the other class, so no single frame (nor any set of frames) tells the class:
only their order does. Models that read frame order (C3D, early fusion, CNN+LSTM) learn
it; average-pooled late fusion, whose features are the same for a video and its
reversal, stays at chance, exactly.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from finetune_zoo import finetune_registry, motion_videos

from zoo.cli import main
from zoo.finetuning import finetune

RECIPE = {
    "mode": "full",
    "lr": 1e-2,
    "batch_size": 4,
    "workers": 0,
    "hflip": 0.0,  # a flip turns left into right: it would swap the labels
    "crop_scale": (0.8, 1.0),
    "warmup_epochs": 0,
    "pretrained": False,
}


@pytest.fixture(scope="session")
def motion(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("motion")
    motion_videos(root / "train", pairs=16, seed=1)
    motion_videos(root / "val", pairs=6, seed=2)
    return root


@pytest.fixture(scope="module")
def c3d(motion, tmp_path_factory):
    return tuned("tiny-c3d", motion, tmp_path_factory.mktemp("c3d") / "c3d", epochs=4)


def tuned(model: str, motion: Path, out: Path, epochs: int):
    return finetune(
        model,
        motion / "train",
        out,
        val=motion / "val",
        epochs=epochs,
        registry=finetune_registry(),
        **RECIPE,
    )


@pytest.mark.parametrize(
    ("model", "epochs"), [("tiny-c3d", 4), ("tiny-early-fusion", 6), ("tiny-cnn-lstm", 5)]
)
def test_a_model_that_sees_time_learns_the_direction_of_motion(
    model, epochs, motion, tmp_path, request
):
    report = (
        request.getfixturevalue("c3d")
        if model == "tiny-c3d"
        else tuned(model, motion, tmp_path / "out", epochs)
    )

    assert report.classes == ["left", "right"]
    assert report.val_files == 12
    assert report.metrics["top1"] >= 90


def test_the_video_model_folder_predicts_a_clip_through_zoo_predict(c3d, motion):
    clips = [motion / "val" / "right" / "000.mkv", motion / "val" / "left" / "000.mkv"]

    result = CliRunner().invoke(
        main, ["predict", f"{c3d.output}/", *map(str, clips), "--json", "--backend", "torch"]
    )

    assert result.exit_code == 0, result.output
    top = [json.loads(line)["predictions"][0]["label"] for line in result.output.splitlines()]
    assert top == ["right", "left"]


def test_average_pooled_late_fusion_cannot_tell_the_direction(motion, tmp_path):
    report = tuned("tiny-late-fusion-avg", motion, tmp_path / "out", epochs=3)

    assert report.metrics["top1"] == pytest.approx(50.0)
    assert all(record.val_top1 == pytest.approx(50.0) for record in report.history)
