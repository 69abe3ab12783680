"""Writing outputs a user asked for: atomically, and never over a user's own files.

Every file appears by rename from a temporary sibling, so a failure leaves the
old file or the new one, never half of one.

One rule for every command that writes into a folder. Each folder zoo writes
into keeps a record of the files zoo wrote there (:data:`RECORD`: name, size,
time and sha256 of each), so zoo knows its own files from a user's:

- a folder that is new, empty, or holds only zoo's own files is written into;
- a folder holding anything else is refused unless ``force`` (``--force``), and
  then zoo's files are written beside the user's;
- a file zoo is about to write whose name a user's file already has is refused
  even with ``force``: zoo replaces only its own files and deletes nothing else.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from zoo.errors import OutputError, ZooError

#: The record of the files zoo wrote in a folder, kept inside it.
RECORD = ".zoo-output.json"
#: What ``--force`` means, in every command's ``--help`` and error.
FORCE_MEANING = (
    "write into a folder that holds files zoo did not write; zoo's own files of the same "
    "names are replaced, nothing else is ever deleted"
)


@contextmanager
def output_errors(path: Path) -> Iterator[None]:
    """An OSError while writing ``path`` as one OutputError line (read-only, /proc, full disk)."""
    try:
        yield
    except ZooError:  # already one line (OutputError and CacheError are OSErrors too)
        raise
    except OSError as error:
        where = error.filename or path
        raise OutputError(f"cannot write {where}: {error.strerror or error}") from None


def temporary_sibling(path: Path) -> Path:
    """A new, empty file beside ``path``, with the permissions a plain ``open`` would give.

    ``mkstemp`` makes files only their owner can read (0600); an output the user
    asked for, or a cache entry, should follow the umask like any other file.
    """
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(handle, default_file_mode())
    finally:
        os.close(handle)
    return Path(name)


def default_file_mode() -> int:
    """0o666 less the process's umask: what ``open(path, "w")`` gives a new file."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary sibling of ``path`` to write to, renamed to ``path`` when the block ends.

    For writers that want a file name (Pillow, PyAV); a failure leaves no partial file.
    """
    with output_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = temporary_sibling(path)
        try:
            yield temporary
            temporary.replace(path)
        finally:
            temporary.unlink(missing_ok=True)


def write_text_atomic(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary sibling and a rename."""
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return path


# --- whose files are in a folder -------------------------------------------------------------


def own_files(folder: Path) -> set[str]:
    """The files (paths relative to ``folder``) zoo wrote there and nobody changed since.

    A file matches its record by size and modification time, or, when the time moved
    (a copy, a checkout), by its sha256.
    """
    recorded = _read_record(folder)
    return {name for name, facts in recorded.items() if _matches(folder / name, facts)}


def record_files(folder: Path, files: Iterable[str]) -> None:
    """Add the ``files`` zoo just wrote in ``folder`` to its record (those that exist)."""
    recorded = _read_record(folder)
    written = {name: _facts(folder / name) for name in files if (folder / name).is_file()}
    if not written:
        return
    data = {"written_by": "zoo", "files": dict(sorted({**recorded, **written}.items()))}
    write_text_atomic(folder / RECORD, json.dumps(data, indent=1) + "\n")


