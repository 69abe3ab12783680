"""The wheel, as a user installs it: what it holds, and that it works with nothing else.

``python -m build`` makes the sdist and, from it, the wheel, once per test session (the
pytest-xdist workers share them under a file lock). One test reads the wheel's file list
against the source tree. The other installs it, not editable, into a new virtual
environment, from a folder with no source tree beside it, and runs the commands a user
runs first, adding the ``video`` and ``export`` extras one at a time.

Reinstalling torch (gigabytes) from the index would take minutes and the network. The
new environment instead sees exactly the distributions the wheel's requirements name,
transitively (for the extras installed so far): each is linked, file for file, from this
environment into a folder that a ``.pth`` file puts on the new one's path. pip resolves
the wheel's requirements against them (``--no-index``: nothing else exists), ``pip
check`` agrees, and a development-only package (pytest, timm) is not importable there,
so an import that only works in a development checkout fails here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from functools import cache
from importlib.metadata import Distribution, distribution, distributions
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT
from filelock import FileLock
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from PIL import Image

import zoo

SOURCE_IGNORED = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "site", "*.egg-info", "__pycache__", ".*_cache"
)


@dataclass(frozen=True)
class Built:
    sdist: Path
    wheel: Path


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The sdist and the wheel built from it, from a copy of the source tree (never the tree
    itself, where a build would leave build/ and egg-info behind)."""
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # this session's folder, which every xdist worker shares
    with FileLock(shared / "zoo-wheel.lock"):
        dist = shared / "zoo-dist"
        if not dist.is_dir():
            source = shared / "zoo-source"
            shutil.rmtree(source, ignore_errors=True)
            shutil.copytree(ROOT, source, ignore=SOURCE_IGNORED)
            subprocess.run(
                [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist) + ".tmp"],
                cwd=source,
                check=True,
                capture_output=True,
                env={**os.environ, "PIP_CONFIG_FILE": os.devnull},
            )
            Path(str(dist) + ".tmp").rename(dist)
    (sdist,) = dist.glob("*.tar.gz")
    (wheel,) = dist.glob("*.whl")
    return Built(sdist, wheel)


# --- what the wheel holds -----------------------------------------------------------------------


def expected_files() -> set[str]:
    """Every module and data file of the source tree, by the path the wheel installs it at."""
    packages = {"zoo": ROOT / "zoo", "zoo_plugins": ROOT / "plugins", "zoo_cards": ROOT / "cards"}
    data = ("*.py", "*.yaml", "*.txt", "*.tmpl", "*.safetensors", "py.typed")
    return {
        f"{name}/{path.relative_to(folder)}"
        for name, folder in packages.items()
        for pattern in data
        for path in folder.rglob(pattern)
        if "__pycache__" not in path.parts
    }


@pytest.mark.heavy
def test_the_wheel_holds_every_module_card_label_set_template_and_weights_file(built):
    names = set(zipfile.ZipFile(built.wheel).namelist())
    installed = {name for name in names if ".dist-info/" not in name}

    assert installed == expected_files()
    assert {"zoo/py.typed", "zoo/labels/kinetics400.txt", "zoo_cards/i3d/i3d-kinetics400-rgb.yaml"}
    assert any(name.startswith("zoo_plugins/convlstm/weights/") for name in installed)
    assert any(name.startswith("zoo/templates/plugin/") for name in installed)
    assert not [n for n in names if n.split("/")[0] in ("tests", "benchmarks", "examples", "docs")]


@pytest.mark.heavy
def test_the_wheel_declares_its_name_version_extras_and_entry_points(built):
    wheel = zipfile.ZipFile(built.wheel)
    info = f"zoo_models-{zoo.__version__}.dist-info"
    metadata = wheel.read(f"{info}/METADATA").decode()
    entry_points = wheel.read(f"{info}/entry_points.txt").decode()

    assert built.wheel.name == f"zoo_models-{zoo.__version__}-py3-none-any.whl"
    assert "Name: zoo-models\n" in metadata and f"Version: {zoo.__version__}\n" in metadata
    for extra in ("export", "video", "detection", "interpret", "all"):
        assert f"Provides-Extra: {extra}\n" in metadata
    assert "zoo = zoo.cli:main" in entry_points
    plugins = entry_points.split("[zoo]\n", 1)[1]
    assert "i3d = zoo_plugins.i3d" in plugins and "convlstm = zoo_plugins.convlstm" in plugins


