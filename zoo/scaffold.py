"""``zoo new-plugin``: a plugin package that installs and passes the conformance kit as written.

The skeleton is the smallest complete plugin: a pyproject with the entry point,
a module with the config model and the two hooks, the network, a converter with
its example, a card and a test file that runs :mod:`zoo.testing`. The templates
live in ``zoo/templates/plugin``; the files are written into a temporary folder
beside the target and renamed into place at the end, so a failure leaves nothing.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from importlib.resources import files
from importlib.resources.abc import Traversable
from os import PathLike
from pathlib import Path
from string import Template

from pydantic import BaseModel

from zoo.errors import ScaffoldError
from zoo.registry import Registry, default_registry
from zoo.version import DISTRIBUTION, __version__

PLUGIN_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
TEMPLATE = ".tmpl"


class PluginSkeleton(BaseModel):
    """What ``new_plugin`` wrote: the names it derived and every file, relative to ``folder``."""

    name: str
    distribution: str
    module: str
    card: str
    folder: str
    files: list[str]


def new_plugin(
    name: str, output: str | PathLike[str], *, registry: Registry | None = None
) -> PluginSkeleton:
    """Write the package of plugin ``name`` into the folder ``output`` (new, or empty)."""
    names = _names(name, registry or default_registry())
    target = Path(output)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ScaffoldError(f"{target} exists and is not an empty folder; choose a new one")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    staging.chmod(0o777 & ~_umask())  # mkdtemp's folder is private; the package is not
    try:
        written = _render(files("zoo") / "templates" / "plugin", staging, names)
        if target.exists():
            target.rmdir()
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return PluginSkeleton(
        **{key: names[key] for key in ("name", "distribution", "module", "card")},
        folder=str(target),
        files=sorted(written),
    )


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _names(name: str, registry: Registry) -> dict[str, str]:
    """Every name the skeleton uses, derived from the plugin name; taken names are refused."""
    if not PLUGIN_NAME.match(name):
        raise ScaffoldError(
            f"plugin name {name!r} must be lowercase letters and digits, words joined by single "
            "hyphens, starting with a letter (e.g. 'slowfast' or 'x3d-m'): it becomes the "
            "entry point, the architecture and the module zoo_<name>"
        )
    taken = [
        f"{kind} {name!r}"
        for kind, owners in (
            ("plugin", [name] if name in registry.reports else []),
            ("architecture", registry.claimants("architecture", name)),
        )
        if owners
    ]
    if taken:
        raise ScaffoldError(
            f"{' and '.join(taken)} already exist in this zoo (`zoo plugins` lists them); "
            "a plugin needs a name of its own"
        )
    if f"zoo-{name}" == DISTRIBUTION:
        raise ScaffoldError(
            f"plugin name {name!r} would make the distribution {DISTRIBUTION}, zoo's own"
        )
    words = name.split("-")
    camel = "".join(word.capitalize() for word in words)
    module = "zoo_" + "_".join(words)
    return {
        "name": name,
        "distribution": f"zoo-{name}",
        "module": module,
        "card": f"{name}-example",
        "config_class": f"{camel}Config",
        "model_class": camel,
        "zoo_version": __version__,  # the plugin needs at least the zoo it was written against
    }


def _render(source: Traversable, folder: Path, names: dict[str, str]) -> list[str]:
    """Copy the template tree, substituting names in contents and in the paths below."""
    renamed = {
        "package": names["module"],
        f"card.yaml{TEMPLATE}": f"{names['card']}.yaml",
        f"test_plugin.py{TEMPLATE}": f"test_{names['module']}.py",
    }
    written = []
    for entry in source.iterdir():
        target = folder / renamed.get(entry.name, entry.name.removesuffix(TEMPLATE))
        if entry.is_dir():
            target.mkdir()
            written += [f"{target.name}/{path}" for path in _render(entry, target, names)]
        elif entry.name.endswith(TEMPLATE):
            text = Template(entry.read_text(encoding="utf-8")).substitute(names)
            target.write_text(text, encoding="utf-8")
            written.append(target.name)
    return written
