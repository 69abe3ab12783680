"""The local engine: worker processes on this machine, each with its own predictor.

Each worker process runs the whole per-input work (decode, pre-process, model, write),
so while one worker decodes, another computes, and no frame crosses a process boundary.
The rule: **one worker per core, one PyTorch thread each** (``--workers`` defaults to the
number of cores, and the threads are the cores divided among the workers): on this
project's loaded 2-core machine, PyTorch's multi-threaded copies and convolutions waited
on each other (a 2-thread ``torch.stack`` of crops ran 37x slower than a 1-thread one),
which separate single-threaded processes avoid. What it is worth end to end is measured by
``benchmarks/bench_corpus.py`` (``workers``, ``throughput``) and written in
``docs/tasks/corpus.md``: on 12 C3D clips, 1, 2 and 3 workers ran equally fast (each
worker's start-up, importing torch and building the model, is paid once per job and ate
the second core's gain), so the rule is kept for long jobs, not yet proven by them.
``workers=1`` runs in this process, with every core's threads.

Workers build their predictors one at a time (a file lock), so that the first one
downloads the weights or exports the ONNX file into the zoo cache and the others find it
there, instead of every worker doing the same work at once.

A worker process that dies (a decoder crashing on a damaged file, the kernel killing it
for memory) takes down only the inputs it held: they are retried one by one in a fresh
process, and an input that kills its worker twice is recorded as failed.
"""

from __future__ import annotations

import fcntl
import os
import signal
import tempfile
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from typing import Any

from zoo.corpus.engines import OnRecord
from zoo.corpus.inputs import CorpusInput
from zoo.corpus.records import Record

#: Chunks queued per worker beyond the one it is running, so a worker never waits.
AHEAD = 2
_worker: Any = None


def default_workers() -> int:
    """One worker per core this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def threads_per_worker(workers: int) -> int:
    return max(1, default_workers() // workers)


def run(task: Any, chunks: list[list[CorpusInput]], *, workers: int, on_record: OnRecord) -> None:
    """Run every chunk of inputs through ``task``'s workers, calling ``on_record`` for each."""
    if not chunks:
        return
    if workers <= 1:
        worker = task.start()
        for chunk in chunks:
            for record in worker.run(chunk):
                on_record(record)
        return
    _Pool(task, workers, on_record).run(chunks)


class _Pool:
    """Worker processes fed a few chunks ahead; a broken pool is replaced and its chunks retried."""

    def __init__(self, task: Any, workers: int, on_record: OnRecord) -> None:
        self.task, self.workers, self.on_record = task, workers, on_record
        self.crashes: dict[str, int] = {}

    def run(self, chunks: list[list[CorpusInput]]) -> None:
        waiting = deque(chunks)
        while waiting:
            waiting = self._run_pool(waiting)

    def _run_pool(self, waiting: deque[list[CorpusInput]]) -> deque[list[CorpusInput]]:
        """Run chunks until done or the pool breaks; returns the chunks left to run."""
        lock = tempfile.NamedTemporaryFile(prefix="zoo-corpus-", suffix=".lock")  # noqa: SIM115
        executor = ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=get_context("spawn"),
            initializer=_start_worker,
            initargs=(self.task, threads_per_worker(self.workers), lock.name),
        )
        running: dict[Future, list[CorpusInput]] = {}
        try:
            while waiting or running:
                while waiting and len(running) < self.workers * AHEAD:
                    chunk = waiting.popleft()
                    running[executor.submit(_run_chunk, chunk)] = chunk
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    chunk = running.pop(future)
                    for record in future.result():
                        self.on_record(record)
        except BrokenProcessPool:
            return self._after_crash(waiting, list(running.values()))
        finally:
            executor.shutdown(wait=True, cancel_futures=True)
            lock.close()
        return deque()

    def _after_crash(
        self, waiting: deque[list[CorpusInput]], lost: list[list[CorpusInput]]
    ) -> deque[list[CorpusInput]]:
        """Chunks a dead worker held, retried one input at a time; twice fatal is failed."""
        retry: deque[list[CorpusInput]] = deque()
        for chunk in lost:
            for item in chunk:
                self.crashes[item.path] = self.crashes.get(item.path, 0) + (len(chunk) == 1)
                if self.crashes[item.path] >= 2:
                    self.on_record(_killed(item))
                else:
                    retry.append([item])
        return retry + waiting


def _killed(item: CorpusInput) -> Record:
    from zoo.corpus.store import file_state

    size, mtime = file_state(item.path)
    return Record(
        path=item.path,
        key=item.key,
        status="failed",
        error=f"{item.path}: the worker process running it died, twice (a crash or out of memory)",
        size=size,
        mtime_ns=mtime,
    )


def _start_worker(task: Any, threads: int, lock: str) -> None:
    """In each worker process: Ctrl-C is the driver's to handle; build the predictor once,
    one worker at a time."""
    global _worker
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import torch

    torch.set_num_threads(threads)
    with open(lock, "rb") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        _worker = task.start()


def _run_chunk(chunk: list[CorpusInput]) -> list[Record]:
    return _worker.run(chunk)
