"""Every mistake a user can make is one clear ZooError naming what was expected and found.

The Python layer is tested here; tests/test_cli_misuse.py runs the same mistakes
through the command line and checks each ends as one line on stderr.
"""

# ruff: noqa: F811  (the fixtures tiny and hub are imported from test_weights)

from __future__ import annotations

import io
import struct
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import save_file
from test_weights import (  # noqa: F401  (fixtures)
    card_data,
    hub,
    pickled,
    registry_with,
    tiny,
    upstream_state,
    zoo_state,
)

import zoo
from zoo import publish
from zoo.cli import main
from zoo.errors import (
    ArgumentError,
    CardError,
    OutputError,
    PluginError,
    PublishError,
    WeightsError,
)
from zoo.weights.files import file_kind, read_checkpoint

UNWRITABLE = Path("/sys/zoo-test-output")  # creating anything there fails for every user


# --- files that are not what they should be ------------------------------------------------------


@pytest.mark.parametrize("content", [b"", b"hello world", b"t", b"\x00" * 64, b"{}"])
def test_a_file_that_is_no_checkpoint_is_named_for_what_it_is_not(tmp_path, content):
    path = tmp_path / "t.pth"
    path.write_bytes(content)

    with pytest.raises(WeightsError, match="is not a PyTorch checkpoint or safetensors file"):
        read_checkpoint(path)


def test_a_damaged_pickle_is_a_clear_error_not_a_reader_crash(tmp_path):
    path = tmp_path / "t.pth"
    path.write_bytes(pickled(upstream_state(0))[:200])

    with pytest.raises(WeightsError, match="is not a readable PyTorch checkpoint"):
        read_checkpoint(path)


def test_file_kinds_are_told_apart_by_their_first_bytes(tmp_path):
    buffer = io.BytesIO()
    torch.save({"w": torch.zeros(1)}, buffer, _use_new_zipfile_serialization=False)
    header = b'{"__metadata__":{}}' + b" " * (0x180 - 19)  # a length whose low byte is 0x80
    files = {
        "zip.pth": pickled({"w": torch.zeros(1)}),
        "legacy.pth": buffer.getvalue(),
        "odd.safetensors": struct.pack("<Q", len(header)) + header,
        "text.txt": b"hello world",
    }
    kinds = {}
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
        kinds[name] = file_kind(tmp_path / name)

    assert kinds == {
        "zip.pth": "torch-zip",
        "legacy.pth": "pickle",
        "odd.safetensors": "safetensors",
        "text.txt": "unknown",
    }


def test_a_pickle_passed_as_weights_is_named_and_zoo_convert_suggested(tiny, tmp_path):
    path = tmp_path / "x.pth"
    path.write_bytes(pickled(zoo_state(0)))
    registry = registry_with(card_data([]))

    with pytest.raises(
        WeightsError, match=r"x\.pth is a PyTorch pickle, not safetensors.*zoo convert"
    ):
        zoo.load("tiny-model", weights=path, registry=registry)


def test_a_folder_passed_as_weights_points_at_the_file_inside(tiny, tmp_path):
    save_file(zoo_state(0), tmp_path / "model.safetensors")
    registry = registry_with(card_data([]))

    with pytest.raises(WeightsError, match=r"is a folder.*did you mean .*model\.safetensors"):
        zoo.load("tiny-model", weights=tmp_path, registry=registry)


# --- plugin code failing -------------------------------------------------------------------------


def test_a_converter_that_raises_is_one_weights_error_naming_it(tmp_path):
    checkpoint = tmp_path / "ck.pth"
    checkpoint.write_bytes(pickled({"encoder.cell_list.0.conv.weight": torch.zeros(1)}))

    with pytest.raises(WeightsError) as error:
        publish.convert(
            "convlstm-moving-digits", [checkpoint], tmp_path / "out", layout="conv-lstm"
        )

    message = str(error.value)
    assert "the 'conv-lstm' converter of architecture 'convlstm' failed (ValueError:" in message
    assert "\n" not in message
    assert not (tmp_path / "out").exists()


def test_a_builder_that_raises_is_one_plugin_error_naming_it(toy_plugin, monkeypatch):
    def broken(config):
        raise IndexError("list index out of range")

    monkeypatch.setattr(toy_plugin, "build", broken)
    registry = zoo.registry.Registry.from_plugins({"toy": toy_plugin})

    with pytest.raises(PluginError, match=r"builder of architecture 'toy' .* IndexError"):
        zoo.build("toy", registry=registry)


def test_a_builder_that_cannot_be_imported_is_one_plugin_error():
    architecture = zoo.Architecture(name="gone", builder="no_such_module:build", config=zoo.Card)

    with pytest.raises(PluginError, match=r"cannot import the builder of architecture 'gone'"):
        architecture.resolve_builder()


def test_a_config_the_architecture_refuses_is_a_zoo_error_naming_the_field():
    with pytest.raises(
        zoo.ZooError, match=r"architecture 'c3d': config: .*a 8x112x112 clip pools to .*16 frames"
    ):
        zoo.build("c3d", {"frames": 8})


# --- arguments of the wrong kind -----------------------------------------------------------------


@pytest.mark.parametrize("name", [None, 3, ["i3d"]])
def test_load_refuses_what_is_not_a_name_or_a_card(name):
    with pytest.raises(ArgumentError, match=r"expects a model name .* or a zoo.Card, found"):
        zoo.load(name)


