"""A card's weights as local, verified safetensors files, fetched and converted once.

Each weights part of a card is one of: a Hub file (``repo_id``), a plain URL
(``url``, upstream pickles only), a file shipped in a package (``bundled``) or
another zoo model's weights (``model``), fetched as that model's card says.
Upstream pickles (``format: pickle``) are fetched once, checked, read only with
``torch.load(weights_only=True)``, converted by the architecture's converter
and kept as safetensors in the zoo cache; later loads read only that file.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.architecture import Architecture
from zoo.cards import Card, Weights
from zoo.errors import WeightsError
from zoo.registry import Registry, current_registry
from zoo.weights.cache import area_folder, cache_folder, model_entry, read_json, write_json
from zoo.weights.files import (
    ModelWeights,
    WeightsFile,
    WeightsPart,
    convert_state_dict,
    read_checkpoint,
    save_safetensors,
)
from zoo.weights.hub import hub_errors, hub_file, unreachable
from zoo.weights.integrity import (
    announced_hash,
    check_downloaded,
    sha256_of,
    trust_digest,
    trust_on_first_use,
    verify,
)

if TYPE_CHECKING:
    import torch
    from pydantic import BaseModel


def fetch(
    card: Card,
    architecture: Architecture,
    registry: Registry | None = None,
    *,
    plugin_version: str | None = None,
    through: tuple[str, ...] = (),
) -> list[WeightsPart]:
    """Local, verified weights for every part of ``card`` (downloading once).

    ``plugin_version`` (the version of the plugin providing the architecture)
    is part of a converted pickle's cache key, so a fixed converter is never
    shadowed by a conversion the old one made. A part that names another
    ``model`` is that model's own fetch, looked up in ``registry`` (default:
    :func:`~zoo.registry.current_registry`); ``through`` is the chain of cards
    that led here, so a cycle is an error, not a hang.
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
        else _fetch_part(card, part, architecture, config, plugin_version)
        for part in card.weights
    ]


def _fetch_model_part(part: Weights, registry: Registry, chain: tuple[str, ...]) -> ModelWeights:
    """The weights of the model a part names, fetched as that model's own card says."""
    source = registry.card(part.model or "")
    if source.name in chain:
        cycle = " -> ".join((*chain, source.name))
        raise WeightsError(f"weights parts name each other in a cycle: {cycle}")
    architecture = registry.architecture(source.architecture)
    version = registry.plugin_version(architecture)
    try:
        parts = fetch(source, architecture, registry, plugin_version=version, through=chain)
    except WeightsError as error:
        raise WeightsError(
            f"{chain[-1]}: its weights start from {source.name}'s: {error}"
        ) from None
    return ModelWeights(source, architecture, tuple(parts), part.layout, part.prefix)


def _fetch_part(
    card: Card,
    part: Weights,
    architecture: Architecture,
    config: BaseModel,
    plugin_version: str | None,
) -> WeightsFile:
    if part.format == "pickle":
        path = converted_pickle(card, part, architecture, config, plugin_version)
        return WeightsFile(path, "zoo", part.prefix)
    if part.bundled is not None:
        path = verified_bundled(part, card.name)
    elif part.repo_id is not None:
        path = hub_file(
            part.repo_id, part.filename, part.revision, card=card.name, sha256=part.sha256
        )
    else:
        raise WeightsError(
            f"card {card.name!r}: safetensors from a plain URL ({part.url}) are not supported; "
            "publish them to a Hub repo (repo_id) or mark an upstream pickle with format: pickle"
        )
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


def verified_bundled(part: Weights, card: str) -> Path:
    """A bundled file, checked against the card's sha256 or its first-use record."""
    path = bundled_path(part.bundled or "")
    if part.sha256 is not None:
        verify(path, part.sha256, removable=False)
    else:
        trust_on_first_use(path, origin=origin_name(part), card=card)
    return path


def source_sha256(card: Card, part: Weights, fetched: WeightsFile) -> str:
    """The sha256 of the file a part's card entry names, as a maintainer would pin it."""
    if part.format == "pickle":
        record = read_json(fetched.path.with_suffix(".json")) or {}
        return record.get("origin_sha256") or "unknown"
    return file_sha256(fetched.path)


def file_sha256(path: Path) -> str:
    """A verified file's sha256: the Hub's LFS hash it was checked against, else computed."""
    announced = announced_hash(path)
    if announced is not None and announced[0] == "sha256":
        return announced[1]
    return sha256_of(path)


# --- upstream pickles -----------------------------------------------------------------------


