"""Checking that a weights file is the file its card means.

Four checks, one per kind of source (the card's ``weights.integrity`` names it):

- ``sha256``: the card's own hash.
- ``hash-in-url``: torchvision's URLs end in ``-<first hex digits of the sha256>.pth``;
  the prefix is checked exactly as ``torch.hub``'s ``check_hash`` does it.
- ``hub-lfs``: the hash the Hub announced for the file when it was downloaded
  (huggingface_hub names the cached blob by it), see :mod:`zoo.weights.hub`.
- ``first-use``: nothing to check against, so the first file's sha256 is recorded
  in the zoo cache and a later, different file is refused.

A successful check of a cached file is remembered for that exact file state
(resolved path, size, mtime_ns) in ``verified/``, so later loads cost one ``stat``.
Temporary files are never remembered: their markers would outlive them.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from zoo.errors import WeightsError
from zoo.weights.cache import area_folder, read_json, try_write_json, warn_once

CHUNK = 1 << 20
Algorithm = Literal["sha256", "git-sha1"]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def git_blob_sha1_of(path: Path) -> str:
    """The id git (and the Hub's ETag for a file not in LFS) gives this file's content."""
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode(), usedforsecurity=False)
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


HASHERS: dict[str, Callable[[Path], str]] = {"sha256": sha256_of, "git-sha1": git_blob_sha1_of}


def verify(
    path: Path,
    expected: str | None,
    *,
    algorithm: Algorithm = "sha256",
    source: str = "the card",
    remember: bool = True,
    removable: bool = True,
) -> None:
    """Raise unless ``path`` hashes to ``expected``; a cached file that fails is removed.

    ``remember=False`` for temporary files (no marker outlives them);
    ``removable=False`` for files zoo does not own (an installed package's).
    """
    if expected is None:
        return
    marker = marker_path(path, algorithm, expected) if remember else None
    state = _file_state(path)
    if marker is not None and read_json(marker) == state:
        return
    found = HASHERS[algorithm](path)
    if found != expected:
        fate = _discard_for_mismatch(path, marker) if removable else "reinstall its package"
        raise WeightsError(
            f"{algorithm} mismatch for {path.name} ({path}): expected {expected} (from {source}), "
            f"found {found}; {fate}"
        )
    if marker is not None:
        try_write_json(marker, state, "the verification of weights files")


def check_downloaded(
    digest: str, *, origin: str, card: str, sha256: str | None, url_prefix: str | None
) -> None:
    """The checks a freshly downloaded (temporary) file's ``digest`` must pass before use."""
    if sha256 is not None and digest != sha256:
        raise WeightsError(
            f"{card}: sha256 mismatch for {origin}: expected {sha256} (from the card), "
            f"found {digest}; nothing was kept, so the next load downloads it again"
        )
    if url_prefix is not None and not digest.startswith(url_prefix):
        raise WeightsError(
            f"{card}: {origin} names sha256 prefix {url_prefix} (torchvision's convention, "
            f"checked as torch.hub does), found sha256 {digest}; nothing was kept"
        )


def trust_digest(digest: str, *, origin: str, card: str) -> None:
    """First use of ``origin`` (a URL no card hash covers): record ``digest``; later, compare.

    The record is keyed by ``origin``, so a changed upstream file is refused even
    after its conversion was cleared from the cache.
    """
    record_path, recorded = _first_use(origin)
    if recorded is None:
        _record(record_path, origin, digest, card)
    elif digest != recorded:
        raise _changed(record_path, origin, card, digest)


def trust_on_first_use(path: Path, *, origin: str, card: str) -> str:
    """:func:`trust_digest` for a file that stays (bundled): a marker spares re-hashing it."""
    record_path, recorded = _first_use(origin)
    if recorded is None:
        digest = sha256_of(path)
        _record(record_path, origin, digest, card)
        try_write_json(marker_path(path, "sha256", digest), _file_state(path), "the verification")
        return digest
    found = _verified_digest(path, recorded)
    if found != recorded:
        raise _changed(record_path, origin, card, found)
    return found


def _first_use(origin: str) -> tuple[Path, str | None]:
    path = first_use_record(origin)
    record = read_json(path)
    recorded = record.get("sha256") if isinstance(record, dict) else None
    return path, recorded if isinstance(recorded, str) else None


def _record(record_path: Path, origin: str, digest: str, card: str) -> None:
    entry = {"origin": origin, "sha256": digest, "card": card, "recorded": _today()}
    try_write_json(record_path, entry, "the first-use sha256")
    warn_once(
        f"{card}: the card gives no hash for {origin}; trusting it on first use with sha256 "
        f"{digest} (recorded in {record_path}); put `sha256: {digest}` in the card to pin it"
    )


def _changed(record_path: Path, origin: str, card: str, found: str) -> WeightsError:
    record = read_json(record_path) or {}
    return WeightsError(
        f"{card}: {origin} is not the file first used here: found sha256 {found}, recorded "
        f"{record.get('sha256')} on {record.get('recorded', '?')}; refusing it (if the upstream "
        f"change is expected, delete {record_path})"
    )


def _verified_digest(path: Path, recorded: str) -> str:
    """``recorded`` when ``path`` verifies against it (a marker makes that one ``stat``)."""
    marker = marker_path(path, "sha256", recorded)
    if read_json(marker) == _file_state(path):
        return recorded
    found = sha256_of(path)
    if found == recorded:
        try_write_json(marker, _file_state(path), "the verification of weights files")
    return found


def first_use_record(origin: str) -> Path:
    key = hashlib.sha256(origin.encode()).hexdigest()[:32]
    return area_folder("first-use") / f"{key}.json"


def marker_path(path: Path, algorithm: str, expected: str) -> Path:
    key = hashlib.sha256(f"{path.resolve()}\0{algorithm}\0{expected}".encode()).hexdigest()
    return area_folder("verified") / f"{key}.json"


def discard(path: Path) -> None:
    """Remove a cached file and, for huggingface_hub's symlinked layout, its blob and lock."""
    blob = _blob_link(path)
    path.unlink(missing_ok=True)
    if blob is not None:
        blob.unlink(missing_ok=True)
        _hub_lock(blob).unlink(missing_ok=True)


def _blob_link(path: Path) -> Path | None:
    """The ``blobs/<etag>`` entry a huggingface_hub snapshot file links to (one link deep)."""
    if not path.is_symlink():
        return None
    blob = Path(os.path.normpath(path.parent / os.readlink(path)))
    return blob if blob.parent.name == "blobs" else None


def _hub_lock(blob: Path) -> Path:
    """huggingface_hub's lock for a blob: ``<cache>/.locks/<repo folder>/<etag>.lock``."""
    repo_folder = blob.parent.parent
    return repo_folder.parent / ".locks" / repo_folder.name / f"{blob.name}.lock"


def _discard_for_mismatch(path: Path, marker: Path | None) -> str:
    try:
        discard(path)
        if marker is not None:
            marker.unlink(missing_ok=True)
    except OSError as error:
        return f"it could not be removed ({error.strerror or error}); delete it by hand"
    return "the file was removed from the cache, so the next load downloads it again"


def _file_state(path: Path) -> dict[str, Any]:
    stat = path.resolve().stat()
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def announced_hash(path: Path) -> tuple[Algorithm, str] | None:
    """What the Hub announced for a cached file: huggingface_hub names the blob by its ETag.

    An LFS file's ETag is its sha256 (64 hex digits); a small file kept in git
    has its git blob sha1 (40). None when the file is not a symlinked blob.
    """
    blob = _blob_link(path)
    return etag_hash(blob.name) if blob is not None else None


def etag_hash(etag: str | None) -> tuple[Algorithm, str] | None:
    if etag is None or any(c not in "0123456789abcdef" for c in etag):
        return None
    if len(etag) == 64:
        return "sha256", etag
    if len(etag) == 40:
        return "git-sha1", etag
    return None
