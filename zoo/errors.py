"""The errors zoo raises. Each message names what was expected and what was found."""

from __future__ import annotations


class ZooError(Exception):
    """Base class of every error zoo raises on purpose."""


class UnknownNameError(ZooError, KeyError):
    """A model, alias or architecture name that nothing registered."""

    def __init__(self, kind: str, name: str, suggestions: list[str]) -> None:
        hint = f"; did you mean {', '.join(repr(s) for s in suggestions)}?" if suggestions else ""
        super().__init__(f"unknown {kind} {name!r}{hint} (`zoo list` shows every {kind})")
        self.name = name
        self.suggestions = suggestions

    def __str__(self) -> str:
        return str(self.args[0])


class AmbiguousNameError(ZooError, KeyError):
    """A name claimed by more than one plugin: zoo never picks one silently."""

    def __init__(self, kind: str, name: str, qualified: list[str]) -> None:
        super().__init__(
            f"{kind} name {name!r} is registered by several plugins; choose one with its "
            f"qualified name ({', '.join(qualified)}) or disable the others with "
            "ZOO_DISABLE_PLUGINS"
        )
        self.name = name
        self.qualified = qualified

    def __str__(self) -> str:
        return str(self.args[0])


class CardError(ZooError, ValueError):
    """A model card that does not validate; the message carries the file and field path."""


class WeightsError(ZooError, ValueError):
    """Weights that cannot be used: wrong hash, corrupt file, keys or shapes that do not match."""


class ScaffoldError(ZooError, ValueError):
    """A plugin skeleton that cannot be written: a bad name, a taken name, a folder in the way."""
