"""Round three of hardening: what each newer surface used to get wrong, one test per item.

Cards with a key written twice or a wrong parameter count, plugin names that are Python
keywords, folders a skeleton cannot be written to, plugins that print while being
discovered, images too large to decode, a pickle named .safetensors, a file name that
starts with a dash, and the zoo cache's folders. Everything runs in this process.
"""

from __future__ import annotations

import json
import re
import struct
import zlib
from pathlib import Path

import click
import pytest
import torch
import yaml
from click.testing import CliRunner
from conftest import install_distribution

import zoo
from zoo.cli import main
from zoo.cli.base import FiniteFloat
from zoo.errors import InputError, ScaffoldError
from zoo.inference.decode import read_media
from zoo.modelcard import from_hf_model_card, to_hf_model_card
from zoo.scaffold import new_plugin
from zoo.weights.cache import CACHE_AREAS, area_folder, cache_folder, model_entry

ROOT = Path(__file__).resolve().parents[1]
UNWRITABLE = "/sys/zoo-hardening"


def zoo_command(*args: str, **env: str):
    result = CliRunner(env=env or None).invoke(main, [str(arg) for arg in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def one_error_line(result, status: int = 1) -> str:
    assert result.exit_code == status, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


# --- zoo card validate ---------------------------------------------------------------------------


def c3d_card_text(**changes: object) -> str:
    data = {**zoo.card("c3d").to_data(), "name": "c3d-edited", "aliases": [], **changes}
    return yaml.safe_dump(data, sort_keys=False)


def test_card_validate_refuses_a_key_written_twice_naming_it_and_its_lines(tmp_path):
    text = c3d_card_text()
    card = tmp_path / "card.yaml"
    card.write_text(text + "license: mit\n")  # license is written earlier already

    result = zoo_command("card", "validate", card)

    line = one_error_line(result)
    assert line == "Error: 1 of 1 cards are invalid"
    first = text.splitlines().index(next(x for x in text.splitlines() if x.startswith("license")))
    assert (
        f"invalid: {card}: not valid YAML: the key 'license' is written twice (lines "
        f"{first + 1} and {len(text.splitlines()) + 1})" in result.stdout
    )


def test_a_model_card_whose_metadata_holds_a_key_twice_is_refused():
    text = str(to_hf_model_card(zoo.card("c3d")))
    doubled = text.replace("library_name: zoo\n", "library_name: zoo\nlibrary_name: zoo\n", 1)

    assert from_hf_model_card(text, origin="ok").name == "c3d-sports1m"
    with pytest.raises(zoo.CardError, match="the key 'library_name' is written twice"):
        from_hf_model_card(doubled, origin="hf-hub:org/doubled/README.md")


def test_card_validate_checks_parameters_against_a_meta_build_without_weights(tmp_path):
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(c3d_card_text(parameters=5))
    right = tmp_path / "right.yaml"
    right.write_text(c3d_card_text())

    result = zoo_command("card", "validate", wrong, right)

    built = zoo.card("c3d").parameters  # the kit proves the shipped card's count
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"invalid: {wrong}: card 'c3d-edited': parameters is 5, but its config builds "
        f"{built:,} ({built - 5:+,}); write the built model's count",
        f"ok: {right}",
    ]


# --- zoo new-plugin -------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "derived"), [("none", "'None'"), ("true", "'True'")])
def test_a_plugin_name_that_makes_a_python_keyword_is_refused_naming_the_rule(
    name, derived, tmp_path
):
    with pytest.raises(ScaffoldError) as refused:
        new_plugin(name, tmp_path / "out")

    assert f"plugin name {name!r} makes the model class name {derived}" in str(refused.value)
    assert "must be Python identifiers that are not keywords" in str(refused.value)
    assert list(tmp_path.iterdir()) == []


def test_a_name_that_is_still_an_identifier_after_normalising_makes_valid_python(tmp_path):
    skeleton = new_plugin("false-net", tmp_path / "out")

    for relative in skeleton.files:
        if relative.endswith(".py"):
            compile((tmp_path / "out" / relative).read_text(), relative, "exec")


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("{tmp}/a-file/out", "cannot write {tmp}/a-file/out: Not a directory"),
        (f"{UNWRITABLE}/out", f"cannot write {UNWRITABLE}/out:"),
        ("/proc/zoo-plugin", "cannot write /proc/zoo-plugin:"),
        ("{tmp}/" + "n" * 300, "File name too long"),
    ],
    ids=["parent-is-a-file", "read-only-file-system", "proc", "name-too-long"],
)
def test_a_skeleton_that_cannot_be_written_is_one_line_and_leaves_nothing(where, message, tmp_path):
    (tmp_path / "a-file").write_text("")
    before = sorted(tmp_path.iterdir())

    result = zoo_command("new-plugin", "my-net", "-o", where.format(tmp=tmp_path))

    assert message.format(tmp=tmp_path) in one_error_line(result)
    assert sorted(tmp_path.iterdir()) == before


# --- plugins that print --------------------------------------------------------------------------