@pytest.mark.parametrize("name", ["hf-hub:", "hf-hub:just-a-name", "hf-hub:a/b/c", "hf-hub:a/b@"])
def test_a_malformed_hf_hub_name_says_what_form_it_takes(name):
    with pytest.raises(ArgumentError, match=r"hf-hub:org/name\[@revision\]"):
        zoo.load(name)


@pytest.mark.parametrize("name", ["", "   "])
def test_an_empty_model_name_is_an_unknown_name(name):
    with pytest.raises(zoo.UnknownNameError):
        zoo.card(name.strip() or name)


# --- cards as files ------------------------------------------------------------------------------


def test_a_binary_card_file_is_reported_and_the_other_files_still_checked(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(zoo.card("c3d").to_yaml())
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(bytes(range(256)))
    other = tmp_path / "other.yaml"
    other.write_text("name: x\n")

    result = CliRunner().invoke(main, ["card", "validate", str(good), str(binary), str(other)])

    assert result.exit_code == 1
    assert f"ok: {good}" in result.stdout
    assert f"invalid: {binary}: not a YAML card: not UTF-8 text" in result.stdout
    assert f"invalid: {other}: architecture: Field required" in result.stdout
    assert result.stderr == "Error: 2 of 3 cards are invalid\n"


def test_card_from_yaml_names_the_file_for_text_that_is_not_yaml(tmp_path):
    path = tmp_path / "card.yaml"
    path.write_text("name: [unclosed\n")

    with pytest.raises(CardError, match=rf"{path}: not valid YAML: .*"):
        zoo.Card.from_yaml(path)


# --- outputs -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "written"),
    [
        ("out/", "out/README.md"),
        ("new/sub/", "new/sub/README.md"),
        ("card.md", "card.md"),
        ("deep/er/card.md", "deep/er/card.md"),
    ],
)
def test_card_render_writes_where_it_is_told(tmp_path, monkeypatch, output, written):
    monkeypatch.chdir(tmp_path)

    result = CliRunner().invoke(main, ["card", "render", "c3d", "-o", output])

    assert result.exit_code == 0, result.output
    assert (tmp_path / written).is_file()
    assert (tmp_path / written).read_text().startswith("---\n")


def test_card_render_into_an_unwritable_place_is_one_line(tmp_path):
    result = CliRunner().invoke(main, ["card", "render", "c3d", "-o", f"{UNWRITABLE}/"])

    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: cannot write {UNWRITABLE}")
    assert result.stderr.count("\n") == 1


def test_convert_into_an_unwritable_place_is_an_output_error(tiny, tmp_path):
    checkpoint = tmp_path / "zoo.safetensors"
    save_file(zoo_state(0), checkpoint)
    registry = registry_with(card_data([]))

    with pytest.raises(OutputError, match=f"cannot write {UNWRITABLE}"):
        publish.convert("tiny-model", [checkpoint], UNWRITABLE / "out", registry=registry)


# --- publishing ----------------------------------------------------------------------------------


def test_push_without_a_token_says_what_is_missing_before_sending_anything(
    tiny, hub, tmp_path, monkeypatch
):
    checkpoint = tmp_path / "zoo.safetensors"
    save_file(zoo_state(0), checkpoint)
    converted = publish.convert(
        "tiny-model", [checkpoint], tmp_path / "out", registry=registry_with(card_data([]))
    )
    monkeypatch.delenv("HF_TOKEN")
    before = len(hub.requests)

    with pytest.raises(PublishError, match=r"needs a Hugging Face token.*HF_TOKEN.*hf auth login"):
        publish.push(converted.folder, "me/x")
    assert len(hub.requests) == before


def test_push_to_an_endpoint_that_refuses_is_one_publish_error(tiny, hub, tmp_path):
    checkpoint = tmp_path / "zoo.safetensors"
    save_file(zoo_state(0), checkpoint)
    converted = publish.convert(
        "tiny-model", [checkpoint], tmp_path / "out", registry=registry_with(card_data([]))
    )
    hub.stop()

    with pytest.raises(
        PublishError, match=r"publishing to me/x failed: cannot reach .*HF_ENDPOINT"
    ):
        publish.push(converted.folder, "me/x")


@pytest.mark.parametrize("repo", ["x", "me/x/y", "", "me/"])
def test_push_refuses_a_repo_name_that_is_not_org_slash_name(tmp_path, repo):
    with pytest.raises(ArgumentError, match="a Hub repo is named org/name"):
        publish.push(tmp_path, repo)


@pytest.mark.parametrize(
    ("module", "extra"),
    [
        ("captum", "interpret"),
        ("onnxruntime", "export"),
        ("cv2", "video"),
        ("sklearn", "interpret"),
    ],
)
def test_a_missing_optional_package_is_one_line_naming_it_and_its_extra(module, extra):
    import click

    from zoo.cli.base import fails_cleanly

    @fails_cleanly
    def explain() -> None:
        raise ModuleNotFoundError(f"No module named '{module}'", name=module)

    with pytest.raises(click.ClickException) as caught:
        explain()

    message = caught.value.format_message()
    assert f"'{module}'" in message and "\n" not in message
    assert message.endswith(f"pip install 'zoo-models[{extra}]'")


def test_a_missing_package_no_extra_provides_points_to_every_extra():
    from zoo.cli.base import extras_providing

    assert extras_providing("not_a_zoo_dependency") == []
    assert extras_providing("timm") == []  # a test dependency only (dev), never an extra's
