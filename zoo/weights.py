"""Pretrained weights: fetched through huggingface_hub, verified, converted and cached.

Downloads, the Hub cache layout, file locking, progress bars and the
``HF_ENDPOINT``, ``HF_HUB_CACHE`` and ``HF_HUB_OFFLINE`` settings are
huggingface_hub's own; zoo adds what it lacks:

- sha256 checks against the card. A file that fails is removed from the cache
  (link and blob), so the next load downloads it again instead of trusting it.
  huggingface_hub names LFS blobs by the sha256 the *server* announced and checks
  only their size, so that name proves nothing; zoo hashes the file itself once
  and records a marker keyed by (path, size, mtime_ns), so later loads cost one
  ``stat`` instead of reading the whole file again.
- upstream pickles (``format: pickle``): fetched once, read only with
  ``torch.load(weights_only=True)``, converted to the zoo layout by the
  architecture's converter and kept as safetensors in the zoo cache; later loads
  read only that file.

The zoo cache is ``$ZOO_CACHE``, else a ``zoo`` folder beside the Hub cache
(``~/.cache/huggingface/zoo`` by default), so it follows ``HF_HUB_CACHE``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.architecture import Architecture
from zoo.cards import Card, Weights
from zoo.errors import WeightsError
from zoo.registry import Registry, current_registry

if TYPE_CHECKING:
    import torch
    from pydantic import BaseModel

CHUNK = 1 << 20
NESTED_STATE_KEYS = ("state_dict", "model", "model_state_dict", "module")
MODEL_FILE = "model.safetensors"


@dataclass(frozen=True)
class WeightsFile:
    """A local safetensors file, the key layout it is in, and the prefix its keys get."""

    path: Path
    layout: str = "zoo"
    prefix: str = ""


@dataclass(frozen=True)
class ModelWeights:
    """Another zoo model's pretrained weights, used as one part of a card's weights.

    ``parts`` are that model's own fetched and verified parts; its architecture
    converts and merges them into its zoo layout, then this card's architecture
    converts that state from ``layout`` and puts it under ``prefix``.
    """

    card: Card
    architecture: Architecture
    parts: tuple[WeightsFile | ModelWeights, ...]
    layout: str = "zoo"
    prefix: str = ""

    def files(self) -> list[WeightsFile]:
        """Every local file behind these weights, however deeply they are nested."""
        return [file for part in self.parts for file in files_of(part)]


WeightsPart = WeightsFile | ModelWeights


def files_of(part: WeightsPart) -> list[WeightsFile]:
    return part.files() if isinstance(part, ModelWeights) else [part]


# --- where things are cached ---------------------------------------------------------------


def zoo_cache_dir() -> Path:
    """``$ZOO_CACHE``, else ``zoo/`` beside huggingface_hub's cache (read at call time)."""
    from huggingface_hub import constants

    configured = os.environ.get("ZOO_CACHE")
    if configured:
        return Path(configured).expanduser()
    return Path(constants.HF_HUB_CACHE).expanduser().parent / "zoo"


# --- sha256 ---------------------------------------------------------------------------------


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify(path: Path, expected: str | None) -> None:
    """Raise if ``path`` does not hash to ``expected``, and remove it so it is never used again.

    A successful check is remembered for this exact file state (resolved path,
    size, mtime_ns): replacing or rewriting the file invalidates it.
    """
    if expected is None:
        return
    marker = _marker_path(path, expected)
    state = _file_state(path)
    if _read_json(marker) == state:
        return
    found = sha256_of(path)
    if found != expected:
        discard(path)
        marker.unlink(missing_ok=True)
        raise WeightsError(
            f"sha256 mismatch for {path.name} ({path}): expected {expected}, found {found}; "
            "the file was removed from the cache, so the next load downloads it again"
        )
    _write_json(marker, state)


def discard(path: Path) -> None:
    """Remove a cached file and, for huggingface_hub's symlinked layout, the blob behind it."""
    target = path.resolve()
    path.unlink(missing_ok=True)
    if target != path:
        target.unlink(missing_ok=True)


def _marker_path(path: Path, expected: str) -> Path:
    key = hashlib.sha256(f"{path.resolve()}\0{expected}".encode()).hexdigest()
    return zoo_cache_dir() / "verified" / f"{key}.json"


def _file_state(path: Path) -> dict[str, Any]:
    stat = path.resolve().stat()
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


# --- fetching a card's weights --------------------------------------------------------------


