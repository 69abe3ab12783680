"""Which plugins the environment turns on and off.

``ZOO_PLUGINS``
    Comma-separated allowlist of plugin (entry-point) names. Set but empty: load none.
``ZOO_DISABLE_PLUGINS``
    Comma-separated blocklist, applied after the allowlist.

A name in either variable that matches no installed plugin is warned about: a
typo there would otherwise hide every model without a word.
"""

from __future__ import annotations

import os
import warnings

from zoo.errors import ZooPluginWarning


def _names_from_env(variable: str) -> set[str] | None:
    value = os.environ.get(variable)
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


def plugin_enabled(name: str) -> bool:
    return disabled_by(name) is None


def disabled_by(name: str) -> str | None:
    """The environment variable that turns plugin ``name`` off, or None when it is enabled."""
    allowed = _names_from_env("ZOO_PLUGINS")
    if allowed is not None and name not in allowed:
        return "ZOO_PLUGINS"
    if name in (_names_from_env("ZOO_DISABLE_PLUGINS") or set()):
        return "ZOO_DISABLE_PLUGINS"
    return None


def warn_about_unknown_selection(installed: set[str]) -> None:
    """A plugin name in ZOO_PLUGINS/ZOO_DISABLE_PLUGINS that nothing installed answers to."""
    for variable in ("ZOO_PLUGINS", "ZOO_DISABLE_PLUGINS"):
        unknown = sorted((_names_from_env(variable) or set()) - installed)
        if unknown:
            warnings.warn(
                f"{variable} names {', '.join(repr(name) for name in unknown)}, which "
                f"{'matches' if len(unknown) == 1 else 'match'} no installed plugin "
                f"(installed: {', '.join(sorted(installed)) or 'none'})",
                ZooPluginWarning,
                stacklevel=3,
            )
