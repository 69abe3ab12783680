"""Fine-tuning any zoo classifier on a folder of labelled images or videos: ``zoo.finetune``.

The layers, each usable alone: :mod:`~zoo.finetuning.data` (class folders, manifests,
the split, unreadable files), :mod:`~zoo.finetuning.augment` (training augmentation from
the card), :mod:`~zoo.finetuning.target` (the parent's weights and a new classifier),
:mod:`~zoo.finetuning.features` (linear mode's pooled features, computed once),
:mod:`~zoo.finetuning.loop` (the optimizer step and the epoch),
:mod:`~zoo.finetuning.checkpoint`, :mod:`~zoo.finetuning.distributed` (torchrun) and
:mod:`~zoo.finetuning.run`, the recipe in one page. The options and the report import
no torch (``zoo finetune --help`` reads them); :func:`finetune` does.
"""

from __future__ import annotations

from typing import Any

from zoo.finetuning.options import FinetuneOptions
from zoo.finetuning.report import EpochRecord, FinetuneReport, Unreadable

__all__ = ["EpochRecord", "FinetuneOptions", "FinetuneReport", "Unreadable", "finetune"]


def finetune(*args: Any, **kwargs: Any) -> FinetuneReport:
    """:func:`zoo.finetuning.run.finetune`, imported (with torch) when first called."""
    from zoo.finetuning.run import finetune as run

    return run(*args, **kwargs)