def fetch(
    card: Card,
    architecture: Architecture,
    registry: Registry | None = None,
    *,
    through: tuple[str, ...] = (),
) -> list[WeightsPart]:
    """Local, verified weights for every part of ``card`` (downloading once).

    A part that names another ``model`` is that model's own fetch, looked up in
    ``registry`` (default: :func:`~zoo.registry.current_registry`); ``through``
    is the chain of cards that led here, so a cycle is an error, not a hang.
    """
    if not card.weights:
        raise WeightsError(
            f"card {card.name!r} names no pretrained weights; load it with pretrained=False "
            "or pass weights='file.safetensors'"
        )
    registry = registry or current_registry()
    config = architecture.validate_config(card.config)
    chain = (*through, card.name)
    return [
        _fetch_model_part(part, registry, chain)
        if part.model is not None
        else _fetch_part(card, part, architecture, config)
        for part in card.weights
    ]


def _fetch_model_part(part: Weights, registry: Registry, chain: tuple[str, ...]) -> ModelWeights:
    """The weights of the model a part names, fetched as that model's own card says."""
    source = registry.card(part.model or "")
    if source.name in chain:
        cycle = " -> ".join((*chain, source.name))
        raise WeightsError(f"weights parts name each other in a cycle: {cycle}")
    architecture = registry.architecture(source.architecture)
    try:
        parts = fetch(source, architecture, registry, through=chain)
    except WeightsError as error:
        raise WeightsError(
            f"{chain[-1]}: its weights start from {source.name}'s: {error}"
        ) from None
    return ModelWeights(source, architecture, tuple(parts), part.layout, part.prefix)


def _fetch_part(
    card: Card, part: Weights, architecture: Architecture, config: BaseModel
) -> WeightsFile:
    if part.format == "pickle":
        path = converted_pickle(card, part, architecture, config)
        return WeightsFile(path, "zoo", part.prefix)
    if part.bundled is not None:
        path = bundled_path(part.bundled)
    elif part.repo_id is not None:
        path = hub_file(part.repo_id, part.filename, part.revision, card=card.name)
    else:
        raise WeightsError(
            f"card {card.name!r}: safetensors from a plain URL ({part.url}) are not supported; "
            "publish them to a Hub repo (repo_id) or mark an upstream pickle with format: pickle"
        )
    verify(path, part.sha256)
    return WeightsFile(path, part.layout, part.prefix)


def bundled_path(spec: str) -> Path:
    """The file behind ``"package:path"``; bundled weights must be plain files on disk."""
    package, _, relative = spec.partition(":")
    try:
        path = Path(str(files(package).joinpath(relative)))
    except ModuleNotFoundError:
        raise WeightsError(f"bundled weights {spec!r}: no installed package {package!r}") from None
    if not path.is_file():
        raise WeightsError(f"bundled weights {spec!r} not found at {path}")
    return path


def hub_file(repo_id: str, filename: str, revision: str | None, *, card: str) -> Path:
    """``hf_hub_download`` with its errors turned into one clear :class:`WeightsError`."""
    from huggingface_hub import hf_hub_download

    where = f"{repo_id}/{filename}@{revision or 'main'}"
    with _hub_errors(where, card):
        return Path(hf_hub_download(repo_id, filename, revision=revision))


@contextmanager
def _hub_errors(where: str, card: str) -> Iterator[None]:
    """Name the file, the cause and the remedy for every way a Hub download fails."""
    import httpx2
    from huggingface_hub import errors

    try:
        yield
    except errors.RemoteEntryNotFoundError:
        raise WeightsError(f"{card}: {where} does not exist on the Hub (404)") from None
    except errors.RevisionNotFoundError:
        raise WeightsError(f"{card}: revision of {where} does not exist on the Hub") from None
    except errors.RepositoryNotFoundError:
        raise WeightsError(f"{card}: repository of {where} not found (or private)") from None
    except (errors.LocalEntryNotFoundError, errors.OfflineModeIsEnabled) as error:
        raise WeightsError(
            f"{card}: {where} is not in the local cache and cannot be downloaded "
            f"({_offline_or_cause(error)}); run `zoo pull {card}` while online"
        ) from error
    except errors.HfHubHTTPError as error:
        raise WeightsError(f"{card}: downloading {where} failed: {_first_line(error)}") from error
    except (OSError, httpx2.HTTPError) as error:
        raise WeightsError(f"{card}: downloading {where} failed: {_first_line(error)}") from error


def _offline_or_cause(error: BaseException) -> str:
    from huggingface_hub import constants

    if constants.is_offline_mode():
        return "HF_HUB_OFFLINE is set"
    cause = error.__cause__ or error
    return f"the Hub could not be reached: {_first_line(cause)}"


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


# --- upstream pickles -----------------------------------------------------------------------


