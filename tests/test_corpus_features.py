"""``zoo.features`` and corpus ``zoo.predict`` on a generated corpus, on the local engine."""

from __future__ import annotations

import fcntl
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from corpus_media import DAMAGED, IMAGES, VIDEOS, make_corpus
from corpus_models import card, weights

import zoo
from zoo.corpus.records import CorpusReport
from zoo.corpus.tables import read_index
from zoo.errors import OutputError
from zoo.inference.decode import read_media


@pytest.fixture(scope="session")
def shared(tmp_path_factory, worker_id) -> Path:
    """A folder all xdist workers of this session share: the corpus and its features are
    made once, by whichever worker comes first, while the others wait."""
    base = tmp_path_factory.getbasetemp()
    folder = (base.parent if worker_id != "master" else base) / "corpus-features"
    folder.mkdir(exist_ok=True)
    return folder


@contextmanager
def made_once(folder: Path) -> Iterator[bool]:
    """Hold the folder's lock; True when the caller must make what it holds."""
    with (folder.parent / f"{folder.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield not folder.exists()


@pytest.fixture(scope="session")
def corpus(shared) -> Path:
    with made_once(shared / "corpus") as missing:
        if missing:
            make_corpus(shared / "corpus.part").rename(shared / "corpus")
    return shared / "corpus"


@pytest.fixture(scope="session")
def c3d(shared):
    small = card("c3d-sports1m")
    with made_once(shared / "weights") as missing:
        if missing:
            (shared / "weights.part").mkdir()
            weights(small, shared / "weights.part")
            (shared / "weights.part").rename(shared / "weights")
    return small, shared / "weights" / f"{small.name}-0.safetensors"


@pytest.fixture(scope="session")
def features_run(corpus, c3d, shared):
    """The whole corpus through C3D's pooled features, windows of 16 every 8 frames."""
    small, file = c3d
    output, saved = shared / "features", shared / "features-report.json"
    with made_once(saved) as missing:
        if missing:
            report = zoo.features(small, corpus, output, weights=file, stride=8, workers=2)
            saved.write_text(report.model_dump_json())
    report = CorpusReport.model_validate_json(saved.read_text())
    return report, output, {row["key"]: row for row in read_index(output / "index.parquet")}


def expected_keys() -> set[str]:
    return {
        *(f"{folder}/{name}" for folder, name, *_ in VIDEOS),
        *(f"{folder}/{name}" for folder, name in IMAGES),
        *DAMAGED,
    }


def test_every_input_is_in_the_index_once_and_each_failure_with_its_error(features_run):
    report, output, rows = features_run

    assert set(rows) == expected_keys() and len(rows) == report.inputs == 36
    failed = {key: row["error"] for key, row in rows.items() if row["status"] == "failed"}
    for key, problem in DAMAGED.items():
        assert problem in failed.pop(key)
    assert set(failed) == {f"{folder}/{name}" for folder, name in IMAGES}
    assert all("is a still image" in error for error in failed.values())
    assert (report.done, report.failed, report.skipped) == (30, 6, 0)
    assert sorted(f.path for f in report.failures) == sorted(
        rows[key]["path"] for key in rows if rows[key]["status"] == "failed"
    )
    assert not [path for path in output.rglob("*") if path.name.endswith(".tmp")]


def test_each_window_lies_where_the_index_says_and_has_a_row(features_run):
    _, output, rows = features_run
    for folder, name, _, fps, count in VIDEOS:
        row = rows[f"{folder}/{name}"]
        starts = list(range(0, count - 16 + 1, 8))
        array = np.load(output / row["output"])

        assert row["first_frame"] == starts and row["last_frame"] == [s + 15 for s in starts]
        assert np.allclose(row["first_time"], np.array(starts) / fps, atol=1e-3)
        assert array.shape == (len(starts), 32) == (row["rows"], row["width"])  # fc7: 32
        assert array.dtype == np.float32


def test_features_are_the_predictors_pooled_features_of_the_same_windows(features_run, c3d):
    _, output, rows = features_run
    small, file = c3d
    predictor = zoo.predictor(small, weights=file, backend="torch")
    pooled = predictor.architecture.features.resolve_pooled()
    for key in ("clips/ffv1-07.mkv", "more/gif-02.gif", "clips/mpeg4-03.mp4"):
        row = rows[key]
        media = read_media(Path(row["path"]))
        windows = zip(row["first_frame"], row["last_frame"], strict=True)
        for number, (first, last) in enumerate(windows):
            clip = predictor.preprocess(media.read(np.arange(first, last + 1))).tensor[:1]
            with torch.no_grad():
                expected = pooled(predictor.model, clip)[0].numpy()
            stored = np.load(output / row["output"])[number]
            np.testing.assert_allclose(stored, expected, rtol=1e-4, atol=1e-6)


def test_files_of_one_name_in_different_folders_keep_outputs_of_their_own(features_run):
    _, output, rows = features_run

    first, second = rows["clips/same.mkv"], rows["more/same.mkv"]

    assert (first["output"], second["output"]) == ("clips/same.mkv.npy", "more/same.mkv.npy")
    assert first["fps"] == 25 and second["fps"] == 30
    assert not np.array_equal(np.load(output / first["output"]), np.load(output / second["output"]))


def test_a_rerun_computes_only_the_inputs_not_done_and_retries_the_failed(corpus, c3d, tmp_path):
    small, file = c3d
    folder = tmp_path / "videos"
    shutil.copytree(corpus / "clips", folder)
    output = tmp_path / "out"
    zoo.features(small, folder, output, weights=file, workers=1)
    before = {path: path.stat().st_mtime_ns for path in output.rglob("*.npy")}
    shutil.copy(corpus / "more/gif-00.gif", folder / "new.gif")

    report = zoo.features(small, folder, output, weights=file, workers=1)

    assert (report.done, report.skipped, report.failed) == (1, len(before), 0)
    assert {path: path.stat().st_mtime_ns for path in before} == before
    assert (output / "new.gif.npy").is_file()


def test_a_job_of_other_options_is_refused_naming_what_differs_unless_overwrite(
    corpus, c3d, tmp_path
):
    small, file = c3d
    output = tmp_path / "out"
    inputs = [corpus / "clips/ffv1-00.mkv"]
    zoo.features(small, inputs, output, weights=file, stride=8, workers=1)

    with pytest.raises(OutputError, match=r"another job \(stride 8 -> 4\); pass --overwrite"):
        zoo.features(small, inputs, output, weights=file, stride=4, workers=1)
    with pytest.raises(OutputError, match=r"weights sha256:\w+ -> random"):
        zoo.features(small, inputs, output, pretrained=False, stride=8, workers=1)
    report = zoo.features(small, inputs, output, weights=file, stride=4, workers=1, overwrite=True)

    assert report.done == 1 and np.load(output / "ffv1-00.mkv.npy").shape == (2, 32)


def test_a_folder_of_someone_elses_files_needs_force_and_keeps_them(corpus, c3d, tmp_path):
    small, file = c3d
    output = tmp_path / "out"
    output.mkdir()
    (output / "notes.txt").write_text("mine")
    inputs = [corpus / "clips/ffv1-00.mkv"]

    with pytest.raises(OutputError, match=r"not a previous zoo output.*--force"):
        zoo.features(small, inputs, output, weights=file, workers=1)
    zoo.features(small, inputs, output, weights=file, workers=1, force=True)

    assert (output / "notes.txt").read_text() == "mine"
    assert (output / "ffv1-00.mkv.npy").is_file()


def test_a_module_layer_is_pooled_over_space_and_time_or_kept_whole(corpus, c3d, tmp_path):
    small, file = c3d
    video = [corpus / "clips/ffv1-09.mkv"]  # 29 frames: one window of 16

    def rows(name: str, **options) -> np.ndarray:
        zoo.features(small, video, tmp_path / name, weights=file, workers=1, **options)
        return np.load(tmp_path / name / "ffv1-09.mkv.npy")

    whole = rows("none", layer="conv5b", pool="none").reshape(1, 16, 2, 7, 7)

    np.testing.assert_allclose(
        rows("avg", layer="conv5b"), whole.mean(axis=(2, 3, 4)), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(rows("max", layer="conv5b", pool="max"), whole.max(axis=(2, 3, 4)))
    assert rows("logits", layer="logits", backend="torch").shape == (1, 487)


def test_a_layer_the_model_lacks_is_refused_before_any_work(corpus, c3d, tmp_path):
    small, file = c3d

    with pytest.raises(zoo.ZooError, match=r"--layer conv9: C3D has no module 'conv9'.*conv5b"):
        zoo.features(small, corpus / "clips", tmp_path / "out", weights=file, layer="conv9")
    assert not (tmp_path / "out").exists()


def test_corpus_predict_writes_one_row_per_input_with_labels_and_scores(corpus, tmp_path):
    small = card("resnet50.tv_in1k")
    file = weights(small, tmp_path)
    table = tmp_path / "results.parquet"

    report = zoo.predict(small, corpus, table, weights=file, topk=3, workers=2, backend="torch")

    rows = {row["key"]: row for row in read_index(table)}
    assert set(rows) == expected_keys() and report.failed == 3
    predictor = zoo.predictor(small, weights=file, backend="torch")
    for key in ("stills/a.png", "more/deeper/vp8-02.webm"):
        expected = predictor(rows[key]["path"], topk=3)
        assert rows[key]["labels"] == [label.label for label in expected.labels]
        np.testing.assert_allclose(rows[key]["scores"], [x.score for x in expected.labels], 1e-5)
        assert rows[key]["note"] == expected.note
    assert {key for key, row in rows.items() if row["status"] == "failed"} == set(DAMAGED)


def test_an_image_model_gives_a_row_per_image_and_per_frame_of_a_video(corpus, tmp_path):
    small = card("resnet50.tv_in1k")
    inputs = [corpus / "stills/a.png", corpus / "clips/ffv1-00.mkv"]  # 20 frames at 25 fps

    zoo.features(small, inputs, tmp_path / "out", pretrained=False, workers=1, fps=5)

    rows = {row["key"]: row for row in read_index(tmp_path / "out/index.parquet")}
    image, video = rows["stills/a.png"], rows["clips/ffv1-00.mkv"]
    assert (image["rows"], image["first_frame"]) == (1, [0])
    assert video["rows"] == 4 and video["first_frame"] == [0, 5, 10, 15]
    assert video["first_frame"] == video["last_frame"] and video["fps"] == 5
