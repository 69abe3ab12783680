"""The zoo cache: where zoo keeps what it makes, and how a read-only one is survived.

``$ZOO_CACHE``, else a ``zoo`` folder beside huggingface_hub's cache
(``~/.cache/huggingface/zoo`` by default), so it follows ``HF_HUB_CACHE``.
Every folder in it is a registered :class:`CacheArea` (:data:`CACHE_AREAS`), so that
``zoo cache`` lists each with its size and ``zoo cache --clear [NAME]`` removes it:
``converted/`` (upstream pickles as safetensors), ``onnx/`` (the ONNX backends'
exports), ``int8/`` (quantizations), ``openvino/`` (OpenVINO's compiled models),
``verified/`` (one marker per verified file state),
``downloads/`` (temporary files while downloading) and ``first-use/`` (the sha256
each unhashed URL had when first used, kept by a clear: it is what a later download
is compared with). Code that writes into the cache asks for its area's folder by
name (:func:`area_folder`), so a folder nobody registered cannot appear.

Only conversion needs to write. Loading works from a read-only cache: a marker
that cannot be written costs one warning and a re-hash next time.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo.errors import CacheError, ZooWarning
from zoo.output import temporary_sibling

_warned: set[str] = set()


def zoo_cache_dir() -> Path:
    """``$ZOO_CACHE``, else ``zoo/`` beside huggingface_hub's cache (read at call time)."""
    from huggingface_hub import constants

    configured = os.environ.get("ZOO_CACHE")
    if configured:
        return Path(configured).expanduser()
    return Path(constants.HF_HUB_CACHE).expanduser().parent / "zoo"


#: A per-model entry is named ``<model>-<16 hex digits>`` (plus a suffix for files).
MODEL_ENTRY = re.compile(r"^(?P<model>.+)-[0-9a-f]{16}$")


def model_of_entry(entry: Path) -> str | None:
    """The model a cache entry named by :func:`model_entry` belongs to, else None."""
    match = MODEL_ENTRY.match(entry.name.split(".", 1)[0] if entry.is_file() else entry.name)
    return match["model"] if match else None


def model_entry(model: str, key: str) -> str:
    """The name of ``model``'s entry for ``key`` (a hex digest), as every area names them."""
    return f"{model}-{key[:16]}"


@dataclass(frozen=True)
class CacheArea:
    """One folder of the zoo cache, listed and cleared by ``zoo cache``.

    ``per_model``: its entries are named by :func:`model_entry`, so ``--clear NAME``
    removes the entries of that model. ``made``: each entry is something zoo made from a
    model (an export, a quantization, a compiled graph), listed one by one. ``kept``: a
    full clear leaves it (the first-use records, which later downloads are checked against).
    """

    name: str
    holds: str
    per_model: bool = False
    made: bool = False
    kept: bool = False

    @property
    def path(self) -> Path:
        return zoo_cache_dir() / self.name


CACHE_AREAS: dict[str, CacheArea] = {}


def register_cache_area(area: CacheArea) -> CacheArea:
    """Declare a folder of the zoo cache; only declared folders are handed out."""
    CACHE_AREAS[area.name] = area
    return area


for _area in (
    CacheArea("converted", "upstream checkpoints converted to safetensors", per_model=True),
    CacheArea("onnx", "ONNX exports made on first use", per_model=True, made=True),
    CacheArea("int8", "int8 quantizations made on first use", per_model=True, made=True),
    CacheArea("openvino", "OpenVINO's compiled models (named by its own hash)", made=True),
    CacheArea("verified", "markers of verified file states (re-hashed when gone)"),
    CacheArea("downloads", "partial downloads"),
    CacheArea("first-use", "sha256 of each unhashed URL on first use", kept=True),
):
    register_cache_area(_area)


def area_folder(name: str) -> Path:
    """The folder of the registered cache area ``name`` (not created)."""
    if name not in CACHE_AREAS:
        raise KeyError(f"cache area {name!r} is not registered (zoo.weights.cache)")
    return CACHE_AREAS[name].path


def cache_folder(name: str, purpose: str) -> Path:
    """The folder of cache area ``name``, created; a CacheError naming ZOO_CACHE when that
    fails."""
    folder = area_folder(name)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CacheError(
            f"cannot {purpose}: the zoo cache {zoo_cache_dir()} is not a writable folder "
            f"({error.strerror or error}); set ZOO_CACHE to one"
        ) from None
    return folder


def warn_once(message: str, category: type[Warning] = ZooWarning) -> None:
    """Emit ``message`` once per process, however often the cause repeats."""
    if message in _warned:
        return
    _warned.add(message)
    warnings.warn(message, category, stacklevel=3)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write_json(path: Path, data: Any) -> None:
    """Atomic JSON write: a reader sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_sibling(path)
    try:
        temporary.write_text(json.dumps(data), encoding="utf-8")
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)


def try_write_json(path: Path, data: Any, what: str) -> bool:
    """:func:`write_json`, or one warning when the cache is read-only or not a folder."""
    try:
        write_json(path, data)
    except OSError as error:
        warn_once(
            f"zoo cache {zoo_cache_dir()} is not writable ({error.strerror or error}); "
            f"{what} is not remembered, so it is redone next time (set ZOO_CACHE to a "
            "writable folder to avoid that)"
        )
        return False
    return True
