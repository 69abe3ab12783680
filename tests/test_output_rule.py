"""One rule for every command that writes into a folder, and one meaning of ``--force``.

A folder that is new, empty or holds only zoo's own files is written into; a folder
holding anything else is refused unless ``--force``, which writes zoo's files beside the
user's; a file zoo would write whose name a user's file already has is refused even with
``--force``. zoo knows its own files by the record it keeps in the folder
(:data:`zoo.output.RECORD`). Every case runs in this process; none builds a model before
its refusal.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import zoo
from zoo.cli import main
from zoo.errors import OutputError
from zoo.output import (
    FORCE_MEANING,
    RECORD,
    check_folder,
    output_folder,
    own_files,
    record_files,
    staged_folder,
)
from zoo.weights import bundled_path


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, Path]:
    """An image, a clip of digits and a zoo-layout checkpoint, made once."""
    folder = tmp_path_factory.mktemp("sources")
    rng = np.random.default_rng(0)
    image = folder / "photo.png"
    Image.fromarray(rng.integers(0, 255, (64, 80, 3), dtype=np.uint8)).save(image)
    clip = folder / "digits.gif"
    frames = [Image.fromarray(rng.integers(0, 255, (32, 32), dtype=np.uint8)) for _ in range(6)]
    frames[0].save(clip, save_all=True, append_images=frames[1:], duration=100, loop=0)
    checkpoint = folder / "convlstm.safetensors"
    shutil.copy(bundled_path(zoo.card("convlstm-moving-digits").weights[0].bundled), checkpoint)
    return {"image": image, "clip": clip, "checkpoint": checkpoint}


@dataclass(frozen=True)
class Writer:
    """A command that writes into the folder ``{out}``, and one file it writes there."""

    args: tuple[str, ...]
    writes: str

    def command(self, sources: dict[str, Path], out: Path) -> list[str]:
        values = {"out": str(out), **{key: str(path) for key, path in sources.items()}}
        return [arg.format(**values) for arg in self.args]


WRITERS = {
    "card render": Writer(("card", "render", "c3d", "-o", "{out}/"), "README.md"),
    "convert": Writer(
        ("convert", "convlstm-moving-digits", "--checkpoint", "{checkpoint}", "-o", "{out}"),
        "card.yaml",
    ),
    "export": Writer(("export", "convlstm-moving-digits", "--random", "-o", "{out}"), "model.onnx"),
    "explain": Writer(
        ("explain", "resnet50.tv_in1k", "{image}", "--random", "-o", "{out}"), "gradcam.png"
    ),
    "attack": Writer(
        ("attack", "resnet50.tv_in1k", "{image}", "--random", "-o", "{out}"), "attack.png"
    ),
    "predict": Writer(
        ("predict", "convlstm-moving-digits", "{clip}", "--backend", "torch", "-o", "{out}"),
        "digits.forecast.gif",
    ),
    "new-plugin": Writer(("new-plugin", "my-net", "-o", "{out}"), "pyproject.toml"),
}
CHEAP = ["card render", "convert", "predict", "new-plugin"]  # the others: in their own tests


def zoo_command(*args: str):
    result = CliRunner().invoke(main, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def contents(folder: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def one_error_line(result) -> str:
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


# --- per command ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", WRITERS)
def test_a_folder_holding_a_users_files_is_refused_without_force(name, sources, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")

    line = one_error_line(zoo_command(*WRITERS[name].command(sources, out)))

    assert "is not empty and not a previous zoo output (it holds notes.txt)" in line
    assert "--force" in line
    assert contents(out) == {"notes.txt": b"mine"}


@pytest.mark.parametrize("name", WRITERS)
def test_a_users_file_of_a_name_zoo_writes_is_never_replaced_not_even_with_force(
    name, sources, tmp_path
):
    writer = WRITERS[name]
    out = tmp_path / "out"
    out.mkdir()
    (out / writer.writes).write_text("mine")

    line = one_error_line(zoo_command(*writer.command(sources, out), "--force"))

    assert f"{out / writer.writes} exists and zoo did not write it" in line
    assert "not even with --force" in line
    assert contents(out) == {writer.writes: b"mine"}


@pytest.mark.parametrize("name", CHEAP)
def test_force_writes_beside_the_users_files_and_then_replaces_only_zoos_own(
    name, sources, tmp_path
):
    writer = WRITERS[name]
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")

    first = zoo_command(*writer.command(sources, out), "--force")
    (out / writer.writes).touch()  # a later time: the record still knows it by its content
    again = zoo_command(*writer.command(sources, out), "--force")

    assert first.exit_code == 0, first.output
    assert again.exit_code == 0, again.output
    assert (out / "notes.txt").read_text() == "mine"
    assert writer.writes in own_files(out) and "notes.txt" not in own_files(out)


@pytest.mark.parametrize("name", ["card render", "convert"])
def test_a_previous_output_of_zoo_is_written_again_without_force(name, sources, tmp_path):
    out = tmp_path / "out"
    command = WRITERS[name].command(sources, out)

    assert zoo_command(*command).exit_code == 0
    assert zoo_command(*command).exit_code == 0
    assert WRITERS[name].writes in own_files(out)


@pytest.mark.parametrize("name", WRITERS)
def test_every_writing_command_states_the_one_meaning_of_force(name):
    command = WRITERS[name].args[:2] if name == "card render" else WRITERS[name].args[:1]

    result = zoo_command(*command, "--help")

    assert " ".join(FORCE_MEANING.split()) in " ".join(result.output.split()).lower()


def test_predict_writes_a_gif_per_input_and_numbers_a_repeated_name(sources, tmp_path):
    out = tmp_path / "gifs"
    clip = str(sources["clip"])

    result = zoo_command(
        "predict", "convlstm-moving-digits", clip, clip, "--backend", "torch", "-o", str(out)
    )

    assert result.exit_code == 0, result.output
    assert sorted(contents(out)) == [RECORD, "digits-2.forecast.gif", "digits.forecast.gif"]


# --- the rule itself ---------------------------------------------------------------------------


def test_a_file_zoo_wrote_and_a_user_then_changed_is_the_users(tmp_path):
    (tmp_path / "card.yaml").write_text("zoo's")
    record_files(tmp_path, ["card.yaml"])
    (tmp_path / "card.yaml").write_text("edited by hand")

    with pytest.raises(OutputError, match=r"card\.yaml exists and zoo did not write it"):
        check_folder(tmp_path, ["card.yaml"], force=True)


def test_a_copied_output_is_still_zoos_own_though_its_times_changed(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "card.yaml").write_text("zoo's")
    record_files(tmp_path / "a", ["card.yaml"])
    shutil.copytree(tmp_path / "a", tmp_path / "b")  # copies contents, new times
    os.utime(tmp_path / "b" / "card.yaml", ns=(1, 1))

    check_folder(tmp_path / "b", ["card.yaml"], force=False)

    assert own_files(tmp_path / "b") == {"card.yaml"}


def test_the_record_lists_what_was_written_with_its_hash(tmp_path):
    with output_folder(tmp_path / "out", ["a.txt", "b.txt"], force=False) as folder:
        (folder / "a.txt").write_text("a")  # b.txt is never written

    record = json.loads((tmp_path / "out" / RECORD).read_text())

    assert list(record["files"]) == ["a.txt"]
    assert record["files"]["a.txt"]["sha256"].startswith("ca978112")


def test_work_that_fails_before_writing_leaves_no_folder(tmp_path):
    with pytest.raises(RuntimeError), output_folder(tmp_path / "new" / "out", ["a"], force=False):
        raise RuntimeError("the model could not be built")

    assert list(tmp_path.iterdir()) == []


def test_a_staged_output_that_fails_leaves_the_target_as_it_was(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "notes.txt").write_text("mine")

    with pytest.raises(RuntimeError), staged_folder(target, ["model.onnx"], force=True) as stage:
        (stage / "model.onnx").write_text("half")
        raise RuntimeError("the check failed")

    assert contents(target) == {"notes.txt": b"mine"}
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out"]


def test_a_staged_output_moves_in_beside_the_users_files_with_force(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "notes.txt").write_text("mine")

    with staged_folder(target, ["1/model.onnx"], force=True) as stage:
        (stage / "1").mkdir()
        (stage / "1" / "model.onnx").write_text("graph")

    assert contents(target) == {
        "notes.txt": b"mine",
        "1/model.onnx": b"graph",
        RECORD: (target / RECORD).read_bytes(),
    }
    assert own_files(target) == {"1/model.onnx"}
