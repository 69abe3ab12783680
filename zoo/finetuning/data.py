"""Labelled data for fine-tuning: class folders or manifests, the split, unreadable files.

DATA is a folder with one subfolder per class (images or videos inside, at any depth,
torchvision's ``ImageFolder`` layout), or a manifest: a ``.csv`` or ``.parquet`` table
with ``path`` and ``label`` columns, relative paths read from the manifest's folder. The
classes are the labels found, sorted. Files are probed before training: an unreadable
one is skipped and counted, and the run stops before it starts when more than the
allowed share is unreadable.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np

from zoo.errors import FinetuneError, InputError
from zoo.finetuning.report import Unreadable
from zoo.inference.decode import as_media
from zoo.media import IMAGE_SUFFIXES, MEDIA_SUFFIXES

MANIFEST_SUFFIXES = (".csv", ".parquet")
#: Probing threads: decoding headers waits on the disk and on FFmpeg, both outside the GIL.
PROBE_THREADS = 8


@dataclass(frozen=True)
class Sample:
    """One labelled file."""

    path: Path
    label: str


def read_samples(source: str | PathLike[str]) -> list[Sample]:
    """The labelled files of a class-folder tree or a manifest, in a stable order."""
    path = Path(source)
    if path.is_dir():
        return _class_folders(path)
    if path.suffix.lower() in MANIFEST_SUFFIXES and path.is_file():
        return _manifest(path)
    found = "a file" if path.is_file() else "nothing" if not path.exists() else "something else"
    raise FinetuneError(
        f"{path}: expected a folder with one subfolder per class, or a .csv/.parquet manifest "
        f"with path and label columns; found {found}"
    )


def _class_folders(root: Path) -> list[Sample]:
    folders = sorted(entry for entry in root.iterdir() if entry.is_dir() and _visible(entry))
    loose = sorted(entry.name for entry in root.iterdir() if _is_media(entry))
    if loose:
        raise FinetuneError(
            f"{root} holds images or videos outside class folders ({_preview(loose)}); put each "
            "file in the subfolder named after its class"
        )
    if not folders:
        raise FinetuneError(f"{root} holds no class folders; expected one subfolder per class")
    samples = []
    for folder in folders:
        files = sorted(
            path for path in folder.rglob("*") if _is_media(path) and _visible_below(path, folder)
        )
        if not files:
            raise FinetuneError(
                f"class folder {folder} holds no image or video (suffixes "
                f"{', '.join(sorted(MEDIA_SUFFIXES))}); remove it or add its examples"
            )
        samples += [Sample(path, folder.name) for path in files]
    return samples


def _manifest(path: Path) -> list[Sample]:
    rows = _parquet_rows(path) if path.suffix.lower() == ".parquet" else _csv_rows(path)
    samples = []
    for number, row in enumerate(rows, start=2):  # line 1 is the header
        file, label = (str(row.get(key) or "").strip() for key in ("path", "label"))
        if not file or not label:
            raise FinetuneError(f"{path}, row {number}: empty path or label ({row})")
        resolved = Path(file) if Path(file).is_absolute() else path.parent / file
        samples.append(Sample(resolved, label))
    if not samples:
        raise FinetuneError(f"{path}: the manifest lists no files")
    return samples


def _csv_rows(path: Path) -> Sequence[Mapping[str, object]]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        _check_columns(path, reader.fieldnames or [])
        return list(reader)


def _parquet_rows(path: Path) -> Sequence[Mapping[str, object]]:
    try:
        import pyarrow.parquet as parquet
    except ModuleNotFoundError:
        raise FinetuneError(
            f"{path}: reading a .parquet manifest needs pyarrow: "
            "pip install 'zoo-models[corpus]', or give a .csv manifest"
        ) from None
    table = parquet.read_table(path)
    _check_columns(path, table.column_names)
    return table.select(["path", "label"]).to_pylist()


def _check_columns(path: Path, columns: Sequence[str]) -> None:
    missing = [name for name in ("path", "label") if name not in columns]
    if missing:
        raise FinetuneError(
            f"{path}: a manifest needs the columns path and label; missing {', '.join(missing)} "
            f"(its columns: {', '.join(columns) or 'none'})"
        )


def classes_of(samples: Sequence[Sample], source: str) -> list[str]:
    """The sorted labels; fewer than two cannot train a classifier."""
    classes = sorted({sample.label for sample in samples})
    if len(classes) < 2:
        raise FinetuneError(
            f"{source} holds one class only ({classes[0] if classes else 'none'}); a classifier "
            "needs at least two"
        )
    return classes


def split(samples: Sequence[Sample], share: float, seed: int) -> tuple[list[Sample], list[Sample]]:
    """Hold out ``share`` of each class (at least one of a class with two or more), by seed."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for label in sorted({sample.label for sample in samples}):
        members = [sample for sample in samples if sample.label == label]
        order = rng.permutation(len(members))
        held = min(len(members) - 1, max(1, round(share * len(members))))
        val += [members[i] for i in sorted(order[:held])]
        train += [members[i] for i in sorted(order[held:])]
    return train, val


def check_val_labels(classes: Sequence[str], val: Sequence[Sample], source: str) -> None:
    unseen = sorted({sample.label for sample in val} - set(classes))
    if unseen:
        raise FinetuneError(
            f"{source} holds labels the training data never saw: {_preview(unseen)}; "
            f"the training classes are {_preview(list(classes))}"
        )


def probe(samples: Sequence[Sample]) -> list[Unreadable | None]:
    """Per sample: None when its file opens as an image or a video, else why it does not."""

    def opens(sample: Sample) -> Unreadable | None:
        try:
            _open(sample.path)
        except InputError as error:
            return Unreadable(path=str(sample.path), error=error.problem)
        return None

    with ThreadPoolExecutor(PROBE_THREADS, thread_name_prefix="zoo-probe") as pool:
        return list(pool.map(opens, samples))


def _open(path: Path) -> None:
    """An image's header (decoding every image twice would cost an epoch of decoding), a
    video's stream and frame times; a file that fails later, while training, is skipped
    and counted then."""
    if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file() or not path.stat().st_size:
        as_media(path)
        return
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path):
            pass
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise InputError(str(path), f"cannot decode as an image (Pillow: {error})") from None


def check_unreadable(unreadable: Sequence[Unreadable], total: int, limit: float) -> None:
    """Stop when more than ``limit`` of the ``total`` files cannot be read."""
    if total and len(unreadable) / total > limit:
        first = unreadable[0]
        raise FinetuneError(
            f"{len(unreadable)} of {total} files ({len(unreadable) / total:.0%}) cannot be read, "
            f"more than the {limit:.0%} allowed (max_unreadable); the first: {first.path}: "
            f"{first.error}"
        )


def class_counts(samples: Sequence[Sample]) -> dict[str, int]:
    return dict(sorted(Counter(sample.label for sample in samples).items()))


def _is_media(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in MEDIA_SUFFIXES and _visible(path)


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


def _visible_below(path: Path, root: Path) -> bool:
    """No hidden folder (``.ipynb_checkpoints``) between ``root`` and ``path``."""
    return all(_visible(Path(part)) for part in path.relative_to(root).parts)


def _preview(items: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", … ({len(items) - limit} more)" if len(items) > limit else "")