def converted_pickle(
    card: Card, part: Weights, architecture: Architecture, config: BaseModel
) -> Path:
    """The zoo-layout safetensors made from an upstream pickle, converting it on first use.

    The cache key covers everything the result depends on: the origin, its
    expected hash, the layout and converter, and the architecture's config.
    A lock makes concurrent processes convert once; the file appears by rename.
    """
    key = _origin_key(part, architecture, config)
    target = zoo_cache_dir() / "converted" / f"{card.name}-{key[:16]}.safetensors"
    record = target.with_suffix(".json")
    if _usable(target, record):
        return target
    from huggingface_hub.utils import WeakFileLock

    target.parent.mkdir(parents=True, exist_ok=True)
    with WeakFileLock(target.with_suffix(".lock")):
        if _usable(target, record):
            return target
        state = _convert_origin(card, part, architecture, config)
        digest = save_safetensors(state, target, metadata={"origin": _origin_name(part)})
        _write_json(
            record,
            {
                "origin": _origin_name(part),
                "origin_sha256": part.sha256,
                "layout": part.layout,
                "architecture": architecture.name,
                "sha256": digest,
            },
        )
    return target


def _usable(target: Path, record: Path) -> bool:
    """The converted file exists and still hashes as written (marker-cached after once)."""
    info = _read_json(record)
    if not target.is_file() or info is None:
        return False
    verify(target, info["sha256"])
    return True


def _origin_key(part: Weights, architecture: Architecture, config: BaseModel) -> str:
    description = {
        "origin": _origin_name(part),
        "sha256": part.sha256,
        "layout": part.layout,
        "architecture": architecture.name,
        "converter": architecture.converters.get(part.layout, "zoo"),
        "config": config.model_dump(mode="json"),
    }
    return hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()


def _origin_name(part: Weights) -> str:
    if part.url is not None:
        return part.url
    if part.repo_id is not None:
        return f"hf://{part.repo_id}/{part.filename}@{part.revision}"
    return f"bundled:{part.bundled}"


def _convert_origin(
    card: Card, part: Weights, architecture: Architecture, config: BaseModel
) -> dict[str, torch.Tensor]:
    """Fetch the pickle, check its hash, unpickle it safely and convert it to the zoo layout."""
    if part.url is not None:
        with _downloaded_url(part.url, card.name) as path:
            verify(path, part.sha256)
            state = read_checkpoint(path)
    else:
        if part.repo_id is not None:
            path = hub_file(part.repo_id, part.filename, part.revision, card=card.name)
        else:
            path = bundled_path(part.bundled or "")
        verify(path, part.sha256)
        state = read_checkpoint(path)
    return convert_state_dict(architecture, config, state, part.layout, origin=_origin_name(part))


@contextmanager
def _downloaded_url(url: str, card: str) -> Iterator[Path]:
    """Download ``url`` to a temp file with huggingface_hub's HTTP client (retries, progress)."""
    from huggingface_hub import constants
    from huggingface_hub.file_download import http_get

    if constants.is_offline_mode():
        raise WeightsError(
            f"{card}: {url} has not been converted into the zoo cache yet and HF_HUB_OFFLINE is "
            f"set; run `zoo pull {card}` while online"
        )
    folder = zoo_cache_dir() / "downloads"
    folder.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=folder, suffix=".incomplete")
    path = Path(name)
    try:
        with os.fdopen(handle, "wb") as stream, _hub_errors(url, card):
            http_get(url, stream, displayed_filename=url.rsplit("/", 1)[-1])
        yield path
    finally:
        path.unlink(missing_ok=True)


def read_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of an upstream checkpoint: safetensors, or a pickle read with weights_only=True.

    Checkpoints that nest their weights under ``state_dict``/``model`` (training
    checkpoints with optimizer state beside them) are unwrapped; anything else
    that is not a flat mapping of names to tensors is an error, not a guess.
    """
    import pickle

    import torch

    if path.suffix == ".safetensors":
        return read_state_dict(path)
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as error:
        raise WeightsError(
            f"{path.name}: not a readable PyTorch checkpoint under weights_only=True "
            f"({_first_line(error)}); zoo never unpickles arbitrary objects"
        ) from None
    return _flat_state_dict(loaded, path.name)


def _flat_state_dict(loaded: Any, origin: str) -> dict[str, torch.Tensor]:
    import torch

    while isinstance(loaded, Mapping) and not _all_tensors(loaded):
        nested = [key for key in NESTED_STATE_KEYS if isinstance(loaded.get(key), Mapping)]
        if not nested:
            kinds = {key: type(value).__name__ for key, value in list(loaded.items())[:8]}
            raise WeightsError(
                f"{origin}: expected a mapping of names to tensors, or one nested under "
                f"{'/'.join(NESTED_STATE_KEYS)}; found top-level entries {kinds}"
            )
        loaded = loaded[nested[0]]
    if not isinstance(loaded, Mapping):
        raise WeightsError(f"{origin}: expected a state dict, found {type(loaded).__name__}")
    return {str(key): value for key, value in loaded.items() if isinstance(value, torch.Tensor)}


def _all_tensors(mapping: Mapping) -> bool:
    import torch

    return bool(mapping) and all(isinstance(value, torch.Tensor) for value in mapping.values())


# --- safetensors and conversion -------------------------------------------------------------


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors file, memory-mapped; a damaged file is a WeightsError."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist")
    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise WeightsError(
            f"{path} is not a readable safetensors file ({_first_line(error)}); "
            "it may be truncated or not a safetensors file at all"
        ) from None


def convert_state_dict(
    architecture: Architecture,
    config: BaseModel,
    state: dict[str, Any],
    layout: str,
    origin: str = "weights",
) -> dict[str, Any]:
    """The architecture's converter for ``layout`` applied in memory; ``zoo`` is the identity."""
    if layout == "zoo":
        return state
    try:
        converter = architecture.resolve_converter(layout)
    except ValueError as error:
        raise WeightsError(f"{origin}: {error}") from None
    return converter(state, config)


