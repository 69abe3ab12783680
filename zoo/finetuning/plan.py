"""Everything decided before the first step: the parent, the data, the output folder.

Every check that can fail on the user's input runs here, before a model is built or a
file is written, so a refused run leaves nothing behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from os import PathLike
from pathlib import Path

from zoo.architecture import Architecture
from zoo.cards import Card
from zoo.errors import FinetuneError, OutputError
from zoo.finetuning import checkpoint, data, distributed
from zoo.finetuning.options import FinetuneOptions
from zoo.finetuning.target import Source, check_supported
from zoo.output import check_folder, output_errors, record_files
from zoo.publish import HASH_FILE, README_FILE
from zoo.registry import Registry
from zoo.weights import HF_HUB_PREFIX, fetch_hub_repo
from zoo.weights.files import MODEL_FILE
from zoo.weights.folder import CARD_FILE, is_folder_name, read_folder

FEATURE_FILES = ("features-train.safetensors", "features-val.safetensors")
HISTORY = "history.json"
#: The files a run writes; ``--force`` replaces these and nothing else.
RUN_FILES = (
    CARD_FILE,
    MODEL_FILE,
    HASH_FILE,
    README_FILE,
    HISTORY,
    checkpoint.BEST,
    checkpoint.LAST,
    *FEATURE_FILES,
)


@dataclass
class DataPlan:
    """The classes, the training and validation files, and what could not be read."""

    classes: list[str]
    train: list[data.Sample]
    val: list[data.Sample]
    unreadable: list[data.Unreadable]
    dataset: str
    split: str

    def labels(self, samples: list[data.Sample]) -> list[int]:
        index = {name: i for i, name in enumerate(self.classes)}
        return [index[sample.label] for sample in samples]


def parent_card(source: Source, registry: Registry) -> tuple[Card, Architecture]:
    """The parent's card (registered, ``hf-hub:``, a folder, or a Card) and architecture,
    refused at once unless fine-tuning can train it."""
    name = source.name
    if isinstance(name, Card):
        card = name
    elif name.startswith(HF_HUB_PREFIX):
        card = fetch_hub_repo(name.removeprefix(HF_HUB_PREFIX), with_weights=False)[0]
    elif is_folder_name(name):
        card = read_folder(name)[0]
    else:
        card = registry.card(name)
    architecture = registry.architecture(card.architecture)
    check_supported(card, architecture, registry)
    return card, architecture


def check_output(folder: Path, *, resume: bool, force: bool) -> None:
    """The one output rule (:mod:`zoo.output`) for the files a run writes; and an earlier
    run in the folder is continued (``resume``) or replaced (``force``), never restarted
    by accident. ``resume`` takes the folder as the run's own (a kill may fall between a
    checkpoint and its record; the checkpoint's fingerprint is checked instead)."""
    check_folder(folder, RUN_FILES, force=force or resume, known=RUN_FILES if resume else ())
    last = folder / checkpoint.LAST
    if resume and not last.is_file():
        raise FinetuneError(
            f"nothing to resume in {folder}: it holds no {checkpoint.LAST} (a run writes it "
            "at the end of each epoch)"
        )
    if not (resume or force) and last.is_file():
        raise OutputError(
            f"{folder} holds an earlier run ({checkpoint.LAST}); pass --resume (resume=True) "
            "to continue it, or --force (force=True) to start again, replacing its files"
        )


def record_run_files(folder: Path) -> None:
    """Mark the run's files written so far as zoo's (rank 0), so a rerun knows them."""
    if distributed.is_main():
        with output_errors(folder):
            record_files(folder, RUN_FILES)


def clear_stale_card(folder: Path) -> None:
    """Under ``force``, an earlier run's card goes first: until this run writes its own, the
    folder must not look like a finished model whose weights are being replaced."""
    if distributed.is_main():
        with output_errors(folder):
            (folder / CARD_FILE).unlink(missing_ok=True)


def plan_data(
    source: str | PathLike[str], val: str | PathLike[str] | None, options: FinetuneOptions
) -> DataPlan:
    """Read, split and probe the data; refuse what cannot train a classifier."""
    samples = data.read_samples(source)
    classes = data.classes_of(samples, str(source))
    if val is not None:
        held = data.read_samples(val)
        data.check_val_labels(classes, held, str(val))
        train, split = samples, Path(val).name
    else:
        train, held = data.split(samples, options.val_split, options.seed)
        split = f"held-out {options.val_split:.0%} of each class (seed {options.seed})"
    if not held:
        raise FinetuneError(
            f"{source}: no file is left for validation (each class has one file); give "
            "validation data (--val) or more files"
        )
    total = len(train) + len(held)
    train, held, unreadable = _readable(train, held)
    data.check_unreadable(unreadable, total, options.max_unreadable)
    lost = sorted(set(classes) - {sample.label for sample in train})
    if lost:
        raise FinetuneError(f"no readable training file is left for class(es) {', '.join(lost)}")
    dataset = Path(source).name if Path(source).is_dir() else Path(source).stem
    return DataPlan(classes, train, held, unreadable, dataset, split)


def _readable(
    train: list[data.Sample], val: list[data.Sample]
) -> tuple[list[data.Sample], list[data.Sample], list[data.Unreadable]]:
    """Each process probes its share of the files; every process gets the whole verdict."""
    everything = [*train, *val]
    mine = distributed.shard(range(len(everything)))
    verdicts = distributed.gather(
        list(zip(mine, data.probe([everything[i] for i in mine]), strict=True))
    )
    bad = {index: verdict for index, verdict in verdicts if verdict is not None}
    keep_train = [sample for i, sample in enumerate(train) if i not in bad]
    keep_val = [sample for i, sample in enumerate(val, start=len(train)) if i not in bad]
    return keep_train, keep_val, [bad[index] for index in sorted(bad)]