# --- installed in an environment of its own -------------------------------------------------------


def requirements(dist: Distribution, extras: set[str]) -> list[Requirement]:
    """What ``dist`` needs on this platform, with ``extras`` of it asked for."""
    needed = []
    for line in dist.requires or []:
        requirement = Requirement(line)
        marker = requirement.marker
        if marker is None or any(marker.evaluate({"extra": e}) for e in {"", *extras}):
            needed.append(requirement)
    return needed


def runtime_closure(wheel_metadata: Distribution, extras: set[str]) -> dict[str, Distribution]:
    """Every installed distribution the wheel needs with ``extras``, transitively, by name."""
    found: dict[str, Distribution] = {}
    queue = [(requirement, extras) for requirement in requirements(wheel_metadata, extras)]
    while queue:
        requirement, _ = queue.pop()
        name = canonicalize_name(requirement.name)
        if name == "zoo-models":  # the all extra names the others
            queue += [
                (r, requirement.extras) for r in requirements(wheel_metadata, requirement.extras)
            ]
            continue
        dist = distribution(name)
        assert dist.version in requirement.specifier, f"{name} {dist.version}: {requirement}"
        if name not in found:
            found[name] = dist
        queue += [(r, requirement.extras) for r in requirements(dist, requirement.extras)]
    return found


@cache
def owners_of_top_level_entries() -> dict[str, set[str]]:
    owners: dict[str, set[str]] = {}
    for dist in distributions():
        for entry in {Path(file).parts[0] for file in dist.files or [] if ".." not in str(file)}:
            owners.setdefault(entry, set()).add(canonicalize_name(dist.metadata["Name"]))
    return owners


def link_distribution(dist: Distribution, site: Path, shared: set[str]) -> None:
    """Link ``dist``'s files into ``site``: whole top-level entries it owns alone, file by
    file inside those it shares with other distributions (namespace packages, __pycache__)."""
    root = Path(dist.locate_file(""))
    for file in dist.files or []:
        parts = Path(file).parts
        if ".." in parts:  # console scripts outside site-packages
            continue
        depth = len(parts) if parts[0] in shared else 1
        target = site.joinpath(*parts[:depth])
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(root.joinpath(*parts[:depth]))


@dataclass
class WheelVenv:
    root: Path
    home: Path
    site: Path  # the linked runtime dependencies
    wheel: Path
    linked: set[str]

    def run(self, *command: str) -> subprocess.CompletedProcess:
        environment = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("PYTHON", "ZOO_", "PIP_", "VIRTUAL_ENV"))
        }
        environment |= {
            "PATH": f"{self.root / 'bin'}{os.pathsep}{os.environ['PATH']}",
            "PIP_CONFIG_FILE": os.devnull,  # no index, find-links or constraints of this machine
            "PIP_NO_INDEX": "1",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "HF_HUB_OFFLINE": "1",
            "HF_HUB_CACHE": str(self.home / "hub"),
            "ZOO_CACHE": str(self.home / "zoo"),
        }
        return subprocess.run(
            list(command), cwd=self.home, env=environment, capture_output=True, text=True
        )

    def install(self, extras: set[str]) -> None:
        """Link the distributions ``zoo-models[extras]`` needs, then let pip install it."""
        metadata = Distribution.at(self.wheel_metadata)
        owners = owners_of_top_level_entries()
        shared = {entry for entry, names in owners.items() if len(names) > 1}
        for name, dist in runtime_closure(metadata, extras).items():
            if name not in self.linked:
                link_distribution(dist, self.site, shared)
                self.linked.add(name)
        requirement = f"zoo-models[{','.join(sorted(extras))}]" if extras else "zoo-models"
        pip = self.pip("install", "--find-links", str(self.wheel.parent), requirement)
        assert pip.returncode == 0, pip.stdout + pip.stderr
        check = self.pip("check")
        assert check.returncode == 0, check.stdout + check.stderr

    def pip(self, *arguments: str) -> subprocess.CompletedProcess:
        """This environment's pip, working on the new one: pip is no dependency of zoo."""
        return self.run(
            sys.executable, "-m", "pip", "--python", str(self.root / "bin" / "python"), *arguments
        )

    @property
    def wheel_metadata(self) -> Path:
        folder = self.home.parent / "wheel-metadata"
        if not folder.exists():
            with zipfile.ZipFile(self.wheel) as wheel:
                info = [name for name in wheel.namelist() if ".dist-info/" in name]
                wheel.extractall(folder, members=info)
        return next(folder.glob("*.dist-info"))

    def pip_list(self) -> set[str]:
        listed = self.pip("list", "--format", "json")
        return {canonicalize_name(item["name"]) for item in json.loads(listed.stdout)}

    def imports(self, module: str) -> bool:
        return self.run("python", "-c", f"import {module}").returncode == 0


