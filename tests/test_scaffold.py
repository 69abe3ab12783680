"""``zoo new-plugin``: the names it derives, the files it writes, and what it refuses.

That a skeleton installs and passes the conformance kit as written is proved in a
fresh virtual environment (tests/test_third_party.py); these cases stay in-process.
"""

from __future__ import annotations

import json
import py_compile
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import zoo
from zoo.cards import Card
from zoo.errors import OutputError, ScaffoldError
from zoo.scaffold import new_plugin

ZOO = str(Path(sys.executable).with_name("zoo"))
FILES = [
    "README.md",
    "pyproject.toml",
    "tests/test_zoo_x3d_m.py",
    "zoo_x3d_m/__init__.py",
    "zoo_x3d_m/cards/x3d-m-example.yaml",
    "zoo_x3d_m/convert.py",
    "zoo_x3d_m/model.py",
]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([ZOO, *args], capture_output=True, text=True)


def test_the_skeleton_names_follow_from_the_plugin_name(tmp_path):
    skeleton = new_plugin("x3d-m", tmp_path / "zoo-x3d-m")

    assert (skeleton.distribution, skeleton.module, skeleton.card) == (
        "zoo-x3d-m",
        "zoo_x3d_m",
        "x3d-m-example",
    )
    assert skeleton.files == FILES
    project = tomllib.loads((tmp_path / "zoo-x3d-m" / "pyproject.toml").read_text())
    assert project["project"]["name"] == "zoo-x3d-m"
    assert project["project"]["entry-points"]["zoo"] == {"x3d-m": "zoo_x3d_m"}
    assert project["project"]["dependencies"] == [f"zoo-models>={zoo.__version__}"]
    source = (tmp_path / "zoo-x3d-m" / "zoo_x3d_m" / "__init__.py").read_text()
    assert "class X3dMConfig(BaseModel)" in source and 'name="x3d-m"' in source


def test_a_plugin_named_models_is_refused_since_its_distribution_would_be_zoos_own(tmp_path):
    with pytest.raises(ScaffoldError, match="would make the distribution zoo-models"):
        new_plugin("models", tmp_path / "zoo-models")

    assert not (tmp_path / "zoo-models").exists()


def test_every_file_is_valid_python_or_a_valid_card(tmp_path):
    new_plugin("my-net", tmp_path / "package")

    for path in (tmp_path / "package").rglob("*.py"):
        py_compile.compile(str(path), doraise=True)
    card = Card.from_yaml(tmp_path / "package" / "zoo_my_net" / "cards" / "my-net-example.yaml")
    assert (card.name, card.architecture) == ("my-net-example", "my-net")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("My_Net", "must be lowercase letters and digits"),
        ("3d-net", "starting with a letter"),
        ("net--two", "words joined by single hyphens"),
        ("resnext", "plugin 'resnext' and architecture 'resnext' already exist"),
    ],
)
def test_a_bad_or_taken_name_is_refused_and_nothing_is_written(tmp_path, name, message):
    with pytest.raises(ScaffoldError, match=message):
        new_plugin(name, tmp_path / "out")

    assert list(tmp_path.iterdir()) == []


def test_a_folder_with_files_in_it_is_refused(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "mine.txt").write_text("keep me")

    with pytest.raises(OutputError, match="is not empty and not a previous zoo output"):
        new_plugin("my-net", tmp_path / "out")

    assert [path.name for path in (tmp_path / "out").iterdir()] == ["mine.txt"]


def test_an_empty_folder_is_filled(tmp_path):
    (tmp_path / "out").mkdir()

    new_plugin("my-net", tmp_path / "out")

    assert (tmp_path / "out" / "zoo_my_net" / "model.py").is_file()
    assert [path.name for path in tmp_path.iterdir()] == ["out"]


def test_the_command_prints_the_files_or_the_json_report(tmp_path):
    listed = run("new-plugin", "my-net", "-o", str(tmp_path / "a"))
    as_json = run("new-plugin", "my-net", "-o", str(tmp_path / "b"), "--json")

    assert listed.returncode == 0, listed.stderr
    assert f"wrote {tmp_path / 'a' / 'zoo_my_net' / 'model.py'}" in listed.stdout
    assert "next: pip install" in listed.stderr
    assert json.loads(as_json.stdout)["module"] == "zoo_my_net"


def test_the_command_refuses_a_bad_name_in_one_line(tmp_path):
    result = run("new-plugin", "My_Net", "-o", str(tmp_path / "out"))

    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("Error: plugin name")
    assert not (tmp_path / "out").exists()
