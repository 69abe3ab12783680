"""Shared fixtures: private caches and a clean registry per test, toy plugins, and fake
installed distributions."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import zoo
from zoo.registry import reset_default_registry

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_PLUGIN = ROOT / "examples" / "zoo-example-plugin"


def pytest_configure(config: pytest.Config) -> None:
    """One torch thread per pytest-xdist worker: CI runs two workers on two cores."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)


CACHE_VARIABLES = ("HF_HOME", "HF_HUB_CACHE", "ZOO_CACHE", "HF_XET_CACHE", "HF_ASSETS_CACHE")


@pytest.fixture(autouse=True)
def isolated_caches(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Every test (and every subprocess it starts) gets caches of its own, never ~/.cache.

    huggingface_hub reads its paths into ``huggingface_hub.constants`` at import,
    so the constants are set for this process and the environment for children.
    No token from the machine leaks in either.
    """
    import huggingface_hub.constants as constants

    root = tmp_path_factory.mktemp("caches")
    paths = {
        "HF_HOME": root / "hf",
        "HF_HUB_CACHE": root / "hf" / "hub",
        "ZOO_CACHE": root / "zoo",
        "HF_XET_CACHE": root / "hf" / "xet",
        "HF_ASSETS_CACHE": root / "hf" / "assets",
    }
    for variable, path in paths.items():
        monkeypatch.setenv(variable, str(path))
        if hasattr(constants, variable):
            monkeypatch.setattr(constants, variable, str(path))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(paths["HF_HOME"] / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(paths["HF_HOME"] / "stored_tokens"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    return root


@pytest.fixture(autouse=True)
def clean_registry(monkeypatch: pytest.MonkeyPatch):
    """Every test starts from no cached registry and no plugin selection in the environment."""
    monkeypatch.delenv("ZOO_PLUGINS", raising=False)
    monkeypatch.delenv("ZOO_DISABLE_PLUGINS", raising=False)
    reset_default_registry()
    yield
    reset_default_registry()


def card_data(**overrides: Any) -> dict[str, Any]:
    """A minimal valid card for the toy architecture, with fields replaced by ``overrides``."""
    data: dict[str, Any] = {
        "name": "toy-small",
        "aliases": ["toy"],
        "architecture": "toy",
        "config": {"width": 4},
        "task": "image-classification",
        "summary": "A toy model for tests.",
        "inputs": [{"name": "image", "layout": "NCHW", "channels": 3, "size": [8, 8]}],
        "outputs": [{"name": "logits", "shape": [4]}],
        "labels": ["a", "b", "c", "d"],
        "parameters": 140,
        "license": "mit",
    }
    data.update(overrides)
    return data


def pip_install_target(package: Path, site: Path) -> Path:
    """``package`` pip-installed (not editable, offline) into the folder ``site``."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(site),
            str(package),
        ],
        check=True,
    )
    return site


@pytest.fixture(scope="session")
def example_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example plugin package (R(2+1)D-18), pip-installed into a folder of its own."""
    source = clean_copy(EXAMPLE_PLUGIN, tmp_path_factory.mktemp("example-source"))
    return pip_install_target(source, tmp_path_factory.mktemp("example-site"))


@pytest.fixture(scope="session")
def skeleton_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A plugin ``zoo new-plugin demo-net`` wrote (card ``demo-net-example``, a small image
    classifier), pip-installed into a folder of its own: the quickest third-party model."""
    from zoo.scaffold import new_plugin

    source = tmp_path_factory.mktemp("skeleton-source") / "zoo-demo-net"
    new_plugin("demo-net", source)
    return pip_install_target(source, tmp_path_factory.mktemp("skeleton-site"))


@pytest.fixture
def toy_plugin() -> types.ModuleType:
    """A plugin providing the ``toy`` architecture and no cards."""
    import toy_plugin

    return toy_plugin


def cards_plugin(name: str, *cards: Any) -> types.ModuleType:
    """A plugin whose only hook returns the given card sources."""
    module = types.ModuleType(name)

    @zoo.hookimpl
    def zoo_cards():
        return list(cards)

    module.zoo_cards = zoo_cards
    return module


def install_distribution(
    site: Path, name: str, entry_points: dict[str, str], modules: dict[str, str]
) -> Path:
    """Lay out an installed distribution (dist-info + modules) in ``site``, as pip would."""
    dist_info = site / f"{name.replace('-', '_')}-1.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    lines = "\n".join(f"{key} = {value}" for key, value in entry_points.items())
    (dist_info / "entry_points.txt").write_text(f"[zoo]\n{lines}\n")
    for module_name, source in modules.items():
        (site / f"{module_name}.py").write_text(textwrap.dedent(source))
    return site


def clean_copy(package: Path, folder: Path) -> Path:
    """A copy of a source package without build leftovers, which pip would pack stale."""
    target = folder / package.name
    shutil.copytree(
        package, target, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    )
    return target


CONSOLE_SCRIPTS = {"zoo": "zoo.cli:main", "pip": "pip._internal.cli.main:main"}


@dataclass(frozen=True)
class FreshVenv:
    """A new virtual environment that borrows this one's packages and installs for real.

    ``python -m venv --without-pip`` makes it; a ``.pth`` file in its site-packages
    adds this environment's site-packages (torch, zoo from the working tree, pip,
    setuptools, pytest, torchvision) *after* its own, so a ``pip install`` into it is
    a real, non-editable install that is found first, made offline in seconds.
    ``bin/zoo`` and ``bin/pip`` are the console scripts pip writes for those two.
    """

    root: Path
    home: Path

    @classmethod
    def create(cls, folder: Path) -> FreshVenv:
        root, home = folder / "venv", folder / "home"
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
        home.mkdir()
        venv = cls(root, home)
        site_packages = venv.python("-c", "import sysconfig; print(sysconfig.get_path('purelib'))")
        borrowed = sysconfig.get_path("purelib")
        (Path(site_packages.stdout.strip()) / "zoo-borrowed.pth").write_text(
            f"import site; site.addsitedir({borrowed!r})\n"
        )
        for name, target in CONSOLE_SCRIPTS.items():
            module, function = target.split(":")
            script = root / "bin" / name
            script.write_text(
                f"#!{root / 'bin' / 'python'}\nimport sys\nfrom {module} import {function}\n"
                f"sys.exit({function}())\n"
            )
            script.chmod(0o755)
        return venv

    def environment(self) -> dict[str, str]:
        """The venv activated, offline, with caches of its own and no plugin selection."""
        inherited = {
            key: value
            for key, value in os.environ.items()
            if key not in ("PYTHONPATH", "ZOO_PLUGINS", "ZOO_DISABLE_PLUGINS")
        }
        return {
            **inherited,
            "VIRTUAL_ENV": str(self.root),
            "PATH": f"{self.root / 'bin'}{os.pathsep}{os.environ['PATH']}",
            "HF_HUB_OFFLINE": "1",
            "HF_HUB_CACHE": str(self.home / "hub"),
            "ZOO_CACHE": str(self.home / "zoo"),
            "PIP_NO_INDEX": "1",
            # pip reads "0" for a --no-* flag as the flag given: build with this venv's setuptools.
            "PIP_NO_BUILD_ISOLATION": "0",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        }

    def run(
        self, *command: str, cwd: Path | None = None, **env: str
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            list(command),
            capture_output=True,
            text=True,
            cwd=cwd or self.home,
            env={**self.environment(), **env},
        )

    def python(self, *arguments: str) -> subprocess.CompletedProcess:
        return self.run(str(self.root / "bin" / "python"), *arguments)
