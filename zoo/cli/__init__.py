"""The ``zoo`` command line.

Listing commands (list, info, plugins, card) read cards and plugin metadata
only: they never import torch. Commands that touch weights or models import it
inside, when they run.
"""

from __future__ import annotations

from zoo.cli import (  # noqa: F401  (each registers its commands)
    cards,
    corpus,
    export,
    finetune,
    interpret,
    listing,
    predict,
    scaffold,
    weights,
)
from zoo.cli.base import main

__all__ = ["main"]