def _read_record(folder: Path) -> dict[str, dict]:
    try:
        data = json.loads((folder / RECORD).read_text(encoding="utf-8"))
        files = data["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return files if isinstance(files, dict) else {}


def _facts(path: Path) -> dict[str, int | str]:
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": _sha256(path)}


def _matches(path: Path, facts: dict) -> bool:
    if not isinstance(facts, dict) or not path.is_file():
        return False
    stat = path.stat()
    if stat.st_size != facts.get("size"):
        return False
    return stat.st_mtime_ns == facts.get("mtime_ns") or _sha256(path) == facts.get("sha256")


def _sha256(path: Path) -> str:
    with path.open("rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def _foreign_entries(folder: Path, own: set[str]) -> list[str]:
    """Top-level entries of ``folder`` holding anything zoo did not write, sorted."""
    return sorted(
        entry.name
        for entry in folder.iterdir()
        if entry.name != RECORD and not _is_own(entry, entry.name, own)
    )


def _is_own(path: Path, relative: str, own: set[str]) -> bool:
    if path.is_dir() and not path.is_symlink():
        return all(_is_own(child, f"{relative}/{child.name}", own) for child in path.iterdir())
    return relative in own


def _shown(names: list[str]) -> str:
    return ", ".join(names[:3]) + (", …" if len(names) > 3 else "")


# --- the rule ----------------------------------------------------------------------------------


def check_folder(
    folder: Path, files: Iterable[str], *, force: bool, known: Iterable[str] = ()
) -> None:
    """Refuse, before any work, to write ``files`` (relative paths) into ``folder`` where
    that would replace a user's file, or sit beside a user's files without ``force``.

    ``known`` are files zoo wrote there by a record of its own (a corpus job's journal,
    which knows thousands of outputs without hashing each into the folder's record).
    Nothing is created here: a run that fails later leaves no empty folder.
    """
    files = sorted(set(files))
    with output_errors(folder):
        if folder.exists() and not folder.is_dir():
            raise OutputError(f"{folder} exists and is not a folder")
        if not folder.is_dir():
            return
        own = own_files(folder) | set(known)
        theirs = [name for name in files if os.path.lexists(folder / name) and name not in own]
        if theirs:
            raise OutputError(
                f"{folder / theirs[0]} exists and zoo did not write it (or it changed since); "
                "zoo never replaces a file of yours, not even with --force (force=True): "
                "move it away or choose another folder"
            )
        others = [] if force else _foreign_entries(folder, own)
        if others:
            raise OutputError(
                f"{folder} is not empty and not a previous zoo output (it holds "
                f"{_shown(others)}); choose a new folder, or pass --force (force=True) to "
                "write zoo's files beside them (none of them is replaced or deleted)"
            )


@contextmanager
def output_folder(folder: Path, files: Iterable[str], *, force: bool) -> Iterator[Path]:
    """:func:`check_folder`, then create ``folder`` before the work, so an unwritable place
    fails at once. The ``files`` written are recorded as zoo's, whether the work ends well
    or not; if it fails before writing any, the folders this run created are removed."""
    files = list(files)
    check_folder(folder, files, force=force)
    created = [path for path in (folder, *folder.parents) if not path.exists()]
    with output_errors(folder):
        folder.mkdir(parents=True, exist_ok=True)
    try:
        yield folder
    except BaseException:
        with suppress(OSError, OutputError):
            record_files(folder, files)
        for path in created:  # deepest first; a folder that is no longer empty stays
            with suppress(OSError):
                path.rmdir()
        raise
    with output_errors(folder):
        record_files(folder, files)


@contextmanager
def staged_folder(
    target: Path, files: Iterable[str] | None = None, *, force: bool
) -> Iterator[Path]:
    """An empty hidden folder beside ``target`` to write into; its files move into ``target``
    when the block ends, and a failure leaves ``target`` as it was.

    ``files`` (when known in advance) are checked before the work; whatever the block
    wrote is checked again before it moves. A new or empty ``target`` is the staging
    folder renamed; otherwise each file moves in by rename, replacing only zoo's own.
    """
    if files is not None:
        check_folder(target, files, force=force)
    staging = target.parent / f".{target.name}.{secrets.token_hex(4)}.partial"
    try:
        staging.mkdir(parents=True)  # not mkdtemp: the folder gets the umask's permissions
    except OSError as error:  # named by the target: the hidden folder means nothing to a user
        raise OutputError(f"cannot write {target}: {error.strerror or error}") from None
    try:
        yield staging
        written = sorted(
            path.relative_to(staging).as_posix() for path in staging.rglob("*") if path.is_file()
        )
        check_folder(target, written, force=force)
        with output_errors(target):
            _move_in(staging, target, written)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _move_in(staging: Path, target: Path, files: list[str]) -> None:
    if not target.is_dir() or not any(target.iterdir()):
        record_files(staging, files)
        if target.is_dir():
            target.rmdir()
        staging.rename(target)
        return
    for name in files:
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        (staging / name).replace(target / name)
    record_files(target, files)
