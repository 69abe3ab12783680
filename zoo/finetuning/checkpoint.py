"""Checkpoints as one safetensors file each: tensors in the file, everything else as JSON.

A checkpoint holds the trained weights, the optimizer's moments and step counts, the
learning-rate schedule, the loss scaler, the random number generators and the progress
(epoch, history, best so far), so ``--resume`` continues exactly where the run stopped.
It is one file written to a temporary name and renamed into place, so a run killed at
any moment leaves the previous checkpoint or the new one, never part of one; nothing is
unpickled to read it back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from torch import Tensor

from zoo.errors import FinetuneError
from zoo.weights import save_safetensors

LAST = "checkpoint-last.safetensors"
BEST = "checkpoint-best.safetensors"
META = "zoo_checkpoint"
FORMAT = 1


@dataclass
class Checkpoint:
    """The tensors by group (``model``, ``optimizer``, ``rng``) and the JSON part."""

    model: dict[str, Tensor]
    optimizer: dict[str, Tensor]
    rng: dict[str, Tensor]
    meta: dict[str, Any]


def save(path: Path, checkpoint: Checkpoint) -> None:
    tensors = {
        f"{group}/{key}": tensor.detach().cpu()
        for group in ("model", "optimizer", "rng")
        for key, tensor in getattr(checkpoint, group).items()
    }
    meta = json.dumps({"format": FORMAT, **checkpoint.meta})
    save_safetensors(tensors, path, metadata={META: meta})


def load(path: Path) -> Checkpoint:
    try:
        with safe_open(str(path), "pt") as handle:
            meta = json.loads((handle.metadata() or {})[META])
            groups: dict[str, dict[str, Tensor]] = {"model": {}, "optimizer": {}, "rng": {}}
            for name in handle.keys():  # noqa: SIM118 (safe_open is not a mapping)
                group, _, key = name.partition("/")
                groups[group][key] = handle.get_tensor(name)
    except (SafetensorError, OSError, KeyError, ValueError) as error:
        raise FinetuneError(
            f"{path} is not a zoo fine-tuning checkpoint ({type(error).__name__}: {error})"
        ) from None
    return Checkpoint(groups["model"], groups["optimizer"], groups["rng"], meta)


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, Tensor], list]:
    """The optimizer's per-parameter state as flat tensors, and its groups as JSON data."""
    state = optimizer.state_dict()
    tensors = {
        f"{index}.{key}": value if isinstance(value, Tensor) else torch.tensor(value)
        for index, entries in state["state"].items()
        for key, value in entries.items()
    }
    return tensors, state["param_groups"]


def restore_optimizer(
    optimizer: torch.optim.Optimizer, tensors: dict[str, Tensor], groups: list
) -> None:
    state: dict[int, dict[str, Tensor]] = {}
    for name, tensor in tensors.items():
        index, _, key = name.partition(".")
        state.setdefault(int(index), {})[key] = tensor
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def rng_tensors() -> dict[str, Tensor]:
    """The global generators dropout and initialisations draw from (CPU and every GPU)."""
    tensors = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        tensors |= {f"cuda.{i}": state for i, state in enumerate(torch.cuda.get_rng_state_all())}
    return tensors


def restore_rng(tensors: dict[str, Tensor]) -> None:
    torch.set_rng_state(tensors["cpu"])
    devices = sorted((int(key.partition(".")[2]), key) for key in tensors if key != "cpu")
    cuda = [tensors[key] for _, key in devices]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)


def check_same_run(folder: Path, before: dict, now: dict) -> None:
    """A resumed run must be the same run: the same recipe, parent, classes and files."""
    for key in now:
        if before.get(key) == now[key]:
            continue
        if key == "recipe":
            changed = [f for f in now[key] if before[key].get(f) != now[key][f]]
            what = ", ".join(f"{f} {before[key].get(f)!r} -> {now[key][f]!r}" for f in changed)
        else:
            what = f"its {key.replace('_', ' ')} differ"
        raise FinetuneError(
            f"cannot resume the run in {folder} with different settings ({what}); resume with "
            "the same ones, or start a new run (another folder, or --force)"
        )