def test_what_a_plugin_prints_while_discovered_never_reaches_stdout(tmp_path, monkeypatch):
    module = """
        import zoo
        print("chatty plugin imported")

        @zoo.hookimpl
        def zoo_cards():
            print("chatty plugin lists its cards")
            return []
    """
    install_distribution(tmp_path, "zoo-chatty", {"chatty": "zoo_chatty"}, {"zoo_chatty": module})
    monkeypatch.syspath_prepend(str(tmp_path))

    listing = zoo_command("list", "--json")
    plugins = zoo_command("plugins", "--json")

    assert [row["name"] for row in json.loads(listing.stdout)] == zoo.list_models()
    assert "chatty" in {report["name"] for report in json.loads(plugins.stdout)}
    assert "chatty plugin imported" in listing.stderr
    assert "chatty plugin lists its cards" in listing.stderr


# --- inputs and checkpoints ----------------------------------------------------------------------


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` pixels and holds none (Pillow reads the size
    from the header, so its decompression-bomb check fires on open)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def test_an_image_past_the_decompression_bomb_limit_is_named_with_how_to_raise_it(
    tmp_path, monkeypatch
):
    huge = tmp_path / "huge.png"
    huge.write_bytes(png_header(15000, 15000))

    with pytest.raises(InputError) as refused:
        read_media(huge)
    monkeypatch.setenv("ZOO_MAX_IMAGE_PIXELS", str(15000 * 15000))
    with pytest.raises(InputError) as decoded:
        read_media(huge)

    message = str(refused.value)
    assert message.startswith(f"{huge}: is too large to decode safely")
    assert "Image size (225000000 pixels) exceeds limit of 178956970 pixels" in message
    assert "ZOO_MAX_IMAGE_PIXELS=PIXELS" in message
    assert "too large" not in str(decoded.value)  # past the guard, it fails as a bad image


def test_a_pickle_named_safetensors_converts_as_load_names_it(tmp_path):
    model = zoo.load("convlstm-moving-digits")
    checkpoint = tmp_path / "model.safetensors"
    torch.save(model.state_dict(), checkpoint)

    result = zoo_command(
        "convert", "convlstm-moving-digits", "--checkpoint", checkpoint, "-o", tmp_path / "out"
    )

    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "model.safetensors").is_file()


def test_a_file_name_starting_with_a_dash_points_to_the_double_dash(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "-dash.gif").write_bytes(b"GIF89a")

    line = one_error_line(zoo_command("predict", "c3d", "-dash.gif"), status=2)

    assert line.startswith("Error: No such option '-d'.")
    assert "put `--` before it, as in `... -- -dash.gif`, or write ./-dash.gif" in line


# --- the zoo cache -------------------------------------------------------------------------------


def fake_entry(area: str, model: str, size: int) -> Path:
    entry = cache_folder(area, "test") / model_entry(model, "0123456789abcdef" * 4)
    entry.mkdir()
    (entry / "model.onnx").write_bytes(b"\0" * size)
    return entry


def test_zoo_cache_lists_the_onnx_backends_exports_with_their_size():
    fake_entry("onnx", "c3d-sports1m", 3000)
    fake_entry("onnx", "i3d-kinetics400-rgb", 500)

    listing = json.loads(zoo_command("cache", "--json").stdout)
    table = zoo_command("cache").stdout

    areas = {area["name"]: area for area in listing["areas"]}
    assert set(areas) == set(CACHE_AREAS)
    assert (areas["onnx"]["size"], areas["onnx"]["entries"]) == (3500, 2)
    assert re.search(r"onnx +0\.0MB +2 +ONNX exports made on first use", table)


def test_cache_clear_of_a_model_removes_its_exports_and_clear_removes_every_area_but_first_use():
    c3d = fake_entry("onnx", "c3d-sports1m", 10)
    i3d = fake_entry("onnx", "i3d-kinetics400-rgb", 10)
    (cache_folder("first-use", "test") / "record.json").write_text("{}")

    one = zoo_command("cache", "--clear", "c3d", "--json")
    assert json.loads(one.stdout)["removed"] == [str(c3d)]
    assert i3d.exists()

    everything = zoo_command("cache", "--clear", "--json")
    assert str(area_folder("onnx")) in json.loads(everything.stdout)["removed"]
    assert not area_folder("onnx").exists()
    assert (area_folder("first-use") / "record.json").exists()


def test_code_writes_into_the_zoo_cache_only_through_a_registered_area():
    """Structural: a folder nobody registered could not be listed or cleared."""
    writers = [
        path.relative_to(ROOT)
        for path in (ROOT / "zoo").rglob("*.py")
        if "zoo_cache_dir() /" in path.read_text() and path.name != "cache.py"
    ]

    assert writers == []
    with pytest.raises(KeyError, match="cache area 'compiled' is not registered"):
        area_folder("compiled")


# --- float options -------------------------------------------------------------------------------


def every_option(group: click.Group, path: str = "zoo") -> list[tuple[str, click.Parameter]]:
    found = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found += every_option(command, f"{path} {name}")
        else:
            found += [(f"{path} {name} {param.name}", param) for param in command.params]
    return found


def test_every_float_option_of_every_command_refuses_nan_and_infinity():
    floats = [
        (where, param)
        for where, param in every_option(main)
        if isinstance(param.type, click.types.FloatParamType)
    ]

    assert {where for where, _ in floats} >= {"zoo predict threshold", "zoo attack eps"}
    for where, param in floats:
        assert isinstance(param.type, FiniteFloat), where
        for value in ("nan", "inf", "-inf"):
            with pytest.raises(click.BadParameter):
                param.type.convert(value, param, None)
