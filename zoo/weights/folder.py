"""A zoo folder on disk as a model: what ``zoo convert`` and ``zoo finetune`` write.

A model name holding a path separator (``out/``, ``./models/defects``, ``/data/x``) names
a folder with ``card.yaml`` and ``model.safetensors`` (zoo layout) instead of a registered
card, as timm's ``local-dir:`` and transformers' ``from_pretrained(path)`` do. Registered
names never hold a ``/``, so the two cannot be confused; a plain folder name needs a
``./`` in front of it. The card is validated like any other and the weights are read
through the same strict path as a card's own.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from zoo.errors import WeightsError
from zoo.weights.files import MODEL_FILE
from zoo.weights.hub import HF_HUB_PREFIX

if TYPE_CHECKING:
    from zoo.cards import Card

CARD_FILE = "card.yaml"


def is_folder_name(name: object) -> bool:
    """Whether a model name names a folder on disk: it holds a path separator."""
    if not isinstance(name, str) or name.startswith(HF_HUB_PREFIX):
        return False
    return "/" in name or os.sep in name


def read_folder(name: str) -> tuple[Card, Path]:
    """The validated card of a zoo folder and the path of its weights file."""
    from zoo.cards import Card

    folder = Path(name)
    expected = (
        f"a zoo folder holding {CARD_FILE} and {MODEL_FILE} (zoo convert and zoo finetune "
        "write one)"
    )
    if not folder.is_dir():
        raise WeightsError(f"{name}: no such folder; a model name with a '/' names {expected}")
    missing = [file for file in (CARD_FILE, MODEL_FILE) if not (folder / file).is_file()]
    if missing:
        raise WeightsError(f"{name}: {' and '.join(missing)} missing; expected {expected}")
    return Card.from_yaml(folder / CARD_FILE), folder / MODEL_FILE


def folder_source(
    name: object, weights: str | os.PathLike[str] | None, pretrained: bool
) -> tuple[Card, str | os.PathLike[str] | None] | None:
    """For a folder name: its card, and the weights to load (the folder's own unless a file
    was given or random weights were asked for). None for any other name."""
    if not is_folder_name(name):
        return None
    card, own = read_folder(str(name))
    return card, weights if weights is not None or not pretrained else own