@pytest.fixture(scope="module")
def wheel_venv(built: Built, tmp_path_factory: pytest.TempPathFactory) -> WheelVenv:
    folder = tmp_path_factory.mktemp("wheel-venv")
    root, home, site = folder / "venv", folder / "home", folder / "runtime"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    home.mkdir()
    site.mkdir()
    venv = WheelVenv(root, home, site, built.wheel, set())
    purelib = venv.run("python", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))")
    (Path(purelib.stdout.strip()) / "zoo-runtime.pth").write_text(f"{site}\n")
    return venv


def moving_square_gif(path: Path, frames: int = 12) -> Path:
    """A 32x32 gray clip of a square crossing the frame, the forecaster's kind of input."""
    images = []
    for index in range(frames):
        frame = np.zeros((32, 32), dtype=np.uint8)
        frame[10:18, 2 + 2 * index : 10 + 2 * index] = 255
        images.append(Image.fromarray(frame))
    images[0].save(path, save_all=True, append_images=images[1:], duration=100, loop=0)
    return path


@pytest.mark.heavy
def test_the_installed_wheel_works_with_its_runtime_dependencies_only(wheel_venv):
    venv = wheel_venv

    venv.install(set())

    where = venv.run(
        "python", "-c", "import zoo, zoo_plugins; print(zoo.__file__, zoo_plugins.__file__)"
    )
    assert all(str(venv.root) in path for path in where.stdout.split()), where.stdout
    assert venv.pip_list() == venv.linked | {"zoo-models"}
    for development_only in ("pytest", "timm", "transformers", "onnx", "av", "captum"):
        assert not venv.imports(development_only), f"{development_only} is importable"

    version = venv.run("zoo", "--version")
    assert version.stdout.strip() == f"zoo-models, version {zoo.__version__}"
    listed = venv.run("zoo", "list", "--json")
    assert listed.returncode == 0 and listed.stderr == "", listed.stderr
    assert [row["name"] for row in json.loads(listed.stdout)] == zoo.list_models()
    info = venv.run("zoo", "info", "convlstm-moving-digits", "--json")
    assert json.loads(info.stdout)["name"] == "convlstm-moving-digits"
    forward = venv.run(
        "python",
        "-c",
        "import torch, zoo\n"
        "model = zoo.load('resnet50', pretrained=False)\n"
        "print(tuple(model(torch.rand(1, 3, 64, 64)).shape))",
    )
    assert forward.stdout.strip() == "(1, 1000)", forward.stderr

    clip = moving_square_gif(venv.home / "square.gif")
    refused = venv.run("zoo", "predict", "convlstm-moving-digits", str(clip))
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "pip install 'zoo-models[video]'" in refused.stderr

    venv.install({"video"})
    predicted = venv.run("zoo", "predict", "convlstm-moving-digits", str(clip), "--json")
    assert predicted.returncode == 0, predicted.stderr
    assert "needs onnx" in predicted.stderr  # its onnxruntime default waits for the export extra
    forecast = json.loads(predicted.stdout)
    assert forecast["model"] == "convlstm-moving-digits" and forecast["task"] == "video-forecasting"

    venv.install({"video", "export"})
    exported = venv.run(
        "zoo", "export", "convlstm-moving-digits", "--random", "--json", "-o", "onnx"
    )
    assert exported.returncode == 0, exported.stderr
    assert (venv.home / "onnx" / "model.onnx").is_file()
    assert venv.pip("check").returncode == 0
    assert not venv.imports("pytest") and not venv.imports("timm")
