"""Small models for the corpus-job tests: built-in architectures at their test size, with
weights files the tests make, and a plugin package that registers them by name (for the
CLI, whose worker processes find models through entry points)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from conftest import install_distribution
from safetensors.torch import save_file

import zoo
from zoo.cards import Card
from zoo.small import small_card

#: Built-in card -> (the small card's name, input fields replaced to keep frames tiny).
MODELS = {
    "c3d-sports1m": ("corpus-c3d", {}),
    "resnet50.tv_in1k": ("corpus-resnet", {"resize": 72, "size": [64, 64]}),
}


def card(builtin: str) -> Card:
    """The built-in card at its architecture's test size, under a name of its own."""
    name, inputs = MODELS[builtin]
    data = small_card(builtin).to_data()
    data["name"] = name
    data["inputs"] = [{**spec, **inputs} for spec in data["inputs"]]
    return Card.from_data(data, origin=f"test card {name}")


def weights(small: Card, folder: Path, seed: int = 0) -> Path:
    """A safetensors file of the small model, drawn from ``seed``."""
    torch.manual_seed(seed)
    model = zoo.load(small, pretrained=False)
    path = folder / f"{small.name}-{seed}.safetensors"
    save_file({key: value.contiguous() for key, value in model.state_dict().items()}, path)
    return path


PLUGIN = '''
"""Small cards of built-in architectures, for the corpus CLI tests."""
import json
import zoo

CARDS = json.loads({cards!r})


@zoo.hookimpl
def zoo_cards():
    return CARDS
'''


def plugin_site(folder: Path) -> Path:
    """A site folder (for PYTHONPATH) holding a plugin that registers every small card."""
    cards: list[dict[str, Any]] = [card(builtin).to_data() for builtin in MODELS]
    source = PLUGIN.format(cards=json.dumps(cards))
    return install_distribution(
        folder,
        "zoo-corpus-cards",
        {"corpus-cards": "zoo_corpus_cards"},
        {"zoo_corpus_cards": source},
    )
