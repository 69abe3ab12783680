"""The Ray engine on a real two-node cluster on this machine, against the local engine.

``ray.cluster_utils.Cluster`` with two CPUs per node (with one, Ray Data's actor pool never
starts). One test, so that the session starts one cluster whichever xdist worker runs it:
the job loses its worker node half-way and must still give the local engine's results.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from corpus_media import make_corpus
from corpus_models import card, weights

import zoo
from zoo.corpus.tables import read_index

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    started = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 2, "include_dashboard": False}
    )
    worker = started.add_node(num_cpus=2)
    ray.init(address=started.address, log_to_driver=False)
    started.wait_for_nodes()
    try:
        yield started, worker
    finally:
        ray.shutdown()
        started.shutdown()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def c3d(tmp_path_factory):
    small = card("c3d-sports1m")
    return small, weights(small, tmp_path_factory.mktemp("weights"))


def features(small, file, corpus, output, **engine):
    report = zoo.features(small, corpus, output, weights=file, window=16, stride=8, **engine)
    return report, {row["key"]: row for row in read_index(output / "index.parquet")}


def test_ray_finishes_every_input_once_as_the_local_engine_does_though_a_node_is_lost(
    cluster, corpus, c3d, tmp_path
):
    started, worker = cluster
    small, file = c3d
    journal = tmp_path / "ray" / ".zoo/journal.jsonl"
    recorded_at_removal: list[int] = []

    def remove_node_once_work_is_done() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            recorded = len(journal.read_text().splitlines()) if journal.is_file() else 0
            if recorded >= 4:
                break
            time.sleep(0.05)
        recorded_at_removal.append(recorded)
        started.remove_node(worker)

    local, local_rows = features(small, file, corpus, tmp_path / "local", workers=1)
    remover = threading.Thread(target=remove_node_once_work_is_done)
    remover.start()
    try:
        remote, remote_rows = features(
            small, file, corpus, tmp_path / "ray", engine="ray", workers=3
        )
    finally:
        remover.join()

    assert 4 <= recorded_at_removal[0] < 36  # the node went while the job ran
    keys = [row["key"] for row in read_index(tmp_path / "ray" / "index.parquet")]
    assert len(keys) == len(set(keys)) == remote.inputs == 36
    assert (remote.done, remote.failed, remote.engine) == (local.done, local.failed, "ray")
    assert remote_rows.keys() == local_rows.keys()
    for key, row in local_rows.items():
        other = remote_rows[key]
        assert (other["status"], other["error"], other["first_frame"]) == (
            row["status"],
            row["error"],
            row["first_frame"],
        )
        if row["status"] == "ok":
            np.testing.assert_allclose(
                np.load(tmp_path / "ray" / other["output"]),
                np.load(tmp_path / "local" / row["output"]),
                rtol=1e-5,
                atol=1e-6,
            )
