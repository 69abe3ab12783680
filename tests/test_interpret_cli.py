"""``zoo explain``, ``zoo attack`` and ``zoo embed`` on files, through the predictor.

The classifiers run with ``--random`` (seeded, so a command repeats its picture); the
forecaster runs with its shipped, trained weights, and its occlusion is checked against
what a forecaster must rely on: the latest frames.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image, ImageSequence

from zoo.cli import main

ZOO = str(Path(sys.executable).with_name("zoo"))
CLIP = Path(__file__).parent / "data" / "v_CricketShot_g04_c01_rgb.gif"


def zoo(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def frames_of_clip(folder: Path, every: int, noise: float = 0.0) -> list[Path]:
    """Every ``every``-th frame of the sample clip as PNG files (noised if asked)."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    written = []
    with Image.open(CLIP) as gif:
        for index, frame in enumerate(ImageSequence.Iterator(gif)):
            if index % every:
                continue
            pixels = np.asarray(frame.convert("RGB"), dtype=np.float32)
            pixels = np.clip(pixels + rng.normal(0, noise, pixels.shape), 0, 255)
            written.append(folder / f"{index:02d}.png")
            Image.fromarray(pixels.astype(np.uint8)).save(written[-1])
    return written


@pytest.fixture(scope="module")
def frame(tmp_path_factory) -> Path:
    return frames_of_clip(tmp_path_factory.mktemp("frame") / "clean", every=100)[0]


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> Path:
    """Ten frames of two moving digits, as the shipped ConvLSTM was trained on."""
    from zoo_plugins.convlstm.data import moving_digits

    clip = moving_digits(1, 10, "held-out", seed=7)[0, :, 0]
    path = tmp_path_factory.mktemp("digits") / "digits.gif"
    images = [Image.fromarray((frame * 255).round().astype(np.uint8)) for frame in clip]
    images[0].save(path, save_all=True, append_images=images[1:], duration=100, loop=0)
    return path


def test_explain_draws_grad_cam_over_an_image_and_reports_it(frame, tmp_path):
    code, out, _ = zoo(
        "explain", "resnet50.tv_in1k", str(frame), "--random", "-o", str(tmp_path), "--json"
    )
    result = json.loads(out)

    assert code == 0
    assert result["method"] == "gradcam" and result["layer"] == "layer4"
    assert result["target"] == result["top"] and result["axes"] == "HW"
    assert result["shape"] == [224, 224]
    with Image.open(tmp_path / "gradcam.png") as picture:
        assert picture.size == (224, 224)
    assert np.load(tmp_path / "gradcam.npy").shape == (224, 224)
    assert json.loads((tmp_path / "explanation.json").read_text()) == result


def test_layer_names_the_layer_grad_cam_watches(frame, tmp_path):
    code, out, _ = zoo(
        "explain",
        "vit-b16-in1k",
        str(frame),
        "--layer",
        "blocks.8.norm1",
        "--random",
        "-o",
        str(tmp_path),
        "--json",
    )

    assert code == 0
    assert json.loads(out)["layer"] == "blocks.8.norm1"
    assert np.load(tmp_path / "gradcam.npy").shape == (224, 224)


def test_an_output_folder_holding_other_files_needs_force(frame, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    args = ["explain", "resnet50.tv_in1k", str(frame), "--random", "-o", str(tmp_path)]

    code, _, err = zoo(*args)
    assert code == 1 and "is not empty and not a previous zoo output" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]

    code, _, _ = zoo(*args, "--force")
    assert code == 0 and (tmp_path / "notes.txt").read_text() == "mine"
    assert (tmp_path / "gradcam.png").exists()


def test_explain_names_a_target_class_by_label(frame, tmp_path):
    code, out, _ = zoo(
        "explain", "vit-b16-in1k", str(frame), "--random", "--target", "tabby",
        "-o", str(tmp_path), "--json",
    )  # fmt: skip

    assert code == 0
    assert json.loads(out)["target"]["label"] == "tabby"
    assert json.loads(out)["layer"] == "blocks.-1.norm1"
    assert np.isfinite(np.load(tmp_path / "gradcam.npy")).all()


def test_occlusion_of_the_trained_forecaster_finds_it_relies_on_the_latest_frames(digits, tmp_path):
    code, out, _ = zoo(
        "explain", "convlstm-moving-digits", str(digits), "--method", "occlusion",
        "--window", "2,8,8", "--stride", "2,8,8", "--baseline", "0",
        "-o", str(tmp_path), "--json",
    )  # fmt: skip
    result = json.loads(out)

    assert code == 0
    assert result["score"] == "output change" and result["target"] is None
    assert result["axes"] == "THW" and result["shape"] == [10, 32, 32]
    assert sum(result["frame_share"][-4:]) > 0.8  # the last four of ten frames
    with Image.open(tmp_path / "occlusion.gif") as animation:
        assert animation.n_frames == 10 and min(animation.size) >= 96
    with Image.open(tmp_path / "occlusion-frames.png") as sheet:
        assert sheet.size == (5 * 98 - 2, 2 * 98 - 2)  # 10 frames of 96 (32 x 3), 5 a line