def merge_parts(parts: list[tuple[str, Mapping[str, Any]]]) -> dict[str, Any]:
    """One state dict from converted parts, each key under its part's prefix."""
    merged: dict[str, Any] = {}
    for prefix, state in parts:
        for key, tensor in state.items():
            name = f"{prefix}{key}"
            if name in merged:
                raise WeightsError(f"weights parts both provide {name!r}")
            merged[name] = tensor
    return merged


def save_safetensors(
    state: Mapping[str, torch.Tensor], target: Path, metadata: dict[str, str] | None = None
) -> str:
    """Write ``state`` atomically (temp file + rename) and return the file's sha256."""
    from safetensors.torch import save_file

    target.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(handle)
    temporary = Path(name)
    try:
        save_file(_unshared(state), temporary, metadata=metadata)
        digest = sha256_of(temporary)
        temporary.replace(target)
    finally:
        temporary.unlink(missing_ok=True)
    return digest


def _unshared(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Contiguous tensors with storage of their own, as safetensors requires."""
    import torch

    seen: set[int] = set()
    result = {}
    for key, tensor in state.items():
        pointer = tensor.untyped_storage().data_ptr()
        if pointer in seen or not tensor.is_contiguous():
            tensor = tensor.clone(memory_format=torch.contiguous_format)
        seen.add(pointer)
        result[key] = tensor
    return result


# --- hf-hub: repos published by `zoo push` --------------------------------------------------


def fetch_hub_repo(spec: str, *, with_weights: bool = True) -> tuple[Card, WeightsFile | None]:
    """Card and verified weights of a repo published by ``zoo push``: ``org/name[@revision]``.

    Both files come from the same commit: the README's snapshot folder names it.
    """
    from huggingface_hub import ModelCard

    from zoo.modelcard import from_hf_model_card

    repo_id, _, revision = spec.partition("@")
    origin = f"hf-hub:{spec}"
    readme = hub_file(repo_id, "README.md", revision or None, card=origin)
    card = from_hf_model_card(ModelCard.load(readme), origin=f"{origin}/README.md")
    if not with_weights:
        return card, None
    commit = readme.parent.name
    weights = hub_file(repo_id, MODEL_FILE, commit, card=origin)
    expected = next((part.sha256 for part in card.weights if part.filename == MODEL_FILE), None)
    verify(weights, expected)
    return card, WeightsFile(weights, "zoo", "")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _write_json(path: Path, data: Any) -> None:
    """Atomic JSON write: a reader sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        json.dump(data, stream)
    Path(name).replace(path)


# --- what is cached -------------------------------------------------------------------------


def cached_hub_repos() -> list[dict[str, Any]]:
    """Repos in huggingface_hub's cache (its own scan), with their size and revisions."""
    from huggingface_hub import CacheNotFound, scan_cache_dir

    try:
        info = scan_cache_dir()
    except CacheNotFound:
        return []
    return [
        {
            "repo": repo.repo_id,
            "size": repo.size_on_disk,
            "files": repo.nb_files,
            "revisions": sorted(revision.commit_hash[:8] for revision in repo.revisions),
            "path": str(repo.repo_path),
        }
        for repo in sorted(info.repos, key=lambda repo: repo.repo_id)
    ]


def cached_conversions() -> list[dict[str, Any]]:
    """Upstream pickles converted into the zoo cache, with their origin and size."""
    folder = zoo_cache_dir() / "converted"
    entries = []
    for path in sorted(folder.glob("*.safetensors")):
        record = _read_json(path.with_suffix(".json")) or {}
        entries.append(
            {
                "file": path.name,
                "size": path.stat().st_size,
                "origin": record.get("origin", "?"),
                "path": str(path),
            }
        )
    return entries
