"""What is local: pulling a model's weights now, listing the caches, clearing them.

Results are pydantic models, so the CLI only renders them (as a table or JSON)
and Python callers get the same facts.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel

from zoo.cards import Card, Integrity
from zoo.errors import CacheError, WeightsError
from zoo.registry import Registry, default_registry
from zoo.weights.cache import read_json, zoo_cache_dir
from zoo.weights.fetch import fetch, origin_name, source_sha256
from zoo.weights.files import ModelWeights
from zoo.weights.hub import HF_HUB_PREFIX, fetch_hub_repo, parse_hub_spec

if TYPE_CHECKING:
    from huggingface_hub import HFCacheInfo

ZOO_OWNED = ("converted", "verified", "downloads")
#: Folders of the zoo cache holding what zoo made from a model, one entry ``<card>-<key>``
#: per model and source: (folder, what it holds). One line registers a new area.
MADE_AREAS = (
    ("onnx", "ONNX exports made on first use"),
    ("int8", "int8 quantizations made on first use"),
    ("openvino", "OpenVINO's compiled models (named by OpenVINO's own hash)"),
)


class PulledPart(BaseModel):
    """One weights part of a model, local and verified."""

    model: str
    source: str
    integrity: Integrity
    path: str
    sha256: str | None = None


class CachedRepo(BaseModel):
    repo: str
    size: int
    files: int
    revisions: list[str]
    path: str


class CachedConversion(BaseModel):
    file: str
    size: int
    origin: str
    card: str | None
    path: str


class CachedMade(BaseModel):
    """One thing zoo made from a model and keeps (an export, a quantization)."""

    area: str
    entry: str
    size: int
    path: str


class CacheListing(BaseModel):
    folder: str
    hub: list[CachedRepo]
    converted: list[CachedConversion]
    made: list[CachedMade] = []


class ClearedCache(BaseModel):
    removed: list[str]
    freed_bytes: int


def pull(
    name: str | Card, *, hashes: bool = False, registry: Registry | None = None
) -> list[PulledPart]:
    """Fetch (and verify, and convert) a model's weights now; with ``hashes``, each source's sha256.

    ``hf-hub:org/name[@revision]`` pulls a repo published by ``zoo push``.
    The sha256 is that of the file the card names (the upstream pickle, not the
    conversion), which is what a card's ``sha256`` pins.
    """
    if isinstance(name, str) and name.startswith(HF_HUB_PREFIX):
        return [_pull_hub_repo(name.removeprefix(HF_HUB_PREFIX), hashes)]
    registry = registry or default_registry()
    card = name if isinstance(name, Card) else registry.card(name)
    architecture = registry.architecture(card.architecture)
    version = registry.plugin_version(architecture)
    pulled = []
    for part, local in zip(
        card.weights, fetch(card, architecture, registry, plugin_version=version), strict=True
    ):
        if isinstance(local, ModelWeights):  # another model's weights: pulled as its own card says
            pulled += pull(local.card, hashes=hashes, registry=registry)
            continue
        pulled.append(
            PulledPart(
                model=card.name,
                source=origin_name(part),
                integrity=part.verification(),
                path=str(local.path),
                sha256=source_sha256(card, part, local) if hashes else None,
            )
        )
    return pulled


def _pull_hub_repo(spec: str, hashes: bool) -> PulledPart:
    card, local = fetch_hub_repo(spec, with_weights=True)
    if local is None:
        raise WeightsError(f"{HF_HUB_PREFIX}{spec}: the repo holds no weights")
    part = next((p for p in card.weights if p.repo_id is not None), card.weights[0])
    return PulledPart(
        model=f"{HF_HUB_PREFIX}{spec}",
        source=f"hf://{parse_hub_spec(spec)[0]}/{local.path.name}@{local.path.parent.name}",
        integrity=part.verification(),
        path=str(local.path),
        sha256=source_sha256(card, part, local) if hashes else None,
    )


def cache_listing(cards: list[Card] | None = None) -> CacheListing:
    """Hub repos (huggingface_hub's own scan) and conversions, all or those of ``cards``."""
    repos = _hub_repos()
    conversions = _conversions()
    if cards is not None:
        wanted = {part.repo_id for card in cards for part in card.weights if part.repo_id}
        names = {card.name for card in cards}
        repos = [repo for repo in repos if repo.repo in wanted]
        conversions = [c for c in conversions if c.card in names]
    made = _made(cards)
    return CacheListing(folder=str(zoo_cache_dir()), hub=repos, converted=conversions, made=made)


def _made(cards: list[Card] | None) -> list[CachedMade]:
    """Entries of the made areas, all or those whose name starts with one of ``cards``'."""
    entries = []
    for area, _ in MADE_AREAS:
        folder = zoo_cache_dir() / area
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if cards is None or any(path.name.startswith(f"{c.name}-") for c in cards):
                entries.append(
                    CachedMade(area=area, entry=path.name, size=_size(path), path=str(path))
                )
    return entries


def clear_cache(cards: list[Card] | None = None) -> ClearedCache:
    """Remove cached weights: every model's, or those of ``cards``.

    Without ``cards``, the zoo's own folders (conversions, verification markers,
    partial downloads, exports and quantizations made on first use) go, with the Hub
    repos that registered cards name; with ``cards``, what was made from those models. The
    first-use records stay: they are what a later download is compared with.
    """
    if cards is None:
        cards = default_registry().cards()
        owned = [zoo_cache_dir() / name for name in ZOO_OWNED]
    else:
        owned = []
    listing = cache_listing(cards)
    removed: list[str] = []
    freed = _delete_hub_repos(listing.hub, removed)
    for conversion in listing.converted:
        path = Path(conversion.path)
        freed += _remove(path, removed) + _remove(path.with_suffix(".json"), removed)
    for made in listing.made:
        freed += _remove(Path(made.path), removed)
    for folder in owned:
        freed += _remove(folder, removed)
    _prune_markers()
    return ClearedCache(removed=removed, freed_bytes=freed)


def _scan_hub_cache() -> HFCacheInfo:
    """huggingface_hub's scan of the cache it downloads into now (its default is read at import)."""
    from huggingface_hub import constants, scan_cache_dir

    return scan_cache_dir(constants.HF_HUB_CACHE)


def _hub_repos() -> list[CachedRepo]:
    from huggingface_hub import CacheNotFound

    try:
        info = _scan_hub_cache()
    except CacheNotFound:
        return []
    return [
        CachedRepo(
            repo=repo.repo_id,
            size=repo.size_on_disk,
            files=repo.nb_files,
            revisions=sorted(revision.commit_hash[:8] for revision in repo.revisions),
            path=str(repo.repo_path),
        )
        for repo in sorted(info.repos, key=lambda repo: repo.repo_id)
        if repo.repo_type == "model"
    ]


def _conversions() -> list[CachedConversion]:
    folder = zoo_cache_dir() / "converted"
    if not folder.is_dir():
        return []
    entries = []
    for path in sorted(folder.glob("*.safetensors")):
        record = read_json(path.with_suffix(".json")) or {}
        entries.append(
            CachedConversion(
                file=path.name,
                size=path.stat().st_size,
                origin=record.get("origin", "?"),
                card=record.get("card"),
                path=str(path),
            )
        )
    return entries


def _delete_hub_repos(repos: list[CachedRepo], removed: list[str]) -> int:
    """Through huggingface_hub's own cache deletion, then the repo's folder and locks."""
    if not repos:
        return 0
    wanted = {repo.repo for repo in repos}
    info = _scan_hub_cache()
    hashes = [
        revision.commit_hash
        for repo in info.repos
        if repo.repo_id in wanted and repo.repo_type == "model"
        for revision in repo.revisions
    ]
    strategy = info.delete_revisions(*hashes)
    try:
        strategy.execute()
        for repo in repos:
            folder = Path(repo.path)
            if folder.exists():
                shutil.rmtree(folder)
            shutil.rmtree(folder.parent / ".locks" / folder.name, ignore_errors=True)
            removed.append(repo.path)
    except OSError as error:
        raise CacheError(f"cannot clear {error.filename}: {error.strerror or error}") from None
    return strategy.expected_freed_size


def _remove(path: Path, removed: list[str]) -> int:
    if not path.exists():
        return 0
    size = _size(path)
    try:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    except OSError as error:
        raise CacheError(f"cannot clear {path}: {error.strerror or error}") from None
    removed.append(str(path))
    return size


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(item.stat().st_size for item in path.rglob("*") if item.is_file())


def _prune_markers() -> None:
    """Drop verification markers whose file is gone: they can never match again."""
    folder = zoo_cache_dir() / "verified"
    if not folder.is_dir():
        return
    for marker in folder.glob("*.json"):
        state = read_json(marker)
        if not isinstance(state, dict) or not Path(str(state.get("path"))).exists():
            marker.unlink(missing_ok=True)
