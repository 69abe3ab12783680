"""A corpus job from start to end: inputs, the output's checks, the engine, the report.

The job decides what runs (the inputs not done yet), where results go and what counts as
done (a journal line per finished input); the engine only schedules the task's per-input
work. Interrupting a job (Ctrl-C, SIGTERM) still writes the index of what finished;
killing it (SIGKILL) leaves the journal, from which a rerun continues.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

from zoo.corpus.inputs import CorpusInput
from zoo.corpus.records import CorpusReport, Failure, Record
from zoo.corpus.store import Store
from zoo.errors import ZooError

Engine = Literal["local", "ray"]
ENGINES = ("local", "ray")


def run_job(
    task: Any,
    store: Store,
    inputs: list[CorpusInput],
    outputs: list[str],
    *,
    chunk: int,
    engine: Engine,
    workers: int | None,
    address: str | None,
    num_cpus: float | None,
    num_gpus: float | None,
    overwrite: bool,
    force: bool,
    progress: bool,
) -> CorpusReport:
    """Run ``task`` over the ``inputs`` ``store`` has not done; ``outputs`` are the paths
    (relative to the store's folder) the job will write, checked against the folder."""
    if engine not in ENGINES:
        raise ZooError(f"unknown engine {engine!r}; expected one of {', '.join(ENGINES)}")
    if engine == "local" and (address or num_cpus or num_gpus):
        raise ZooError("address, num_cpus and num_gpus are the Ray engine's; add engine 'ray'")
    store.open(outputs, overwrite=overwrite, force=force)
    started = time.perf_counter()
    todo = [item for item in inputs if not store.done(item.path)]
    finished: list[Record] = []
    try:
        with _bar(len(todo), progress) as bar, _sigterm_interrupts():

            def on_record(record: Record) -> None:
                store.append(record)
                finished.append(record)
                bar.update()

            used = _schedule(
                task, todo, chunk, engine, workers, address, num_cpus, num_gpus, on_record
            )
    finally:
        store.write_index()
        store.close()
    failures = [Failure(path=r.path, error=r.error) for r in finished if r.status == "failed"]
    return CorpusReport(
        kind=store.identity.kind,
        model=store.identity.model,
        engine=engine,
        workers=used,
        output=str(store.outputs if store.outputs != store.state else store.table),
        index=str(store.table),
        inputs=len(inputs),
        done=len(finished) - len(failures),
        skipped=len(inputs) - len(todo),
        failed=len(failures),
        failures=failures,
        seconds=time.perf_counter() - started,
        frames=sum(record.frames for record in finished),
    )


def _schedule(
    task: Any,
    todo: list[CorpusInput],
    chunk: int,
    engine: Engine,
    workers: int | None,
    address: str | None,
    num_cpus: float | None,
    num_gpus: float | None,
    on_record: Any,
) -> int:
    """Hand the inputs to the engine; returns how many workers (or actors) ran them."""
    if engine == "ray":
        from zoo.corpus.engines import ray as ray_engine

        if not todo:
            return 0
        return ray_engine.run(
            task,
            todo,
            chunk=chunk,
            on_record=on_record,
            address=address,
            workers=workers,
            num_cpus=num_cpus,
            num_gpus=num_gpus,
        )
    from zoo.corpus.engines import local

    count = min(workers or local.default_workers(), max(1, len(todo)))
    chunks = [todo[start : start + chunk] for start in range(0, len(todo), chunk)]
    local.run(task, chunks, workers=count, on_record=on_record)
    return count


@contextmanager
def _bar(total: int, progress: bool) -> Iterator[Any]:
    from tqdm import tqdm

    with tqdm(total=total, unit="input", file=sys.stderr, disable=not progress) as bar:
        yield bar


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM ends the job as Ctrl-C does, so the index of what finished is written."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
