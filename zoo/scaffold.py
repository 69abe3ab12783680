"""``zoo new-plugin``: a plugin package that installs and passes the conformance kit as written.

The skeleton is the smallest complete plugin: a pyproject with the entry point,
a module with the config model and the two hooks, the network, a converter with
its example, a card and a test file that runs :mod:`zoo.testing`. The templates
live in ``zoo/templates/plugin``; the files are written into a hidden folder
beside the target and moved into place at the end (:func:`zoo.output.staged_folder`),
so a failure leaves nothing.
"""

from __future__ import annotations

import keyword
import re
from importlib.resources import files
from importlib.resources.abc import Traversable
from os import PathLike
from pathlib import Path
from string import Template

from pydantic import BaseModel

from zoo.errors import ScaffoldError
from zoo.output import output_errors, staged_folder
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
    name: str,
    output: str | PathLike[str],
    *,
    force: bool = False,
    registry: Registry | None = None,
) -> PluginSkeleton:
    """Write the package of plugin ``name`` into the folder ``output``.

    ``output`` follows :mod:`zoo.output`'s rule: new, empty or zoo's own files only;
    ``force`` writes beside a user's files and replaces none of them.
    """
    names = _names(name, registry or default_registry())
    target = Path(output)
    template = files("zoo") / "templates" / "plugin"
    with staged_folder(target, _render(template, None, names), force=force) as staging:
        with output_errors(target):
            written = _render(template, staging, names)
        _check_python(staging, written)
    return PluginSkeleton(
        **{key: names[key] for key in ("name", "distribution", "module", "card")},
        folder=str(target),
        files=sorted(written),
    )


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
    names = {
        "name": name,
        "distribution": f"zoo-{name}",
        "module": "zoo_" + "_".join(words),
        "card": f"{name}-example",
        "config_class": f"{camel}Config",
        "model_class": camel,
        "zoo_version": __version__,  # the plugin needs at least the zoo it was written against
    }
    for role in ("module", "config_class", "model_class"):
        derived = names[role]
        if not derived.isidentifier() or keyword.iskeyword(derived):
            raise ScaffoldError(
                f"plugin name {name!r} makes the {role.replace('_', ' ')} name {derived!r}, "
                "which is a Python keyword or not an identifier; the names derived from a "
                "plugin name must be Python identifiers that are not keywords (e.g. "
                f"'{name}-net')"
            )
    return names


def _render(source: Traversable, folder: Path | None, names: dict[str, str]) -> list[str]:
    """Copy the template tree, substituting names in contents and in the paths below; return
    the files (relative paths). With no ``folder``, only the paths: what would be written."""
    renamed = {
        "package": names["module"],
        f"card.yaml{TEMPLATE}": f"{names['card']}.yaml",
        f"test_plugin.py{TEMPLATE}": f"test_{names['module']}.py",
    }
    written = []
    for entry in source.iterdir():
        target_name = renamed.get(entry.name, entry.name.removesuffix(TEMPLATE))
        target = None if folder is None else folder / target_name
        if entry.is_dir():
            if target is not None:
                target.mkdir()
            written += [f"{target_name}/{path}" for path in _render(entry, target, names)]
        elif entry.name.endswith(TEMPLATE):
            if target is not None:
                text = Template(entry.read_text(encoding="utf-8")).substitute(names)
                target.write_text(text, encoding="utf-8")
            written.append(target_name)
    return written


def _check_python(folder: Path, written: list[str]) -> None:
    """Every module written compiles: a name that slipped through fails here, not at import."""
    for relative in written:
        if relative.endswith(".py"):
            source = (folder / relative).read_text(encoding="utf-8")
            try:
                compile(source, relative, "exec")
            except SyntaxError as error:
                raise ScaffoldError(
                    f"the skeleton's {relative} would not compile ({error.msg}, line "
                    f"{error.lineno}); choose another plugin name"
                ) from None
