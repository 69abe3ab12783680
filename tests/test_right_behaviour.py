"""Behaviour that used to be wrong or silent: validation as the registry does it, folders
that are not ours, plugin selection that matches nothing, dtypes, train and eval modes."""

from __future__ import annotations

import os
import stat

import pytest
import torch
import yaml
from click.testing import CliRunner
from conftest import card_data as toy_card
from conftest import cards_plugin
from safetensors.torch import save_file

import zoo
from zoo import publish
from zoo.cli import main
from zoo.errors import DisabledPluginError, OutputError
from zoo.output import RECORD
from zoo.registry import Registry, reset_default_registry

# --- zoo card validate checks what the registry checks -------------------------------------------


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"architecture": "no-such-arch"}, "unknown architecture 'no-such-arch'"),
        ({"config": {"frames": 16, "depth": 3}}, "config.depth: Extra inputs are not permitted"),
        ({"config": {"frames": 8}}, "config: Value error, a 8x112x112 clip pools"),
    ],
)
def test_card_validate_refuses_what_the_registry_refuses_with_its_message(
    tmp_path, change, problem
):
    data = {**zoo.card("c3d").to_data(), "name": "c3d-edited", "aliases": [], **change}
    path = tmp_path / "card.yaml"
    path.write_text(yaml.safe_dump(data))

    result = CliRunner().invoke(main, ["card", "validate", str(path)])
    with pytest.warns(zoo.ZooPluginWarning) as caught:
        Registry.from_plugins(
            {
                "c3d": zoo.default_registry().manager.get_plugin("c3d"),
                "cards": cards_plugin("cards", data),
            }
        )

    assert result.exit_code == 1
    assert problem in result.stdout
    registry_message = str(caught[0].message).split("invalid card: ", 1)[1]
    assert f"invalid: {path}: {registry_message}" in result.stdout


# --- zoo convert and the user's folders ----------------------------------------------------------


@pytest.fixture
def toy_checkpoint(toy_plugin, tmp_path, monkeypatch):
    """The toy architecture with one card and a zoo-layout checkpoint for it."""
    registry = Registry.from_plugins({"toy": toy_plugin, "cards": cards_plugin("c", toy_card())})
    monkeypatch.setattr("zoo.registry._default", registry)
    model = zoo.build("toy", registry=registry)
    checkpoint = tmp_path / "toy.safetensors"
    save_file(model.state_dict(), checkpoint)
    return checkpoint


def convert(checkpoint, output, *extra):
    args = ["convert", "toy-small", "--checkpoint", str(checkpoint), "-o", str(output), *extra]
    return CliRunner().invoke(main, args)


def test_convert_refuses_a_folder_holding_the_users_files(toy_checkpoint, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "README.md").write_text("my notes")
    (folder / "notes.txt").write_text("more notes")

    result = convert(toy_checkpoint, folder)

    assert result.exit_code == 1
    assert f"{folder / 'README.md'} exists and zoo did not write it" in result.stderr
    assert "not even with --force" in result.stderr
    assert (folder / "README.md").read_text() == "my notes"
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "notes.txt"]


