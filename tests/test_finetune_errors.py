"""Bad input to ``zoo finetune``: one clear line each, and nothing half-written."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from finetune_zoo import colour_images, finetune_registry
from media import write_image

from zoo.cards import Card
from zoo.cli import main
from zoo.finetuning import checkpoint
from zoo.finetuning.data import read_samples

QUICK = ["--mode", "linear", "--epochs", "1", "--batch-size", "4", "--workers", "0", "--random"]


@pytest.fixture
def registry(monkeypatch):
    made = finetune_registry()
    monkeypatch.setattr("zoo.registry._default", made)
    return made


@pytest.fixture
def colours(tmp_path) -> Path:
    return colour_images(tmp_path / "colours", per_class=6, seed=7)


def finetune(*arguments: str):
    return CliRunner().invoke(main, ["finetune", *map(str, arguments)])


def refused(result, *fragments: str) -> str:
    """The run failed with one line on stderr (no traceback) holding every fragment."""
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def test_an_empty_class_folder_is_refused_and_nothing_is_written(registry, colours, tmp_path):
    (colours / "purple").mkdir()

    result = finetune("tiny-frame", colours, "-o", tmp_path / "out", *QUICK)

    refused(result, "class folder", "purple", "holds no image or video")
    assert not (tmp_path / "out").exists()


def test_data_of_one_class_is_refused(registry, colours, tmp_path):
    for name in ("green", "blue"):
        for file in (colours / name).iterdir():
            file.unlink()
        (colours / name).rmdir()

    refused(
        finetune("tiny-frame", colours, "-o", tmp_path / "out", *QUICK), "one class only", "red"
    )


def test_a_validation_label_training_never_saw_is_refused(registry, colours, tmp_path):
    val = colour_images(tmp_path / "val", per_class=2, seed=8)
    (val / "red").rename(val / "crimson")

    result = finetune("tiny-frame", colours, "--val", val, "-o", tmp_path / "out", *QUICK)

    refused(result, "labels the training data never saw: crimson")


def test_an_unreadable_file_is_skipped_and_counted(registry, colours, tmp_path):
    (colours / "red" / "broken.png").write_bytes(b"not a png at all")

    result = finetune(
        "tiny-frame", colours, "-o", tmp_path / "out", *QUICK, "--max-unreadable", "0.1", "--json"
    )

    assert result.exit_code == 0, result.output
    card = Card.from_yaml(tmp_path / "out" / "card.yaml")
    assert card.training["unreadable_files"] == 1
    assert "broken.png" in result.output


@pytest.mark.parametrize("mode", ["linear", "full"])
def test_a_file_whose_pixels_do_not_decode_is_skipped_while_training(
    mode, registry, colours, tmp_path
):
    whole = (colours / "red" / "000.png").read_bytes()
    (colours / "red" / "cut.png").write_bytes(whole[: len(whole) // 2])  # the header reads

    result = finetune(
        "tiny-frame",
        colours,
        "-o",
        tmp_path / "out",
        *QUICK,
        "--mode",
        mode,
        "--max-unreadable",
        "0.1",
        "--json",
    )

    assert result.exit_code == 0, result.output
    assert [Path(item["path"]).name for item in json.loads(result.output)["unreadable"]] == [
        "cut.png"
    ]


def test_more_unreadable_files_than_allowed_stop_the_run_before_it_starts(
    registry, colours, tmp_path
):
    for index in range(3):
        (colours / "red" / f"broken-{index}.png").write_bytes(b"")

    result = finetune("tiny-frame", colours, "-o", tmp_path / "out", *QUICK)

    refused(result, "3 of 21 files (14%) cannot be read", "5% allowed", "broken-0.png")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("model", "task"),
    [("detr-resnet50-coco", "object-detection"), ("convlstm-moving-digits", "video-forecasting")],
)
def test_a_model_that_is_not_a_classifier_is_refused_naming_what_is_supported(
    model, task, colours, tmp_path
):
    result = finetune(model, colours, "-o", tmp_path / "out", *QUICK)

    line = refused(result, f"{model} is {task}", "image and video classifiers")
    assert "c3d" in line and "resnext" in line and "cnn-lstm" in line
    assert not (tmp_path / "out").exists()


def test_a_folder_that_is_not_empty_needs_resume_or_force(registry, colours, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")

    refused(finetune("tiny-frame", colours, "-o", out, *QUICK), "not empty", "--force")
    refused(finetune("tiny-frame", colours, "-o", out, *QUICK, "--resume"), "nothing to resume")

    forced = finetune("tiny-frame", colours, "-o", out, *QUICK, "--force")
    assert forced.exit_code == 0, forced.output
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "card.yaml").is_file() and (out / checkpoint.LAST).is_file()


def test_force_over_an_earlier_run_replaces_its_files(registry, colours, tmp_path):
    out = tmp_path / "out"
    assert finetune("tiny-frame", colours, "-o", out, *QUICK).exit_code == 0
    before = (out / "model.safetensors").read_bytes()

    refused(
        finetune("tiny-frame", colours, "-o", out, *QUICK), "earlier run", "--resume", "--force"
    )
    again = finetune("tiny-frame", colours, "-o", out, *QUICK, "--force", "--seed", "1")

    assert again.exit_code == 0, again.output
    assert (out / "model.safetensors").read_bytes() != before
    assert Card.from_yaml(out / "card.yaml").training["seed"] == 1


def test_a_users_file_named_as_a_run_file_is_never_replaced(registry, colours, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "history.json").write_text("my notes")

    result = finetune("tiny-frame", colours, "-o", out, *QUICK, "--force")

    refused(result, "history.json exists and zoo did not write it")
    assert (out / "history.json").read_text() == "my notes"
    assert sorted(path.name for path in out.iterdir()) == ["history.json"]


@pytest.mark.parametrize(
    ("options", "fragments"),
    [
        (["--precision", "fp16", "--device", "cpu"], ["fp16 needs a GPU"]),
        (["--mode", "full", "--freeze-until", "trunk"], ["no module 'trunk'", "stem, fc"]),
        (["--freeze-until", "stem"], ["linear mode trains the classifier only"]),
        (["--batch-size", "64"], ["fewer than one batch of 64"]),
    ],
)
def test_options_that_cannot_work_are_refused(registry, colours, tmp_path, options, fragments):
    refused(finetune("tiny-frame", colours, "-o", tmp_path / "out", *QUICK, *options), *fragments)


def test_a_csv_manifest_reads_paths_relative_to_itself(colours, tmp_path):
    manifest = colours / "labels.csv"
    with manifest.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label"])
        writer.writerow(["red/000.png", "warm"])
        writer.writerow([str(colours / "blue" / "000.png"), "cold"])

    samples = read_samples(manifest)

    assert [(sample.path, sample.label) for sample in samples] == [
        (colours / "red" / "000.png", "warm"),
        (colours / "blue" / "000.png", "cold"),
    ]


def test_a_manifest_without_a_label_column_is_refused(registry, tmp_path):
    manifest = tmp_path / "files.csv"
    manifest.write_text("path,class\na.png,x\n")

    result = finetune("tiny-frame", manifest, "-o", tmp_path / "out", *QUICK)

    refused(result, "needs the columns path and label; missing label", "path, class")


def test_media_outside_class_folders_is_refused(registry, colours, tmp_path):
    write_image(colours / "stray.png", np.zeros((8, 8, 3), dtype=np.uint8))

    refused(finetune("tiny-frame", colours, "-o", tmp_path / "out", *QUICK), "stray.png")


def test_a_parquet_manifest_is_read_like_a_csv_one(colours, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as parquet

    manifest = tmp_path / "labels.parquet"
    table = {"path": [str(colours / "red" / "001.png"), "x.png"], "label": ["warm", "cold"]}
    parquet.write_table(pa.table(table), manifest)

    samples = read_samples(manifest)

    assert [sample.label for sample in samples] == ["warm", "cold"]
    assert samples[1].path == tmp_path / "x.png"


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda folder: None, "no such folder"),
        (lambda folder: folder.mkdir(), "card.yaml and model.safetensors missing"),
    ],
)
def test_a_model_folder_that_is_not_one_is_refused_by_load_in_one_line(make, fragment, tmp_path):
    import zoo
    from zoo.errors import WeightsError

    make(tmp_path / "out")

    with pytest.raises(WeightsError, match=fragment):
        zoo.load(f"{tmp_path / 'out'}/")
