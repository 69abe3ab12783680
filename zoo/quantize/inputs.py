"""Calibration and validation inputs: files a user gives, pre-processed as the predictor does.

A folder gives its images and videos (by suffix, sorted, subfolders included); a manifest
is a text file of paths, one a line (``#`` starts a comment), or a ``.csv`` or ``.jsonl``
file with a ``path`` column, paths relative to the manifest's folder. Each input becomes
the rows the predictor would run (the clips of a video, the image) through the same
:class:`~zoo.inference.preprocess.Preprocessor`, so the quantizer sees exactly what the
model will see. Without separate validation inputs every fifth calibration input is held
out to compare with float32: inputs the quantizer never saw.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

from zoo.architecture import Architecture
from zoo.cards import Card
from zoo.errors import InputError, QuantizationError
from zoo.media import MEDIA_SUFFIXES

HOLD_OUT_EVERY = 5
MANIFEST_SUFFIXES = (".txt", ".csv", ".jsonl")

#: One row of one input: input name -> float32 array ``(1, ...)``, as the model takes it.
Row = dict[str, Any]


@dataclass(frozen=True)
class Split:
    """Which files calibrate the quantizer and which check it, and where they came from."""

    calibration: list[Path]
    validation: list[Path]
    held_out: bool  # validation is part of the calibration source


def input_files(source: str | PathLike[str]) -> list[Path]:
    """The image and video files a folder holds, or a manifest lists; at least one."""
    path = Path(source)
    if path.is_dir():
        files = sorted(
            item
            for item in path.rglob("*")
            if item.is_file() and item.suffix.lower() in MEDIA_SUFFIXES
        )
    elif path.is_file() and path.suffix.lower() in MANIFEST_SUFFIXES:
        files = _manifest(path)
    elif path.exists():
        raise QuantizationError(
            f"{path}: expected a folder of images or videos, or a manifest "
            f"({', '.join(MANIFEST_SUFFIXES)}), found a {path.suffix or 'suffix-less'} file"
        )
    else:
        raise QuantizationError(f"{path}: no such folder or manifest")
    if not files:
        raise QuantizationError(f"{path}: no image or video inputs in it")
    return files


def split(calibrate: str | PathLike[str], validate: str | PathLike[str] | None) -> Split:
    """Calibration and validation files: ``validate``'s, or every fifth of ``calibrate``'s."""
    files = input_files(calibrate)
    if validate is not None:
        return Split(files, input_files(validate), held_out=False)
    if len(files) < 2:
        raise QuantizationError(
            f"{calibrate}: one input cannot both calibrate and check the quantized model; "
            "give more inputs, or held-out ones with --validate"
        )
    validation = files[HOLD_OUT_EVERY - 1 :: HOLD_OUT_EVERY] or files[-1:]
    calibration = [file for file in files if file not in validation]
    return Split(calibration, validation, held_out=True)


def prepared_rows(files: list[Path], card: Card, architecture: Architecture) -> list[Row]:
    """Every row the predictor would run for ``files``, one float32 array per input each."""
    from zoo.inference.decode import as_media
    from zoo.inference.preprocess import Preprocessor

    preprocessor = Preprocessor(card, architecture.inference)
    rows = []
    for file in files:
        try:
            prepared = preprocessor(as_media(file))
        except InputError as error:
            raise QuantizationError(f"cannot use {error}") from None
        for index in range(prepared.rows):
            rows.append(
                {
                    name: tensor[index : index + 1].float().numpy()
                    for name, tensor in prepared.inputs.items()
                }
            )
    return rows


def fingerprint(files: list[Path]) -> list[list[object]]:
    """What identifies a set of inputs for the cache: each file's path, size and mtime."""
    facts = []
    for file in files:
        stat = file.resolve().stat()
        facts.append([str(file.resolve()), stat.st_size, stat.st_mtime_ns])
    return facts


def _manifest(path: Path) -> list[Path]:
    text = path.read_text(encoding="utf-8")
    suffix = path.suffix.lower()
    if suffix == ".txt":
        entries = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    elif suffix == ".csv":
        entries = [row.get("path", "") for row in csv.DictReader(text.splitlines())]
    else:
        entries = [_jsonl_path(path, number, line) for number, line in _lines(text)]
    files = [path.parent / entry for entry in entries if entry]
    missing = [str(file) for file in files if not file.is_file()]
    if missing:
        raise QuantizationError(f"{path} lists {len(missing)} missing files, first {missing[0]}")
    return files


def _lines(text: str) -> list[tuple[int, str]]:
    return [(number, line) for number, line in enumerate(text.splitlines(), 1) if line.strip()]


def _jsonl_path(manifest: Path, number: int, line: str) -> str:
    try:
        return str(json.loads(line)["path"])
    except (ValueError, KeyError, TypeError):
        raise QuantizationError(
            f"{manifest}:{number}: expected a JSON object with a 'path', found {line[:60]!r}"
        ) from None