def test_convert_with_force_writes_its_files_and_lists_only_those(toy_checkpoint, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("more notes")

    result = convert(toy_checkpoint, folder, "--force")

    assert result.exit_code == 0, result.output
    written = sorted(line.removeprefix("wrote ") for line in result.stdout.splitlines())
    assert written == sorted(str(folder / name) for name in publish.FOLDER_FILES)
    assert (folder / "notes.txt").read_text() == "more notes"


def test_convert_again_into_its_own_output_needs_no_force(toy_checkpoint, tmp_path):
    folder = tmp_path / "out"
    assert convert(toy_checkpoint, folder).exit_code == 0

    again = convert(toy_checkpoint, folder)

    assert again.exit_code == 0, again.output
    hidden = [path.name for path in folder.glob(".*")]
    assert hidden == [RECORD]  # zoo's record of its files; no temporary file left beside them


def test_convert_refuses_an_output_that_is_a_file(toy_checkpoint, tmp_path):
    target = tmp_path / "file"
    target.write_text("x")

    with pytest.raises(OutputError, match="exists and is not a folder"):
        publish.convert("toy-small", [toy_checkpoint], target)


# --- plugin selection ----------------------------------------------------------------------------


def test_plugin_selection_naming_no_installed_plugin_warns(monkeypatch):
    monkeypatch.setenv("ZOO_PLUGINS", "nonexistent,vit")
    monkeypatch.setenv("ZOO_DISABLE_PLUGINS", "also-missing")

    with pytest.warns(zoo.ZooPluginWarning) as caught:
        registry = Registry.from_entry_points()

    messages = " | ".join(str(w.message) for w in caught)
    assert "ZOO_PLUGINS names 'nonexistent', which matches no installed plugin" in messages
    assert "ZOO_DISABLE_PLUGINS names 'also-missing'" in messages
    assert "installed: c3d," in messages
    assert [card.architecture for card in registry.cards()] == ["vit"] * len(registry.cards())


@pytest.mark.parametrize(
    ("variable", "value"), [("ZOO_DISABLE_PLUGINS", "i3d"), ("ZOO_PLUGINS", "vit,c3d")]
)
def test_a_model_of_a_disabled_plugin_says_so(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    reset_default_registry()

    with pytest.raises(DisabledPluginError) as error:
        zoo.card("i3d-kinetics")
    with pytest.raises(DisabledPluginError, match="architecture 'i3d' belongs to plugin 'i3d'"):
        zoo.build("i3d")

    assert str(error.value) == (
        f"model 'i3d-kinetics' belongs to plugin 'i3d', which is disabled by {variable}; "
        "enable it to use 'i3d-kinetics'"
    )


def test_a_name_nobody_provides_is_still_unknown_with_plugins_disabled(monkeypatch):
    monkeypatch.setenv("ZOO_DISABLE_PLUGINS", "i3d")
    reset_default_registry()

    with pytest.raises(zoo.UnknownNameError, match="unknown model 'no-such-model'"):
        zoo.card("no-such-model")


# --- dtypes --------------------------------------------------------------------------------------


def test_a_float16_weights_file_loads_into_the_architectures_float32(toy_plugin, tmp_path):
    registry = Registry.from_plugins({"toy": toy_plugin})
    state = {
        k: v.half() if v.is_floating_point() else v
        for k, v in zoo.build("toy", registry=registry).state_dict().items()
    }
    save_file(state, tmp_path / "half.safetensors")
    weights = tmp_path / "half.safetensors"

    default = zoo.build("toy", weights=weights, registry=registry)
    wanted = zoo.build("toy", weights=weights, dtype=torch.float16, registry=registry)
    wider = zoo.build("toy", weights=weights, dtype=torch.float64, registry=registry)

    assert {p.dtype for p in default.parameters()} == {torch.float32}
    assert default[1].num_batches_tracked.dtype == torch.int64
    assert default.eval()(torch.rand(1, 3, 8, 8)).dtype == torch.float32
    assert {p.dtype for p in wanted.parameters()} == {torch.float16}
    assert {p.dtype for p in wider.parameters()} == {torch.float64}
    assert torch.equal(default[0].weight, state["0.weight"].float())


# --- train and eval modes ------------------------------------------------------------------------


def test_build_gives_training_mode_and_load_eval_mode_as_their_docstrings_say(toy_plugin):
    registry = Registry.from_plugins({"toy": toy_plugin, "cards": cards_plugin("c", toy_card())})

    built = zoo.build("toy", registry=registry)
    loaded = zoo.load("toy-small", pretrained=False, registry=registry)

    assert built.training and all(module.training for module in built.modules())
    assert not any(module.training for module in loaded.modules())
    assert "training mode" in zoo.build.__doc__ and "eval mode" in zoo.load.__doc__


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_files_zoo_writes_follow_the_umask_not_mkstemps_owner_only_mode(tmp_path, umask):
    from zoo.output import atomic_path, write_text_atomic
    from zoo.weights.files import save_safetensors

    previous = os.umask(umask)
    try:
        write_text_atomic(tmp_path / "report.json", "{}")
        with atomic_path(tmp_path / "picture.png") as temporary:
            temporary.write_bytes(b"png")
        save_safetensors({"w": torch.zeros(2)}, tmp_path / "model.safetensors")
    finally:
        os.umask(previous)

    for name in ("report.json", "picture.png", "model.safetensors"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~umask, name