def converted_pickle(
    card: Card,
    part: Weights,
    architecture: Architecture,
    config: BaseModel,
    plugin_version: str | None = None,
) -> Path:
    """The zoo-layout safetensors made from an upstream pickle, converting it on first use.

    The cache key covers everything the result depends on: the origin, its
    expected hash, the layout, the converter (its import string, its plugin's
    version and its module's source) and the architecture's config. A lock makes
    concurrent processes convert once; the file appears by rename, and the lock
    file goes when the conversion ends, whether it succeeded or not.
    """
    key = _origin_key(part, architecture, config, plugin_version)
    target = area_folder("converted") / f"{model_entry(card.name, key)}.safetensors"
    record = target.with_suffix(".json")
    if _usable(target, record):
        return target
    from huggingface_hub.utils import WeakFileLock

    cache_folder("converted", f"convert the weights of {card.name}")
    lock = target.with_suffix(".lock")
    try:
        with WeakFileLock(lock):
            if not _usable(target, record):
                _convert_into(target, record, card, part, architecture, config)
    finally:
        lock.unlink(missing_ok=True)
    return target


def _convert_into(
    target: Path,
    record: Path,
    card: Card,
    part: Weights,
    architecture: Architecture,
    config: BaseModel,
) -> None:
    state, origin_sha256 = _convert_origin(card, part, architecture, config)
    digest = save_safetensors(state, target, metadata={"origin": origin_name(part)})
    write_json(
        record,
        {
            "origin": origin_name(part),
            "origin_sha256": origin_sha256,
            "card": card.name,
            "layout": part.layout,
            "architecture": architecture.name,
            "sha256": digest,
        },
    )


def _usable(target: Path, record: Path) -> bool:
    """The converted file exists and still hashes as written (marker-cached after once)."""
    info = read_json(record)
    if not target.is_file() or not isinstance(info, dict) or "sha256" not in info:
        return False
    verify(target, info["sha256"], source=record.name)
    return True


def _origin_key(
    part: Weights, architecture: Architecture, config: BaseModel, plugin_version: str | None
) -> str:
    description = {
        "origin": origin_name(part),
        "sha256": part.sha256,
        "layout": part.layout,
        "architecture": architecture.name,
        "converter": converter_fingerprint(architecture, part.layout, plugin_version),
        "config": config.model_dump(mode="json"),
    }
    return hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()


def converter_fingerprint(
    architecture: Architecture, layout: str, plugin_version: str | None
) -> dict[str, Any]:
    """What identifies the code that converts ``layout``: import string, version, source."""
    spec = architecture.converters.get(layout)
    if spec is None:
        return {"spec": "zoo"}
    module = importlib.util.find_spec(spec.partition(":")[0])
    origin = Path(module.origin) if module is not None and module.origin else None
    source = sha256_of(origin) if origin is not None and origin.is_file() else None
    return {"spec": spec, "plugin_version": plugin_version, "source_sha256": source}


def origin_name(part: Weights) -> str:
    if part.model is not None:
        return f"model:{part.model}"
    if part.url is not None:
        return part.url
    if part.repo_id is not None:
        return f"hf://{part.repo_id}/{part.filename}@{part.revision}"
    return f"bundled:{part.bundled}"


def _convert_origin(
    card: Card, part: Weights, architecture: Architecture, config: BaseModel
) -> tuple[dict[str, torch.Tensor], str]:
    """Fetch the pickle, check it, unpickle it safely, convert it; also return its sha256."""
    if part.url is not None:
        with _downloaded_url(part.url, card.name) as path:
            digest = sha256_of(path)
            check_downloaded(
                digest,
                origin=part.url,
                card=card.name,
                sha256=part.sha256,
                url_prefix=part.url_hash_prefix,
            )
            if part.verification() == "first-use":
                trust_digest(digest, origin=part.url, card=card.name)
            state = read_checkpoint(path)
    else:
        if part.repo_id is not None:
            path = hub_file(
                part.repo_id, part.filename, part.revision, card=card.name, sha256=part.sha256
            )
        else:
            path = verified_bundled(part, card.name)
        digest = file_sha256(path)
        state = read_checkpoint(path)
    origin = origin_name(part)
    return convert_state_dict(architecture, config, state, part.layout, origin=origin), digest


@contextmanager
def _downloaded_url(url: str, card: str) -> Iterator[Path]:
    """Download ``url`` to a temp file with huggingface_hub's HTTP client (progress, resume)."""
    from huggingface_hub import constants
    from huggingface_hub.file_download import http_get

    if constants.is_offline_mode():
        raise WeightsError(unreachable(card, url, WeightsError("offline")))
    folder = cache_folder("downloads", f"download {url}")
    handle, name = tempfile.mkstemp(dir=folder, suffix=".incomplete")
    path = Path(name)
    try:
        with os.fdopen(handle, "wb") as stream, hub_errors(url, card, url):
            http_get(url, stream, displayed_filename=url.rsplit("/", 1)[-1])
        yield path
    finally:
        path.unlink(missing_ok=True)
