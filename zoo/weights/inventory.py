"""What is local: pulling a model's weights now, listing the caches, clearing them.

Results are pydantic models, so the CLI only renders them (as a table or JSON)
and Python callers get the same facts.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from zoo.cards import Card, Integrity
from zoo.errors import CacheError, WeightsError
from zoo.registry import Registry, default_registry
from zoo.weights.cache import (
    CACHE_AREAS,
    CacheArea,
    area_folder,
    model_of_entry,
    read_json,
    zoo_cache_dir,
)
from zoo.weights.fetch import fetch, origin_name, source_sha256
from zoo.weights.files import ModelWeights
from zoo.weights.hub import HF_HUB_PREFIX, fetch_hub_repo, parse_hub_spec

if TYPE_CHECKING:
    from huggingface_hub import HFCacheInfo


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


class CachedArea(BaseModel):
    """One folder of the zoo cache (:data:`~zoo.weights.cache.CACHE_AREAS`) and its size."""

    name: str
    holds: str
    path: str
    size: int
    entries: int
    kept: bool = Field(description="a full clear leaves it (first-use records)")


class CacheListing(BaseModel):
    folder: str
    hub: list[CachedRepo]
    converted: list[CachedConversion]
    made: list[CachedMade]
    areas: list[CachedArea]


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
    """Hub repos (huggingface_hub's own scan), conversions and every zoo cache area, all or
    what belongs to ``cards``."""
    repos = _hub_repos()
    conversions = _conversions()
    names = None if cards is None else {card.name for card in cards}
    if cards is not None and names is not None:
        wanted = {part.repo_id for card in cards for part in card.weights if part.repo_id}
        repos = [repo for repo in repos if repo.repo in wanted]
        conversions = [c for c in conversions if c.card in names]
    made = [
        CachedMade(area=area.name, entry=entry.name, size=_size(entry), path=str(entry))
        for area in CACHE_AREAS.values()
        if area.made
        for entry in _entries(area, names)
    ]
    areas = [_area_listing(area, names) for area in CACHE_AREAS.values()]
    if names is not None:
        areas = [area for area in areas if area.entries]
    return CacheListing(
        folder=str(zoo_cache_dir()), hub=repos, converted=conversions, made=made, areas=areas
    )


def clear_cache(cards: list[Card] | None = None) -> ClearedCache:
    """Remove cached weights and exports: every model's, or those of ``cards``.

    Without ``cards``, every zoo cache area goes (conversions, exports, verification
    markers, partial downloads, and any area registered since), with the Hub repos that
    registered cards name. The first-use records stay: they are what a later download is
    compared with. With ``cards``, their Hub repos and their entries in each area.
    """
    names = None if cards is None else {card.name for card in cards}
    listing = cache_listing(default_registry().cards() if cards is None else cards)
    removed: list[str] = []
    freed = _delete_hub_repos(listing.hub, removed)
    for area in CACHE_AREAS.values():
        if names is None and not area.kept:
            freed += _remove(area.path, removed)
        elif names is not None and area.per_model:
            for entry in _entries(area, names):
                freed += _remove(entry, removed)
    _prune_markers()
    return ClearedCache(removed=removed, freed_bytes=freed)


def _entries(area: CacheArea, names: set[str] | None) -> list[Path]:
    """The area's entries, or those of the models ``names`` (an area that is per model)."""
    if not area.path.is_dir():
        return []
    entries = sorted(area.path.iterdir())
    if names is None:
        return entries
    return [entry for entry in entries if area.per_model and model_of_entry(entry) in names]


def _area_listing(area: CacheArea, names: set[str] | None) -> CachedArea:
    entries = _entries(area, names)
    return CachedArea(
        name=area.name,
        holds=area.holds,
        path=str(area.path),
        size=sum(_size(entry) for entry in entries),
        entries=len(entries),
        kept=area.kept,
    )


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
    folder = area_folder("converted")
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
    folder = area_folder("verified")
    if not folder.is_dir():
        return
    for marker in folder.glob("*.json"):
        state = read_json(marker)
        if not isinstance(state, dict) or not Path(str(state.get("path"))).exists():
            marker.unlink(missing_ok=True)
