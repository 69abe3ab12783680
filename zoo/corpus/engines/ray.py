"""The Ray engine: the same job on a Ray cluster, with Ray Data (``pip install 'zoo-models[ray]'``).

The inputs become a dataset of paths (``ray.data.from_items``); ``map_batches`` sends them
through a callable class holding one worker (one predictor) per actor, in an actor pool
(``compute=ray.data.ActorPoolStrategy``; Ray 2.51 deprecated ``concurrency=``), with
``num_cpus``/``num_gpus`` per actor. The zoo decodes with its own PyAV decoder inside the
actor (``ray.data.read_videos`` decodes with decord, a row per frame, and skips GIF).
Every error is caught per input inside the class and returned as that input's failed
record: Ray Data would otherwise drop a whole failed block (``max_errored_blocks``).
Actors write the outputs themselves, atomically, as local workers do; the driver gets
each record back and keeps the journal and the index. Paths must be the same on every
node (a shared file system).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from zoo.corpus.engines import OnRecord
from zoo.corpus.inputs import CorpusInput
from zoo.corpus.records import Record
from zoo.corpus.tasks import failed


class RayWorker:
    """One actor's worker: ``{"path", "key"}`` rows in, ``{"record"}`` (JSON) rows out."""

    def __init__(self, task: Any) -> None:
        self.worker = task.start()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        inputs = [
            CorpusInput(path=str(path), key=str(key))
            for path, key in zip(batch["path"], batch["key"], strict=True)
        ]
        try:
            records = self.worker.run(inputs)
        except Exception as error:  # never let one batch fail its block
            records = [failed({"path": item.path, "key": item.key}, error, 0.0) for item in inputs]
        return {"record": np.array([record.model_dump_json() for record in records], dtype=object)}


def run(
    task: Any,
    inputs: list[CorpusInput],
    *,
    chunk: int,
    on_record: OnRecord,
    address: str | None = None,
    workers: int | None = None,
    num_cpus: float | None = None,
    num_gpus: float | None = None,
) -> int:
    """Run ``inputs`` on the cluster at ``address`` (None: the one this process is connected
    to, else a new local instance); returns the actor pool's size."""
    import ray

    connected_here = not ray.is_initialized()
    if connected_here:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    try:
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        cpus = 1.0 if num_cpus is None else num_cpus
        size = workers or pool_size(ray.cluster_resources(), cpus, num_gpus or 0.0)
        dataset = ray.data.from_items(
            [{"path": item.path, "key": item.key} for item in inputs],
            override_num_blocks=max(1, math.ceil(len(inputs) / chunk)),
        )
        results = dataset.map_batches(
            RayWorker,
            fn_constructor_kwargs={"task": task},
            batch_size=chunk,
            compute=ray.data.ActorPoolStrategy(size=size),
            num_cpus=cpus,
            num_gpus=num_gpus or 0,
            batch_format="numpy",
        )
        for batch in results.iter_batches(batch_size=None, batch_format="numpy"):
            for text in batch["record"]:
                on_record(Record.model_validate_json(str(text)))
    finally:
        if connected_here:
            ray.shutdown()
    return size


def pool_size(resources: dict[str, float], cpus: float, gpus: float) -> int:
    """As many actors as the cluster's CPUs (and GPUs) hold, keeping one CPU for Ray Data's
    own tasks when the cluster has more than one."""
    spare = resources.get("CPU", 1.0) - (1.0 if resources.get("CPU", 1.0) > 1 else 0.0)
    by_cpu = int(spare // cpus) if cpus else 1 << 10
    by_gpu = int(resources.get("GPU", 0.0) // gpus) if gpus else 1 << 10
    return max(1, min(by_cpu, by_gpu))
