"""Stopping and resuming: the same weights as an uninterrupted run, and never a checkpoint
that looks complete and is not. And two processes under torchrun train what one does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import safetensors.torch
import torch
from finetune_zoo import colour_images, finetune_registry, motion_videos, parent_folder

from zoo.errors import FinetuneError
from zoo.finetuning import checkpoint, finetune
from zoo.output import RECORD
from zoo.weights import read_state_dict

EPOCHS = 3
RECIPE = {
    "epochs": EPOCHS,
    "lr": 3e-3,
    "batch_size": 4,
    "workers": 0,
    "val_split": 0.25,
    "warmup_epochs": 1,
    "pretrained": False,
}


class Stop(Exception):
    """Stands for the run being stopped between two epochs."""


@pytest.fixture(scope="module")
def colours(tmp_path_factory) -> Path:
    return colour_images(tmp_path_factory.mktemp("few") / "colours", per_class=8, seed=3)


def run(colours: Path, out: Path, **extra):
    options = {**RECIPE, **extra}
    return finetune("tiny-frame", colours, out, registry=finetune_registry(), **options)


def stop_after(epoch: int):
    def on_epoch(record) -> None:
        if record.epoch == epoch:
            raise Stop

    return on_epoch


def test_a_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(colours, tmp_path):
    whole = run(colours, tmp_path / "whole")
    with pytest.raises(Stop):
        run(colours, tmp_path / "stopped", on_epoch=stop_after(1))
    assert not (tmp_path / "stopped" / "card.yaml").exists()  # not a model yet
    (tmp_path / "stopped" / RECORD).unlink()  # as if killed before the checkpoint's record

    resumed = run(colours, tmp_path / "stopped", resume=True)

    assert resumed.resumed_from == 1
    expected = read_state_dict(tmp_path / "whole" / "model.safetensors")
    found = read_state_dict(tmp_path / "stopped" / "model.safetensors")
    assert expected.keys() == found.keys()
    assert all(torch.equal(expected[key], found[key]) for key in expected)
    for before, after in zip(whole.history, resumed.history, strict=True):
        assert (before.train_loss, before.val_loss) == (after.train_loss, after.val_loss)


def test_a_resumed_run_must_keep_its_recipe(colours, tmp_path):
    with pytest.raises(Stop):
        run(colours, tmp_path / "out", on_epoch=stop_after(1))

    with pytest.raises(FinetuneError, match=r"lr 0\.003 -> 0\.01"):
        run(colours, tmp_path / "out", resume=True, lr=1e-2)


def test_a_checkpoint_cut_short_leaves_the_previous_one_whole(colours, tmp_path, monkeypatch):
    """The writer dies halfway through epoch 2's checkpoint: epoch 1's is still the one."""
    out = tmp_path / "out"
    real = safetensors.torch.save_file

    def dies_halfway(tensors, filename, metadata=None):
        real(tensors, filename, metadata=metadata)
        if '"epoch": 2' in (metadata or {}).get(checkpoint.META, ""):
            data = Path(filename).read_bytes()
            Path(filename).write_bytes(data[: len(data) // 2])
            raise KeyboardInterrupt  # killed while writing

    monkeypatch.setattr(safetensors.torch, "save_file", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        run(colours, out)

    left = sorted(path.name for path in out.iterdir())
    assert [name for name in left if "checkpoint" in name] == [checkpoint.BEST, checkpoint.LAST]
    monkeypatch.setattr(safetensors.torch, "save_file", real)
    assert checkpoint.load(out / checkpoint.LAST).meta["epoch"] == 1


def test_two_processes_under_torchrun_train_what_one_process_trains(tmp_path):
    """Global batch 8: one process at 8, two at 4 each, gloo on this CPU. C3D, whose every
    weight has a real gradient: Adam turns a gradient that is only rounding noise (a ViT's
    key bias, which softmax ignores) into full steps, differently in each reduction order."""
    data = motion_videos(tmp_path / "motion", pairs=8, seed=5)
    parent = parent_folder(finetune_registry(), "tiny-c3d", tmp_path / "parent")
    recipe = {"epochs": 2, "lr": 3e-3, "workers": 0, "val_split": 0.25, "hflip": 0.0}
    one = finetune(f"{parent}/", data, tmp_path / "one", batch_size=8, device="cpu", **recipe)
    flags = [f"--{key.replace('_', '-')}={value}" for key, value in recipe.items()]
    two = subprocess.run(
        [
            *(sys.executable, "-m", "torch.distributed.run", "--standalone"),
            *("--nproc-per-node", "2", "-m", "zoo", "finetune", f"{parent}/", str(data)),
            *("-o", str(tmp_path / "two"), "--batch-size", "4", "--device", "cpu", *flags),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=300,
    )

    assert two.returncode == 0, two.stderr[-3000:]
    assert two.stdout.count("epoch 1/2") == two.stdout.count("validation top-1") == 1  # rank 0
    expected = read_state_dict(tmp_path / "one" / "model.safetensors")
    found = read_state_dict(tmp_path / "two" / "model.safetensors")
    assert expected.keys() == found.keys()
    for key in expected:
        torch.testing.assert_close(found[key], expected[key], rtol=1e-4, atol=1e-6)
    card = zoo_card(tmp_path / "two")
    assert (card.training["processes"], card.training["global_batch_size"]) == (2, 8)
    assert (one.processes, one.global_batch_size) == (1, 8)


def zoo_card(folder: Path):
    from zoo.cards import Card

    return Card.from_yaml(folder / "card.yaml")


def test_bfloat16_autocast_trains_on_the_cpu(colours, tmp_path):
    report = run(colours, tmp_path / "out", epochs=1, precision="bf16", device="cpu")

    assert zoo_card(tmp_path / "out").training["precision"] == "bf16"
    assert report.history[0].train_loss > 0
