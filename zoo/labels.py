"""Named label sets shipped with zoo (one class name per line, in the checkpoints' order).

Sources and licenses of each list are in the NOTICE file at the project root.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from zoo.errors import UnknownNameError


@cache
def available_label_sets() -> frozenset[str]:
    folder = files("zoo") / "labels"
    return frozenset(
        entry.name.removesuffix(".txt") for entry in folder.iterdir() if entry.name.endswith(".txt")
    )


@cache
def _read(name: str) -> tuple[str, ...]:
    text = (files("zoo") / "labels" / f"{name}.txt").read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def load_label_set(name: str) -> list[str]:
    """The class names of a shipped label set, index i being class i."""
    if name not in available_label_sets():
        shipped = ", ".join(sorted(available_label_sets()))
        raise UnknownNameError("label set", name, [], hint=f"; shipped sets: {shipped}")
    return list(_read(name))
