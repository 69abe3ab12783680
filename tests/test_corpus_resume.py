"""Corpus jobs killed part-way, and the commands: ``zoo features``, ``zoo predict -o x.parquet``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from corpus_media import make_corpus
from corpus_models import card, plugin_site, weights

import zoo
from zoo.corpus.tables import read_index

ZOO = str(Path(sys.executable).with_name("zoo"))
TESTS = Path(__file__).parent

#: A job that records every input slowly, so that it is surely killed part-way.
SLOW_JOB = """
import sys, time
sys.path.insert(0, {tests!r})
import zoo
from corpus_models import card
from zoo.corpus import tasks

one = tasks.FeatureWorker.one
tasks.FeatureWorker.one = lambda self, item: (time.sleep(0.3), one(self, item))[1]
zoo.features(card("c3d-sports1m"), {inputs!r}, {output!r}, weights={weights!r}, workers=1)
"""


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    return plugin_site(tmp_path_factory.mktemp("site"))


def zoo_command(*args: object, site: Path) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run(
        [ZOO, *map(str, args)], capture_output=True, text=True, env=environment, timeout=600
    )


def test_a_killed_job_resumes_without_recomputing_what_it_finished(corpus, tmp_path):
    small = card("c3d-sports1m")
    file = weights(small, tmp_path)
    output = tmp_path / "out"
    script = SLOW_JOB.format(
        tests=str(TESTS), inputs=str(corpus / "more"), output=str(output), weights=str(file)
    )
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)])
    journal = output / ".zoo/journal.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and child.poll() is None:
        if journal.is_file() and len(journal.read_text().splitlines()) >= 3:
            break
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    child.wait()
    lines = journal.read_text().splitlines(keepends=True)  # a line cut by the kill is no record
    finished = {json.loads(line)["key"] for line in lines if line.endswith("\n")}
    kept = {key: (output / f"{key}.npy").stat().st_mtime_ns for key in finished}

    report = zoo.features(small, corpus / "more", output, weights=file, workers=1)

    rows = read_index(output / "index.parquet")
    videos = sorted(
        p.relative_to(corpus / "more").as_posix() for p in (corpus / "more").rglob("*.*")
    )
    assert 3 <= len(finished) < len(videos) == 11 and report.skipped == len(finished)
    assert report.done == 11 - len(finished) and report.failed == 0
    assert sorted(row["key"] for row in rows) == videos
    assert {key: (output / f"{key}.npy").stat().st_mtime_ns for key in finished} == kept
    assert not [path for path in output.rglob("*") if path.name.endswith(".tmp")]
    for row in rows:
        assert np.load(output / row["output"]).shape == (row["rows"], 32)


def test_zoo_features_prints_one_summary_and_exits_1_when_inputs_failed(corpus, site, tmp_path):
    videos = str(corpus / "clips" / "ffv1-0[0-4].mkv")  # a glob zoo expands: 5 videos
    args = ["features", "corpus-c3d", videos, corpus / "damaged", "--random"]

    first = zoo_command(*args, "-o", tmp_path / "out", "--workers", "1", site=site)
    again = zoo_command(*args, "-o", tmp_path / "out", "--json", site=site)

    assert first.returncode == 1 and "Traceback" not in first.stderr
    (summary,) = first.stdout.splitlines()
    assert summary.startswith("features of 8 inputs with corpus-c3d: 5 done, 0 skipped")
    assert f"3 failed (status 'failed' in {tmp_path / 'out' / 'index.parquet'})" in summary
    report = json.loads(again.stdout)
    assert again.returncode == 1
    assert (report["done"], report["skipped"], report["failed"]) == (0, 5, 3)


def test_zoo_features_refuses_other_options_in_one_line(corpus, site, tmp_path):
    video = corpus / "clips/ffv1-00.mkv"
    zoo.features(card("c3d-sports1m"), video, tmp_path / "out", pretrained=False, workers=1)
    args = ["features", "corpus-c3d", video, "-o", tmp_path / "out"]

    refused = zoo_command(*args, "--random", "--window", "8", "--stride", "16", site=site)

    assert refused.returncode == 1
    assert refused.stderr.splitlines() == [
        f"Error: {tmp_path / 'out'} holds features of another job (window 16 -> 8); pass "
        "--overwrite (overwrite=True) to replace them, or choose another output"
    ]


def test_zoo_predict_writes_a_results_table_with_a_row_per_input(corpus, site, tmp_path):
    table = tmp_path / "results.parquet"

    result = zoo_command(
        "predict",
        "corpus-resnet",
        corpus / "stills",
        corpus / "damaged",
        "--random",
        "--backend",
        "torch",
        "--workers",
        "1",
        "--topk",
        "2",
        "-o",
        table,
        site=site,
    )

    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stdout.startswith("predict of 6 inputs with corpus-resnet: 3 done")
    rows = {row["key"]: row for row in read_index(table)}
    assert {key for key, row in rows.items() if row["status"] == "ok"} == {
        "stills/a.png",
        "stills/b.jpg",
        "stills/more/c.png",
    }
    assert all(
        len(row["labels"]) == len(row["scores"]) == 2 for row in rows.values() if row["labels"]
    )


def test_corpus_options_without_a_results_table_are_a_usage_error(corpus, site, tmp_path):
    result = zoo_command(
        "predict",
        "corpus-resnet",
        corpus / "stills/a.png",
        "--random",
        "--engine",
        "ray",
        site=site,
    )

    assert result.returncode == 2
    assert "--engine apply to a results table: -o results.parquet" in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_a_missing_pyarrow_names_the_extra_to_install():
    import click

    from zoo.cli.base import fails_cleanly

    @fails_cleanly
    def features() -> None:
        raise ModuleNotFoundError("No module named 'pyarrow'", name="pyarrow")

    with pytest.raises(click.ClickException, match=r"pip install 'zoo-models\[corpus\]'"):
        features()
