"""What users see around the code: a clean install, and tests that never touch ~/.cache."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from zoo.weights import zoo_cache_dir

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_ROOTS = {"zoo": ROOT / "zoo", "zoo_plugins": ROOT / "plugins", "zoo_cards": ROOT / "cards"}
NOT_SHIPPED = {"__pycache__"}


def declared_packages() -> set[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return set(config["tool"]["setuptools"]["packages"])


def folders_holding_files(package: str, folder: Path) -> set[str]:
    """Every folder below ``folder`` with a file in it, as the package name it imports as."""
    names = set()
    for path in folder.rglob("*"):
        if path.is_file() and not NOT_SHIPPED & set(path.relative_to(folder).parts):
            parts = path.parent.relative_to(folder).parts
            names.add(".".join((package, *parts)))
    return names


def test_every_core_plugin_and_card_folder_is_a_declared_package():
    expected = set().union(*(folders_holding_files(p, f) for p, f in PACKAGE_ROOTS.items()))

    assert sorted(expected - declared_packages()) == []


@pytest.mark.heavy
def test_a_wheel_builds_without_warnings_and_ships_every_card_and_bundled_weight(tmp_path):
    source = tmp_path / "src"
    ignored = shutil.ignore_patterns(".*", "build", "dist", "*.egg-info", "__pycache__")
    shutil.copytree(ROOT, source, ignore=ignored)
    command = ["pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index"]
    result = subprocess.run(
        [sys.executable, "-m", *command, "-w", str(tmp_path / "wheel"), str(source)],
        capture_output=True,
        text=True,
    )

    assert result.returncode == 0, result.stderr
    assert "warning" not in (result.stdout + result.stderr).lower()
    [wheel] = (tmp_path / "wheel").glob("*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    for card in (ROOT / "cards").glob("*/*.yaml"):
        assert f"zoo_cards/{card.parent.name}/{card.name}" in shipped
    for weights in (ROOT / "plugins").glob("*/weights/*.safetensors"):
        assert f"zoo_plugins/{weights.parent.parent.name}/weights/{weights.name}" in shipped


def test_each_test_has_caches_of_its_own_and_never_the_home_folder(tmp_path_factory):
    import huggingface_hub.constants as constants

    base = tmp_path_factory.getbasetemp()
    home_cache = Path("~/.cache").expanduser()
    places = {
        "zoo cache": zoo_cache_dir(),
        "hub cache": Path(constants.HF_HUB_CACHE),
        "hf home": Path(constants.HF_HOME),
        "token": Path(constants.HF_TOKEN_PATH),
        **{name: Path(os.environ[name]) for name in ("HF_HOME", "HF_HUB_CACHE", "ZOO_CACHE")},
    }

    for what, place in places.items():
        assert place.is_relative_to(base), f"{what} is {place}, outside the test's folder"
        assert not place.is_relative_to(home_cache), what
    assert "HF_TOKEN" not in os.environ
