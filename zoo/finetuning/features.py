"""Linear mode's one expensive step: inputs -> pooled features, computed once and cached.

:func:`pooled_features` is the only place the frozen backbone runs. Each file goes through
the predictor's test-time pre-processing and gives one row per clip (or per frame an image
model sees of a video), each row the plugin's pooled features (``FeatureHints.pooled``,
what the classifier reads). The result is kept in the output folder
(``features-<split>.safetensors``) under a key of everything it depends on, so
``--resume`` and a second run into the same folder compute nothing again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from torch import Tensor, nn
from tqdm.auto import tqdm

from zoo.architecture import Architecture
from zoo.cards import Card
from zoo.finetuning import distributed
from zoo.finetuning.report import Unreadable
from zoo.finetuning.rows import PreparedFiles, Runner, run_rows
from zoo.output import record_files
from zoo.weights import save_safetensors

KEY = "zoo_features_key"
UNREADABLE = "zoo_unreadable"


@dataclass
class PooledRows:
    """Feature rows ``(R, D)``, the file each row belongs to ``(R,)``, and unreadable files."""

    features: Tensor
    owners: Tensor
    unreadable: list[Unreadable]


def pooled_features(
    model: nn.Module,
    card: Card,
    architecture: Architecture,
    paths: Sequence[Path],
    runner: Runner,
) -> PooledRows:
    """The pooled features of every row of every file (in eval mode, no gradients).

    Under torchrun each process computes a share of the files and every process gets
    all the rows, in file order.
    """
    pooled = architecture.features.resolve_pooled()
    files = PreparedFiles(card, architecture, paths)
    mine = distributed.shard(range(len(paths)))
    model.eval()
    rows = run_rows(lambda batch: pooled(model, batch), files, mine, runner)
    shown = None if distributed.is_main() else True
    bar = tqdm(rows, total=len(mine), desc="features", unit="file", leave=False, disable=shown)
    found = list(bar)
    gathered = sorted(distributed.gather(found), key=lambda pair: pair[0])
    features, owners, unreadable = [], [], []
    for index, result in gathered:
        if isinstance(result, Unreadable):
            unreadable.append(result)
            continue
        features.append(result)
        owners.append(torch.full((len(result),), index, dtype=torch.int64))
    if not features:
        return PooledRows(torch.empty(0, 0), torch.empty(0, dtype=torch.int64), unreadable)
    return PooledRows(torch.cat(features), torch.cat(owners), unreadable)


def cached_pooled_features(
    folder: Path,
    split: str,
    facts: dict,
    compute: Callable[[], PooledRows],
) -> PooledRows:
    """``compute()``'s rows, read from ``folder`` when an earlier run made them from the same
    ``facts`` (files, model, weights, pre-processing); written there (rank 0) otherwise."""
    path = folder / f"features-{split}.safetensors"
    key = hashlib.sha256(json.dumps(facts, sort_keys=True, default=str).encode()).hexdigest()
    if path.is_file():
        with safe_open(str(path), "pt") as handle:
            metadata = handle.metadata() or {}
            if metadata.get(KEY) == key:
                return PooledRows(
                    handle.get_tensor("features"),
                    handle.get_tensor("owners"),
                    [Unreadable(**item) for item in json.loads(metadata[UNREADABLE])],
                )
    rows = compute()
    if distributed.is_main():
        unreadable = json.dumps([item.model_dump() for item in rows.unreadable])
        save_safetensors(
            {"features": rows.features, "owners": rows.owners},
            path,
            metadata={KEY: key, UNREADABLE: unreadable},
        )
        record_files(folder, [path.name])  # zoo's, so a rerun may replace it
    return rows


def file_facts(paths: Sequence[Path]) -> list[tuple[str, int, int]]:
    """What a cache of these files depends on: each file's path, size and modification time."""
    facts = []
    for path in paths:
        stat = path.stat()
        facts.append((str(path.resolve()), stat.st_size, stat.st_mtime_ns))
    return facts
