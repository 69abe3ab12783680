"""A griffe extension: the docstrings' Sphinx roles become links in the API reference.

zoo's docstrings name other objects as Sphinx does (:func:`load`, :class:`~zoo.Card`),
which reads well in the source and in ``help()``. Here each role is resolved in the scope
of the object whose docstring holds it: a name that resolves becomes an optional
cross-reference (a link where the reference renders that object, code elsewhere), and a
name that does not resolve is a warning, which ``mkdocs build --strict`` turns into a
failure, so a renamed function cannot leave a stale name behind in a docstring.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:func|class|meth|mod|attr|exc|data|obj):`(?P<target>[^`]+)`")
LOGGER = griffe.get_logger("zoo.docs.sphinx_roles")


class SphinxRoles(griffe.Extension):
    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        for obj in _objects(pkg):
            if obj.docstring is not None:
                obj.docstring.value = _linked(obj, obj.docstring.value)


def _linked(obj: griffe.Object, text: str) -> str:
    return ROLE.sub(lambda match: _link(obj, match), text)


def _objects(obj: griffe.Object) -> list[griffe.Object]:
    found = [obj]
    for member in obj.members.values():
        if not member.is_alias and isinstance(member, griffe.Object):
            found += _objects(member)
    return found


def _link(obj: griffe.Object, match: re.Match[str]) -> str:
    written = match["target"]
    target = written.removeprefix("~").removeprefix(".")
    title = target.rsplit(".", 1)[-1] if written.startswith("~") else target
    identifier = _resolve(obj, target)
    if identifier is None:
        LOGGER.warning(f"{obj.path}: the docstring names {written!r}, which does not resolve")
        return f"`{title}`"
    return f'<autoref identifier="{identifier}" optional><code>{title}</code></autoref>'


def _resolve(obj: griffe.Object, target: str) -> str | None:
    """The full path ``target`` names from ``obj``'s scope (its module's names, then up)."""
    head, _, rest = target.partition(".")
    package = obj.package
    try:
        found = package.modules_collection[target] if target.startswith(package.name) else None
    except KeyError:
        found = None
    if found is not None:
        return found.path
    scope: griffe.Object | None = obj
    while scope is not None:
        try:
            path = scope.resolve(head)
        except (griffe.NameResolutionError, AttributeError):
            scope = scope.parent
            continue
        return _existing(package, f"{path}.{rest}" if rest else path)
    return None


def _existing(package: griffe.Module, path: str) -> str | None:
    """``path`` if it names an object griffe loaded (or a name outside zoo: torch.Tensor)."""
    if not path.startswith(f"{package.name}."):
        return path
    try:
        package.modules_collection[path]
    except KeyError:
        return None
    return path
