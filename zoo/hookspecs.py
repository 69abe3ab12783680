"""The two hooks a zoo plugin implements.

A plugin is any importable module (or object) registered under the ``zoo``
entry-point group. It must import without importing torch: it only *describes*
architectures and cards, and names its heavy code by import string.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib.resources.abc import Traversable
from os import PathLike
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from zoo.architecture import Architecture
    from zoo.cards import Card

PROJECT = "zoo"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def zoo_architectures() -> Iterable[Architecture]:
    """Return the architectures this plugin provides.

    Each :class:`zoo.Architecture` names its builder by import string, so torch
    and the model code are imported only when a model is built.
    """
    raise NotImplementedError  # a specification: pluggy calls the plugins' implementations


@hookspec
def zoo_cards() -> Iterable[Card | PathLike[str] | Traversable | dict]:
    """Return this plugin's model cards: YAML files, parsed dicts or :class:`zoo.Card` objects.

    Files are validated by the core one by one, so one invalid card is reported
    with its file and field path and the plugin's other cards still register.
    """
    raise NotImplementedError  # a specification: pluggy calls the plugins' implementations
