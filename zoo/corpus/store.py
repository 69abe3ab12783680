"""Where a corpus job keeps what it has done: outputs, a journal, the index table.

Every output appears by rename (:func:`zoo.output.atomic_path`), so a file is whole or
absent. An input counts as done only once its record is in the *journal*
(``.zoo/journal.jsonl``), appended and flushed to disk after its output exists: a job
killed at any moment (SIGKILL included) leaves outputs a rerun either trusts (recorded)
or recomputes and replaces (not recorded), and the rerun removes the temporary files a
killed write left. The index (``index.parquet``, or the ``-o`` table of ``zoo predict``)
is the journal as a table, rewritten atomically every minute and at the end.

A folder belongs to one identity (:class:`~zoo.corpus.records.Identity`, in
``.zoo/job.json``): a job of another model, weights or options is refused, naming what
differs, unless ``overwrite`` (then the earlier job's recorded outputs are removed and
its journal dropped). A folder holding files zoo did not write is refused unless
``force``; then zoo writes beside them and replaces only its own files of the same names.
One job at a time writes a folder (a lock, released when the process ends).
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from zoo.corpus.records import Identity, Record
from zoo.errors import OutputError
from zoo.output import atomic_path, check_folder, output_errors, write_text_atomic
from zoo.version import __version__

STATE = ".zoo"
JOB = "job.json"
JOURNAL = "journal.jsonl"
LOCK = "lock"
INDEX = "index.parquet"
#: Seconds between rewrites of the index while a job runs.
INDEX_EVERY = 60.0


class Store:
    """One job's place on disk: ``outputs`` (per-input files), ``state`` and ``table``."""

    def __init__(self, outputs: Path, state: Path, table: Path, identity: Identity) -> None:
        self.outputs, self.state, self.table = outputs, state, table
        self.identity = identity
        self.records: dict[str, Record] = {}
        self._lock: Any = None
        self._journal: Any = None
        self._written = 0.0

    @classmethod
    def features(cls, folder: Path, identity: Identity) -> Store:
        return cls(folder, folder / STATE, folder / INDEX, identity)

    @classmethod
    def results(cls, table: Path, identity: Identity) -> Store:
        """A results table ``results.parquet``, its state (and forecasts) in ``results.zoo/``."""
        state = table.with_suffix(".zoo")
        return cls(state, state, table, identity)

    # --- opening --------------------------------------------------------------------

    def open(self, keys: Iterable[str], *, overwrite: bool, force: bool) -> Store:
        """Check the place, take the lock, and read what earlier runs recorded."""
        earlier = self._read_identity()
        self._check_place(earlier, keys, force)
        with output_errors(self.state):
            self.state.mkdir(parents=True, exist_ok=True)
            self._lock = (self.state / LOCK).open("w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputError(
                f"another zoo job is writing {self.table}; wait for it, or choose another output"
            ) from None
        self.records = self._read_journal()
        if earlier is not None and earlier != self.identity:
            self._replace_earlier(earlier, overwrite)
        write_text_atomic(self.state / JOB, self.identity.model_dump_json(indent=2) + "\n")
        self._remove_partial_files()
        self._journal = (self.state / JOURNAL).open("a", encoding="utf-8")
        return self

    def _read_identity(self) -> Identity | None:
        path = self.state / JOB
        if not path.is_file():
            return None
        try:
            return Identity.model_validate_json(path.read_text(encoding="utf-8"))
        except ValueError:
            raise OutputError(f"{path} is damaged; remove {self.state} to start over") from None

    def _check_place(self, earlier: Identity | None, keys: Iterable[str], force: bool) -> None:
        if self.table.exists() and earlier is None:
            raise OutputError(
                f"{self.table} exists and was not written by a zoo job; choose another "
                "output, or remove it"
            )
        if self.outputs == self.state:
            return
        previous = self._read_journal() if earlier is not None else {}
        keys = list(keys)
        recorded = {record.output for record in previous.values() if record.output}
        # A job killed between an output's rename and its journal line left that output
        # unrecorded: in a folder of an earlier job, the job's own names are its own.
        ours = [*keys, INDEX] if earlier is not None else []
        known = {*recorded, *ours, *self._state_files()}
        check_folder(self.outputs, [*keys, INDEX], force=force, known=known)

    def _state_files(self) -> list[str]:
        """The job's own state files, as paths relative to its output folder."""
        if not self.state.is_dir():
            return []
        files = (path for path in self.state.rglob("*") if path.is_file())
        return [path.relative_to(self.outputs).as_posix() for path in files]

    def _replace_earlier(self, earlier: Identity, overwrite: bool) -> None:
        changes = "; ".join(self.identity.differences(earlier))
        where = self.table if self.outputs == self.state else self.outputs
        if not overwrite:
            raise OutputError(
                f"{where} holds {earlier.kind} of another job ({changes}); pass --overwrite "
                "(overwrite=True) to replace them, or choose another output"
            )
        for record in self.records.values():
            if record.output:
                (self.outputs / record.output).unlink(missing_ok=True)
        self.records = {}
        (self.state / JOURNAL).unlink(missing_ok=True)
        self.table.unlink(missing_ok=True)

    def _read_journal(self) -> dict[str, Record]:
        """Records by input path, the latest of each; a line cut short by a kill is dropped
        and the journal rewritten without it, so the next record starts on a line of its own."""
        path = self.state / JOURNAL
        if not path.is_file():
            return {}
        records: dict[str, Record] = {}
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        whole = [line for line in lines if line.endswith("\n")]
        for line in whole:
            record = Record.model_validate_json(line)
            records[record.path] = record
        if len(whole) != len(lines):
            write_text_atomic(path, "".join(whole))
        return records

    def _remove_partial_files(self) -> None:
        """The temporary siblings (``.NAME.XXXX.tmp``) that a killed write left behind."""
        for directory, _, files in os.walk(self.outputs):
            for name in files:
                if name.startswith(".") and name.endswith(".tmp"):
                    Path(directory, name).unlink(missing_ok=True)

    # --- running --------------------------------------------------------------------

    def done(self, path: str) -> bool:
        """Whether ``path`` was computed by this identity, from the same file, and its
        output is still there: failed inputs are tried again."""
        record = self.records.get(path)
        if record is None or record.status != "ok":
            return False
        if record.output and not (self.outputs / record.output).is_file():
            return False
        return (record.size, record.mtime_ns) == file_state(path)

    def append(self, record: Record) -> None:
        """Record an input as finished: one line, flushed to disk before this returns."""
        self.records[record.path] = record
        self._journal.write(record.model_dump_json() + "\n")
        self._journal.flush()
        os.fsync(self._journal.fileno())
        if time.monotonic() - self._written > INDEX_EVERY:
            self.write_index()

    def write_index(self) -> None:
        from zoo.corpus.tables import write_table

        write_table(self.table, list(self.records.values()), self.identity, __version__)
        self._written = time.monotonic()

    def close(self) -> None:
        for handle in (self._journal, self._lock):
            if handle is not None:
                handle.close()
        self._journal = self._lock = None


def file_state(path: str) -> tuple[int, int]:
    """(size, modification time in ns) of an input, or (-1, -1) when it cannot be read."""
    try:
        stat = os.stat(path)
    except OSError:
        return -1, -1
    return stat.st_size, stat.st_mtime_ns


def write_array(path: Path, array: np.ndarray) -> None:
    """``array`` as ``path`` (a ``.npy`` file), atomically."""
    with atomic_path(path) as temporary, temporary.open("wb") as handle:
        np.save(handle, array)
