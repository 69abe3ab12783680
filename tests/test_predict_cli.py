"""``zoo predict`` and ``zoo bench`` through the real console script, on real files."""

from __future__ import annotations

import fcntl
import json
import os
import struct
import subprocess
import sys
import termios
from pathlib import Path

import numpy as np
import pytest
from media import sample_frames, write_image, write_video
from PIL import Image

ZOO = str(Path(sys.executable).with_name("zoo"))


def run(*args: str, **options) -> subprocess.CompletedProcess:
    return subprocess.run([ZOO, *map(str, args)], capture_output=True, text=True, **options)


def write_gif(path: Path, frames: np.ndarray, fps: int = 25) -> Path:
    images = [Image.fromarray(frame) for frame in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=1000 // fps, loop=0)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """One good clip and every kind of bad input the issue lists."""
    folder = tmp_path_factory.mktemp("inputs")
    frames = sample_frames()
    truncated = write_video(folder / "truncated.mp4", frames[:20], fps=25, codec="mpeg4")
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    (folder / "text.mp4").write_text("this is not a video\n")
    (folder / "empty.gif").write_bytes(b"")
    return {
        "clip": write_gif(folder / "clip.gif", frames[:12]),
        "mp4": write_video(folder / "clip.mp4", frames[:12], fps=25, codec="libx264"),
        "four": write_gif(folder / "four.gif", frames[:4]),
        "image": write_image(folder / "image.png", frames[0]),
        "gray": write_image(folder / "gray.png", frames[0, ..., 1]),
        "missing": folder / "missing.mp4",
        "truncated": truncated,
        "text": folder / "text.mp4",
        "empty": folder / "empty.gif",
    }


def test_bad_inputs_each_get_one_line_and_the_other_inputs_still_get_results(files):
    names = ["missing", "truncated", "clip", "text", "image", "four", "mp4", "empty"]

    result = run("predict", "i3d-kinetics", *(files[n] for n in names), "--random", "--json")

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    good = [json.loads(line)["input"] for line in result.stdout.splitlines()]
    assert good == [str(files["clip"]), str(files["mp4"])]
    errors = result.stderr.splitlines()
    assert errors[-1] == "error: 6 of 8 inputs failed"
    expected = {
        "missing": "no such file; expected an image (jpg, png, ...) or a video",
        "truncated": "cannot decode as a video (PyAV: Invalid data found when processing input)",
        "text": "cannot decode as a video",
        "image": "is a still image; i3d-kinetics400-rgb is a video model (NCTHW, clips of 64",
        "four": "has 4 frames at 25 fps; i3d-kinetics400-rgb needs at least 9",
        "empty": "is empty (0 bytes); expected an image",
    }
    assert len(errors) == len(expected) + 1
    for name, message in expected.items():
        (error,) = [line for line in errors if line.startswith(f"error: {files[name]}: ")]
        assert message in error, error


def test_predict_prints_one_json_object_per_input_and_a_bar_only_on_a_terminal(files):
    terminal, stderr = os.openpty()
    fcntl.ioctl(stderr, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 24 x 100
    inputs = [files["image"], files["gray"]]
    result = subprocess.run(
        [ZOO, "predict", "resnet50.tv_in1k", *inputs, "--random", "--json", "--topk", "3"],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )
    os.close(stderr)
    shown = _read_all(terminal)

    assert result.returncode == 0, shown
    objects = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["input"] for o in objects] == [str(files["image"]), str(files["gray"])]
    for data in objects:
        assert data["model"] == "resnet50.tv_in1k" and data["task"] == "image-classification"
        assert [set(p) for p in data["predictions"]] == [{"label", "index", "score"}] * 3
    assert "2/2" in shown and "input" in shown  # tqdm's bar, on the terminal's stderr


def _read_all(terminal: int) -> str:
    chunks = []
    try:
        while chunk := os.read(terminal, 1 << 16):
            chunks.append(chunk)
    except OSError:  # EIO: the other end is closed and everything was read
        pass
    os.close(terminal)
    return b"".join(chunks).decode(errors="replace")


def in_process(*args: str):
    """The same command in this process (torch already imported): for output formats."""
    from click.testing import CliRunner

    from zoo.cli import main

    return CliRunner().invoke(main, [str(arg) for arg in args])


def test_predict_prints_a_readable_table_by_default(files):
    result = in_process("predict", "resnet50.tv_in1k", files["image"], "--random", "--topk", "2")

    lines = result.stdout.splitlines()
    assert result.exit_code == 0, result.output
    assert lines[0] == f"{files['image']}  (resnet50.tv_in1k)"
    assert lines[1].split() == ["rank", "label", "index", "score"]
    assert [line.split()[0] for line in lines[2:]] == ["1", "2"]
    assert result.stderr == ""  # no progress bar when stderr is not a terminal


def test_show_input_writes_the_exact_model_input_as_a_contact_sheet(files, tmp_path):
    import zoo
    from zoo.inference.render import contact_sheet

    picture = tmp_path / "seen.png"
    args = ("predict", "i3d-kinetics", files["clip"], "--random", "--show-input", picture)
    result = in_process(*args)

    assert result.exit_code == 0, result.output
    assert result.stderr == f"wrote {picture} (model input of {files['clip']})\n"
    predictor = zoo.predictor("i3d-kinetics", pretrained=False)
    expected = contact_sheet(predictor.unrender(predictor.preprocess(files["clip"]).tensor))
    assert np.array_equal(np.asarray(Image.open(picture)), expected)
    assert np.asarray(Image.open(picture)).shape == (224, 12 * 226 - 2, 3)  # 12 frames, 1 row


def test_the_moving_digits_forecast_written_by_zoo_predict_beats_persistence(tmp_path):
    from zoo_plugins.convlstm.data import moving_digits

    clips = moving_digits(3, 20, "held-out", seed=11)
    inputs = [
        write_gif(tmp_path / f"digits{n}.gif", np.rint(clip[:10, 0] * 255).astype(np.uint8))
        for n, clip in enumerate(clips)
    ]

    result = run("predict", "convlstm-moving-digits", *inputs, "--json", "-o", tmp_path / "out")

    assert result.returncode == 0, result.stderr
    written = [json.loads(line)["forecast"] for line in result.stdout.splitlines()]
    assert written == [str(tmp_path / "out" / f"digits{n}.forecast.gif") for n in range(3)]
    forecast = np.stack([_gray_frames(Path(path)) for path in written]) / 255
    truth = clips[:, 10:, 0]
    persistence = np.repeat(clips[:, 9:10, 0], 10, axis=1)
    assert ((forecast - truth) ** 2).mean() < 0.8 * ((persistence - truth) ** 2).mean()


def _gray_frames(path: Path) -> np.ndarray:
    with Image.open(path) as gif:
        frames = []
        for index in range(gif.n_frames):
            gif.seek(index)
            frames.append(np.asarray(gif.convert("L"), dtype=np.float64))
    return np.stack(frames)


def test_clips_sets_how_many_clips_a_video_model_averages(files):
    result = run("predict", "c3d", files["clip"], "--clips", "3", "--random", "--json")

    assert result.returncode == 0, result.stderr
    prediction = json.loads(result.stdout)
    assert prediction["clips"] == 3
    assert prediction["note"].startswith("3 evenly spaced clips of 16 frames")


def test_threshold_keeps_only_the_detections_scored_at_or_above_it(files):
    # --random draws new weights each run: each run is checked against its own threshold.
    def detections(threshold: str) -> tuple[float, list[float]]:
        result = run(
            "predict", "detr", files["image"], "--random", "--threshold", threshold, "--json"
        )
        assert result.returncode == 0, result.stderr
        found = json.loads(result.stdout)
        return found["threshold"], [detection["score"] for detection in found["detections"]]

    (low, everything), (high, confident) = detections("0"), detections("0.5")

    assert (low, high) == (0.0, 0.5)
    assert len(everything) == 100  # one per query: a random DETR scores each near 1/92
    assert confident == [score for score in confident if score >= 0.5]
    assert len(confident) < len(everything)


def test_random_and_weights_together_are_refused_in_one_line(files, tmp_path):
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(b"x")

    args = ("predict", "resnet50.tv_in1k", files["image"], "--random", "--weights", weights)
    result = run(*args)

    assert result.returncode == 2
    assert "--random and --weights contradict each other" in result.stderr
    assert "Traceback" not in result.stderr


def test_bench_reports_throughput_latency_memory_parameters_and_gmacs():
    result = in_process("bench", "convlstm-moving-digits", "--batch", "2", "--steps", "2")
    as_json = run("bench", "convlstm-moving-digits", "--batch", "2", "--steps", "2", "--json")

    assert result.exit_code == 0, result.output
    assert "0.1M parameters" in result.stdout and "2 timed steps after 3 warm-up" in result.stdout
    (report,) = json.loads(as_json.stdout)
    assert report["parameters"] == 65_488 and report["gmacs"] > 0 and report["gflops"] > 0
    assert report["samples_per_second"] > 0 and report["steps"] == 2 and report["batch"] == 2
    assert report["latency_ms_p95"] >= report["latency_ms_median"] > 0
    assert report["peak_memory_mb"] > 100 and report["memory"] == "process peak RSS"
    assert report["input_shapes"] == {"frames": [2, 10, 1, 32, 32]}
    assert report["variant"] == "default"  # the family's measured default: onnxruntime
    assert report["settings"]["backend"] == "onnxruntime"


def test_gmacs_are_counted_as_the_papers_count_them():
    from zoo.inference.bench import count_gmacs

    assert count_gmacs(zoo_card("resnet50.tv_in1k")) == pytest.approx(4.09, abs=0.01)  # 4.1


def zoo_card(name: str):
    import zoo

    return zoo.card(name)


def test_bench_compare_refuses_a_chosen_variant():
    result = in_process("bench", "resnet50.tv_in1k", "--compare", "--backend", "torch")

    assert result.exit_code == 2
    assert "--compare runs every variant; drop --backend" in result.stderr