def test_attack_writes_the_adversarial_image_beside_the_clean_one(frame, tmp_path):
    code, out, _ = zoo(
        "attack", "resnet50.tv_in1k", str(frame), "--random", "--eps", "0.01",
        "-o", str(tmp_path), "--json",
    )  # fmt: skip
    sample = json.loads(out)["attack"]["samples"][0]

    assert code == 0
    assert sample["linf"] <= 0.01 + 1e-6
    assert sample["target_after"]["probability"] < sample["target"]["probability"]
    adversarial = np.load(tmp_path / "adversarial.npy")
    assert adversarial.shape == (3, 224, 224) and 0 <= adversarial.min() <= adversarial.max() <= 1
    for name in ("attack.png", "adversarial.png"):
        with Image.open(tmp_path / name) as picture:
            assert picture.format == "PNG"


def test_embed_writes_features_finds_neighbours_and_maps_two_folders(tmp_path):
    clean = frames_of_clip(tmp_path / "clean", every=27)
    frames_of_clip(tmp_path / "noised", every=27, noise=40)

    code, out, _ = zoo(
        "embed", "resnet50.tv_in1k", str(tmp_path / "clean"), str(tmp_path / "noised"),
        "--random", "-o", str(tmp_path / "emb.npy"), "--query", str(clean[1]), "-k", "2",
        "--map", str(tmp_path / "map.png"), "--json",
    )  # fmt: skip
    result = json.loads(out)

    assert code == 0
    assert np.load(tmp_path / "emb.npy").shape == (2 * len(clean), 2048)
    assert [i["group"] for i in result["inputs"]] == ["clean"] * 3 + ["noised"] * 3
    assert str(clean[1]) not in [n["name"] for n in result["neighbours"]]
    assert all("/clean/" in n["name"] for n in result["neighbours"])
    assert result["map"]["knn_accuracy"] == 1.0
    with Image.open(tmp_path / "map.png") as picture:
        assert picture.format == "PNG"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["explain", "resnet50.tv_in1k", "{frame}", "--target", "taby"],
         "unknown target label 'taby'; did you mean 'tabby'"),
        (["explain", "convlstm-moving-digits", "{digits}"],
         "Grad-CAM explains a class score and convlstm-moving-digits is a video-forecasting"),
        (["attack", "convlstm-moving-digits", "{digits}"],
         "attacks move a classifier's answer"),
        (["explain", "resnet50.tv_in1k", "{frame}", "--window", "32"],
         "--window belongs to --method occlusion, not gradcam"),
        (["explain", "resnet50.tv_in1k", "{frame}", "--method", "occlusion", "--window", "4,x"],
         "--window expects positive sizes like 32 or 4,32,32, found '4,x' ("),
        (["explain", "resnet50.tv_in1k", "{frame}", "--method", "occlusion", "--window", "9,9,9"],
         "one positive size per axis HW"),
        (["embed", "resnet50.tv_in1k", "{frame}"], "nothing to do: give -o FILE"),
    ],
)  # fmt: skip
def test_a_wrong_request_is_refused_in_one_line_with_nothing_written(
    args, message, frame, digits, tmp_path
):
    filled = [a.format(frame=frame, digits=digits) for a in args]

    code, out, err = zoo(
        *filled, "--random", *(["-o", str(tmp_path / "out")] * (args[0] != "embed"))
    )

    assert code == 1 and out == ""
    assert err.startswith("Error: ") and message in err
    assert len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


def test_the_installed_command_refuses_a_still_image_for_a_video_model_in_one_line(frame, tmp_path):
    result = subprocess.run(
        [ZOO, "explain", "c3d-sports1m", str(frame), "--random", "-o", str(tmp_path)],
        capture_output=True,
        text=True,
    )

    assert result.returncode == 1
    assert "is a still image; c3d-sports1m is a video model" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_the_python_layer_explains_a_file_without_the_cli(digits, tmp_path):
    from zoo.interpret import explain_file

    result = explain_file(
        "convlstm-moving-digits",
        digits,
        tmp_path,
        method="occlusion",
        window=(5, 16, 16),
        stride=(5, 16, 16),
        baseline=0.0,
    )

    assert result.heat.shape == (10, 32, 32) and result.window == [5, 16, 16]
    assert sum(result.frame_share[5:]) > sum(result.frame_share[:5])
    assert json.loads((tmp_path / "explanation.json").read_text())["files"] == result.files


@pytest.mark.heavy
def test_full_size_i3d_gets_a_grad_cam_map_for_every_frame_of_the_sample_clip(tmp_path):
    from zoo.interpret import explain_file

    result = explain_file("i3d-kinetics", CLIP, tmp_path, pretrained=False, device="cpu")

    assert result.layer == "Mixed_4f" and result.axes == "THW"
    frames, height, width = result.shape
    assert (height, width) == (224, 224) and frames >= 64
    assert len(result.frame_share) == frames
    with Image.open(tmp_path / "gradcam.gif") as animation:
        assert animation.n_frames == frames


def test_a_map_coloured_by_label_uses_the_predictors_top_1(tmp_path):
    from zoo.interpret import explore
    from zoo.interpret.subject import seeded_predictor

    frames = frames_of_clip(tmp_path / "clean", every=27)

    result = explore(
        "resnet50.tv_in1k",
        [tmp_path / "clean"],
        map_file=tmp_path / "map.png",
        colour="label",
        pretrained=False,
    )

    predict = seeded_predictor("resnet50.tv_in1k", pretrained=False)
    assert [i.group for i in result.inputs] == [predict(f).top.label for f in frames]
    assert result.vectors.shape == (len(frames), 2048) and result.output is None
