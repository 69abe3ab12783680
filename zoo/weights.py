"""Pretrained weights: fetched through huggingface_hub, checked against the card's sha256.

Downloads, the cache layout, file locking, progress bars and the ``HF_ENDPOINT``,
``HF_HUB_CACHE`` and ``HF_HUB_OFFLINE`` settings are huggingface_hub's own.
"""

from __future__ import annotations

import hashlib
from importlib.resources import files
from pathlib import Path

from zoo.cards import Card
from zoo.errors import WeightsError

CHUNK = 1 << 20


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify(path: Path, expected: str | None) -> None:
    """Raise if ``path`` does not hash to ``expected``, and remove it so it is never used again."""
    if expected is None:
        return
    found = sha256_of(path)
    if found != expected:
        _discard(path)
        raise WeightsError(
            f"sha256 mismatch for {path.name}: expected {expected}, found {found}; "
            "the file was removed from the cache"
        )


def fetch(card: Card) -> tuple[Path, str]:
    """The local path of the card's weights (downloading once) and their key layout."""
    from huggingface_hub import hf_hub_download

    if len(card.weights) != 1:
        raise WeightsError(f"card {card.name!r}: loading {len(card.weights)} weight parts")
    source = card.weights[0]
    if source.bundled is not None:
        path = bundled_path(source.bundled)
        verify(path, source.sha256)
        return path, source.layout
    if source.repo_id is None or source.format != "safetensors":
        raise WeightsError(
            f"card {card.name!r}: weights from {source.url or source.filename} "
            f"({source.format}) must first be converted with `zoo convert`"
        )
    path = Path(hf_hub_download(source.repo_id, source.filename, revision=source.revision))
    verify(path, source.sha256)
    return path, source.layout


def bundled_path(spec: str) -> Path:
    """The file behind ``"package:path"``; bundled weights must be plain files on disk."""
    package, _, relative = spec.partition(":")
    path = Path(str(files(package).joinpath(relative)))
    if not path.is_file():
        raise WeightsError(f"bundled weights {spec!r} not found at {path}")
    return path


def fetch_hub_repo(spec: str) -> tuple[Card, Path]:
    """Card and weights of a Hub repo published by ``zoo push``: ``org/name[@revision]``."""
    from huggingface_hub import ModelCard, hf_hub_download

    repo_id, _, revision = spec.partition("@")
    readme = hf_hub_download(repo_id, "README.md", revision=revision or None)
    metadata = ModelCard.load(readme).data.to_dict()
    if "zoo" not in metadata:
        raise WeightsError(f"hf-hub:{spec}: README.md holds no zoo card (metadata key 'zoo')")
    card = Card.from_data(metadata["zoo"], origin=f"hf-hub:{spec}/README.md")
    weights = Path(hf_hub_download(repo_id, "model.safetensors", revision=revision or None))
    verify(weights, card.weights[0].sha256 if card.weights else None)
    return card, weights


def _discard(path: Path) -> None:
    """Remove a cached file and, for huggingface_hub's symlinked layout, the blob behind it."""
    target = path.resolve()
    path.unlink(missing_ok=True)
    if target != path:
        target.unlink(missing_ok=True)
