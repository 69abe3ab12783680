"""What a corpus job runs on: files, folders, globs and manifests, as one list of inputs.

Each input gets a *key*, its path relative to the job's root, which names its outputs
(``DIR/<key>.npy``): two files of the same name in different folders get different keys,
so they never overwrite each other's output, as they do in tools that name outputs by
file name alone. The root is the deepest folder holding every source given: a folder
itself, a glob's fixed prefix, a manifest's folder (and its entries'), a file's folder.
The same arguments give the same keys, so a rerun finds its earlier outputs.
"""

from __future__ import annotations

import csv
import glob
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

from zoo.errors import ArgumentError
from zoo.media import MEDIA_SUFFIXES

MANIFEST_SUFFIXES = (".txt", ".csv", ".parquet")
GLOB_MAGIC = ("*", "?", "[")


@dataclass(frozen=True)
class CorpusInput:
    """One input of a job: its absolute path and its key (path relative to the job's root)."""

    path: str
    key: str


def expand_inputs(items: str | PathLike[str] | Iterable[str | PathLike[str]]) -> list[CorpusInput]:
    """Every input named by ``items``, in order, each once.

    A folder gives every file under it (recursively, hidden ones skipped) whose suffix
    zoo decodes; a glob (``videos/**/*.mp4``) the files it matches; a ``.txt`` manifest
    one path a line (``#`` starts a comment), a ``.csv`` or ``.parquet`` manifest its
    ``path`` column, relative paths resolved against the manifest's folder; any other
    path is an input itself, even a missing one (the job records it as failed).
    """
    if isinstance(items, str | PathLike):
        items = [items]
    sources = [_expand(str(item)) for item in items]
    if not sources:
        raise ArgumentError("no inputs given; expected files, folders, globs or manifests")
    root = _common_root([root for root, _ in sources])
    seen: set[str] = set()
    inputs = []
    for _, paths in sources:
        for path in paths:
            if path not in seen:
                seen.add(path)
                key = Path(os.path.relpath(path, root)).as_posix()
                inputs.append(CorpusInput(path=path, key=key))
    return inputs


def _expand(item: str) -> tuple[str, list[str]]:
    """(the source's root, its absolute file paths) for one argument."""
    path = Path(item).expanduser()
    if path.is_dir():
        return _absolute(path), _media_under(path)
    if not path.exists() and any(magic in item for magic in GLOB_MAGIC):
        return _globbed(item)
    if path.is_file() and path.suffix.lower() in MANIFEST_SUFFIXES:
        return _manifest(path)
    return _absolute(path.parent), [_absolute(path)]


def _media_under(folder: Path) -> list[str]:
    found = []
    for directory, folders, files in os.walk(folder):
        folders[:] = sorted(name for name in folders if not name.startswith("."))
        found += [
            os.path.join(directory, name)
            for name in sorted(files)
            if not name.startswith(".") and Path(name).suffix.lower() in MEDIA_SUFFIXES
        ]
    if not found:
        raise ArgumentError(
            f"folder {folder} holds no image or video file "
            f"(suffixes {', '.join(sorted(MEDIA_SUFFIXES))})"
        )
    return [_absolute(Path(name)) for name in found]


def _globbed(pattern: str) -> tuple[str, list[str]]:
    matches = sorted(glob.glob(os.path.expanduser(pattern), recursive=True))
    files = [_absolute(Path(match)) for match in matches if Path(match).is_file()]
    if not files:
        raise ArgumentError(f"glob {pattern!r} matches no file")
    fixed = []
    for part in Path(pattern).expanduser().parts:
        if any(magic in part for magic in GLOB_MAGIC):
            break
        fixed.append(part)
    return _absolute(Path(*fixed) if fixed else Path()), files


def _manifest(path: Path) -> tuple[str, list[str]]:
    entries = _manifest_entries(path)
    if not entries:
        raise ArgumentError(f"manifest {path} lists no input")
    folder = path.parent
    files = [_absolute(folder / Path(entry).expanduser()) for entry in entries]
    return _common_root([_absolute(folder), *(os.path.dirname(file) for file in files)]), files


def _manifest_entries(path: Path) -> list[str]:
    suffix = path.suffix.lower()
    if suffix == ".txt":
        lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
        return [line for line in lines if line and not line.startswith("#")]
    if suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            _require_path_column(path, reader.fieldnames or [])
            return [row["path"].strip() for row in reader if (row["path"] or "").strip()]
    import pyarrow.parquet as parquet

    table = parquet.read_table(path)
    _require_path_column(path, table.column_names)
    return [str(value) for value in table.column("path").to_pylist() if value]


def _require_path_column(path: Path, columns: Sequence[str]) -> None:
    if "path" not in columns:
        raise ArgumentError(
            f"manifest {path} has no 'path' column (its columns: {', '.join(columns) or 'none'})"
        )


def _absolute(path: Path) -> str:
    return os.path.normpath(os.path.abspath(path))


def _common_root(roots: Sequence[str]) -> str:
    return os.path.commonpath(roots) if roots else os.getcwd()
