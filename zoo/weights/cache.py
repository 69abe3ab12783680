"""The zoo cache: where zoo keeps what it makes, and how a read-only one is survived.

``$ZOO_CACHE``, else a ``zoo`` folder beside huggingface_hub's cache
(``~/.cache/huggingface/zoo`` by default), so it follows ``HF_HUB_CACHE``.
It holds ``converted/`` (upstream pickles as safetensors), ``verified/`` (one
marker per verified file state), ``first-use/`` (the sha256 each unhashed URL
had when first used) and ``downloads/`` (temporary files while downloading).

Only conversion needs to write. Loading works from a read-only cache: a marker
that cannot be written costs one warning and a re-hash next time.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

from zoo.errors import CacheError, ZooWarning

_warned: set[str] = set()


def zoo_cache_dir() -> Path:
    """``$ZOO_CACHE``, else ``zoo/`` beside huggingface_hub's cache (read at call time)."""
    from huggingface_hub import constants

    configured = os.environ.get("ZOO_CACHE")
    if configured:
        return Path(configured).expanduser()
    return Path(constants.HF_HUB_CACHE).expanduser().parent / "zoo"


def cache_folder(name: str, purpose: str) -> Path:
    """``zoo_cache_dir() / name``, created; a CacheError naming ZOO_CACHE when that fails."""
    folder = zoo_cache_dir() / name
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
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(data, stream)
        Path(name).replace(path)
    finally:
        Path(name).unlink(missing_ok=True)


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
