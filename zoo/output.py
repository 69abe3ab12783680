"""Writing outputs a user asked for: atomically, and never over a user's own files.

Every file appears by rename from a temporary sibling, so a failure leaves the
old file or the new one, never half of one. A folder zoo writes into must be
new, empty, or a previous output of the same kind; anything else needs
``force``, and even then only zoo's own files are replaced.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from zoo.errors import OutputError


@contextmanager
def output_errors(path: Path) -> Iterator[None]:
    """An OSError while writing ``path`` as one OutputError line (read-only, /proc, full disk)."""
    try:
        yield
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


def check_folder(folder: Path, owned: Iterable[str], marker: str, *, force: bool) -> None:
    """Refuse an output ``folder`` that holds a user's files, before any work is done.

    A folder is a previous output when it holds ``marker`` and nothing but
    ``owned`` files. Any other non-empty folder is refused unless ``force``.
    Nothing is created here: a run that fails later leaves no empty folder.
    """
    owned = set(owned)
    with output_errors(folder):
        if folder.exists() and not folder.is_dir():
            raise OutputError(f"{folder} exists and is not a folder")
        entries = sorted(entry.name for entry in folder.iterdir()) if folder.is_dir() else []
        others = [name for name in entries if name not in owned]
        previous = marker in entries and not others
        if entries and not previous and not force:
            listed = others or entries
            shown = ", ".join(listed[:3]) + (", …" if len(listed) > 3 else "")
            raise OutputError(
                f"{folder} is not empty and not a previous zoo output (it holds {shown}); "
                "choose a new folder, or pass --force (force=True) to write zoo's files "
                "beside them"
            )


@contextmanager
def output_folder(
    folder: Path, owned: Iterable[str], marker: str, *, force: bool
) -> Iterator[Path]:
    """:func:`check_folder`, then create ``folder`` before the work, so an unwritable place
    fails at once; if the work fails, the folders this run created are removed again."""
    check_folder(folder, owned, marker, force=force)
    created = [path for path in (folder, *folder.parents) if not path.exists()]
    with output_errors(folder):
        folder.mkdir(parents=True, exist_ok=True)
    try:
        yield folder
    except BaseException:
        for path in created:  # deepest first; a folder that is no longer empty stays
            with suppress(OSError):
                path.rmdir()
        raise
