"""Plugin discovery and the name registry.

Plugins are found through the ``zoo`` entry-point group (built-in ones too) and
registered with a pluggy PluginManager. Every step that runs a plugin's code is
isolated: an import error, a hook that raises, an invalid card or a name taken
twice is recorded in that plugin's :class:`PluginReport`, warned about once, and
the rest of the zoo keeps working.

Environment control, read when the registry is first built:

``ZOO_PLUGINS``
    Comma-separated allowlist of plugin (entry-point) names. Set but empty: load none.
``ZOO_DISABLE_PLUGINS``
    Comma-separated blocklist, applied after the allowlist.
"""

from __future__ import annotations

import difflib
import fnmatch
import os
import warnings
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from importlib.resources import files
from importlib.resources.abc import Traversable
from os import PathLike
from typing import Any

import pluggy
from pydantic import ValidationError

from zoo import hookspecs
from zoo.architecture import Architecture
from zoo.cards import Card, describe_validation_error
from zoo.errors import AmbiguousNameError, CardError, UnknownNameError

QUALIFIER = ":"


class ZooPluginWarning(UserWarning):
    """A plugin failed to import, raised in a hook, or registered something invalid or taken."""


@dataclass
class PluginReport:
    """What one plugin contributed, and what went wrong with it."""

    name: str
    module: str = ""
    distribution: str | None = None
    version: str | None = None
    status: str = "loaded"  # loaded | disabled | failed
    hooks: list[str] = field(default_factory=list)
    architectures: list[str] = field(default_factory=list)
    cards: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def to_data(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Entry:
    """A registered item and the plugin that registered it."""

    plugin: str
    item: Any


def _names_from_env(variable: str) -> set[str] | None:
    value = os.environ.get(variable)
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


def plugin_enabled(name: str) -> bool:
    allowed = _names_from_env("ZOO_PLUGINS")
    denied = _names_from_env("ZOO_DISABLE_PLUGINS") or set()
    return (allowed is None or name in allowed) and name not in denied


def new_plugin_manager() -> pluggy.PluginManager:
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    return manager


class Registry:
    """Architectures and cards from every registered plugin, by name.

    Build it from entry points with :meth:`from_entry_points`, or from plugin
    objects directly (tests, notebooks) with ``Registry.from_plugins({...})``.
    """

    def __init__(self, manager: pluggy.PluginManager, reports: dict[str, PluginReport]) -> None:
        self.manager = manager
        self.reports = reports
        self._architectures: dict[str, list[Entry]] = defaultdict(list)
        self._cards: dict[str, list[Entry]] = defaultdict(list)
        self._collect_architectures()
        self._collect_cards()
        self._check_collisions()
        self._warn()

    @classmethod
    def from_entry_points(cls) -> Registry:
        manager = new_plugin_manager()
        reports: dict[str, PluginReport] = {}
        for point in sorted(entry_points(group=hookspecs.PROJECT), key=lambda ep: ep.name):
            report = PluginReport(
                name=point.name,
                module=point.value,
                distribution=point.dist.name if point.dist else None,
                version=point.dist.version if point.dist else None,
            )
            if point.name in reports:
                reports[point.name].errors.append(
                    f"plugin name {point.name!r} is also declared by {report.distribution} "
                    f"({point.value}); only the first was loaded"
                )
                continue
            reports[point.name] = report
            if not plugin_enabled(point.name):
                report.status = "disabled"
                continue
            try:
                plugin = point.load()
            except KeyboardInterrupt:
                raise
            except BaseException as error:  # any failure, sys.exit() included; only Ctrl-C stops
                report.status = "failed"
                report.errors.append(f"import failed: {type(error).__name__}: {error}")
                continue
            _register(manager, plugin, report)
        return cls(manager, reports)

    @classmethod
    def from_plugins(cls, plugins: dict[str, object]) -> Registry:
        """A registry of the given plugin objects only, honouring the same checks."""
        manager = new_plugin_manager()
        reports = {}
        for name, plugin in plugins.items():
            reports[name] = PluginReport(
                name=name, module=getattr(plugin, "__name__", repr(plugin))
            )
            _register(manager, plugin, reports[name])
        return cls(manager, reports)

    def _results(self, hook_name: str) -> Iterator[tuple[str, Any]]:
        """Call one hook plugin by plugin, so one raising plugin costs only its own results."""
        for impl in getattr(self.manager.hook, hook_name).get_hookimpls():
            try:
                yield impl.plugin_name, list(impl.function() or ())
            except Exception as error:
                self.reports[impl.plugin_name].errors.append(
                    f"hook {hook_name} raised {type(error).__name__}: {error}"
                )

    def _collect_architectures(self) -> None:
        for plugin, items in self._results("zoo_architectures"):
            for item in items:
                if not isinstance(item, Architecture):
                    self.reports[plugin].errors.append(
                        f"zoo_architectures returned {type(item).__name__}, expected Architecture"
                    )
                    continue
                self._architectures[item.name].append(Entry(plugin, item))
                self.reports[plugin].architectures.append(item.name)

    def _collect_cards(self) -> None:
        for plugin, items in self._results("zoo_cards"):
            for source in items:
                try:
                    card = _as_card(source)
                    self._check_architecture(card)
                except CardError as error:
                    self.reports[plugin].errors.append(f"invalid card: {error}")
                    continue
                for name in (card.name, *card.aliases):
                    self._cards[name].append(Entry(plugin, card))
                self.reports[plugin].cards.append(card.name)

    def _check_architecture(self, card: Card) -> None:
        """A card must name a registered architecture and fit its config model."""
        try:
            architecture = self.architecture(card.architecture)
        except (UnknownNameError, AmbiguousNameError) as error:
            raise CardError(f"card {card.name!r}: {error}") from None
        try:
            architecture.validate_config(card.config)
        except ValidationError as error:
            problems = describe_validation_error(error).replace("; ", "; config.")
            raise CardError(f"card {card.name!r}: config.{problems}") from None

    def _check_collisions(self) -> None:
        for kind, table in (("architecture", self._architectures), ("model", self._cards)):
            for name, entries in table.items():
                if len({id(entry.item) for entry in entries}) < 2:
                    continue
                owners = ", ".join(sorted({entry.plugin for entry in entries}))
                for plugin in {entry.plugin for entry in entries}:
                    self.reports[plugin].errors.append(
                        f"{kind} name {name!r} is claimed by several registrations ({owners}); "
                        f"it resolves only by qualified name"
                    )

    def _warn(self) -> None:
        for report in self.reports.values():
            for error in report.errors:
                warnings.warn(
                    f"zoo plugin {report.name!r}: {error}", ZooPluginWarning, stacklevel=4
                )

    def _lookup(self, kind: str, table: dict[str, list[Entry]], name: str) -> Any:
        plugin, sep, short = name.rpartition(QUALIFIER)
        if sep:
            matches = [entry for entry in table.get(short, []) if entry.plugin == plugin]
        else:
            matches = table.get(name, [])
        distinct = {id(entry.item): entry for entry in matches}
        if len(distinct) == 1:
            return next(iter(distinct.values())).item
        if distinct:
            qualified = sorted(f"{entry.plugin}{QUALIFIER}{name}" for entry in distinct.values())
            raise AmbiguousNameError(kind, name, qualified)
        raise UnknownNameError(kind, name, difflib.get_close_matches(name, list(table), n=3))

    def architecture(self, name: str) -> Architecture:
        return self._lookup("architecture", self._architectures, name)

    def card(self, name: str) -> Card:
        return self._lookup("model", self._cards, name)

    def architectures(self) -> list[Architecture]:
        return [entries[0].item for _, entries in sorted(self._architectures.items())]

    def cards(
        self,
        pattern: str | None = None,
        *,
        task: str | None = None,
        architecture: str | None = None,
    ) -> list[Card]:
        """Every registered card once, filtered by fnmatch pattern (on name or alias)."""
        unique = {
            id(entry.item): entry.item for entries in self._cards.values() for entry in entries
        }
        selected = []
        for card in unique.values():
            names = (card.name, *card.aliases)
            if pattern and not any(fnmatch.fnmatchcase(n, pattern) for n in names):
                continue
            if task and card.task != task:
                continue
            if architecture and card.architecture != architecture:
                continue
            selected.append(card)
        return sorted(selected, key=lambda card: card.name)

    def claimants(self, kind: str, name: str) -> list[str]:
        """The plugins that registered ``name`` as an ``"architecture"`` or a ``"model"`` name."""
        table = self._architectures if kind == "architecture" else self._cards
        return sorted({entry.plugin for entry in table.get(name, [])})


def _register(manager: pluggy.PluginManager, plugin: object, report: PluginReport) -> None:
    try:
        manager.register(plugin, name=report.name)
        unknown = [
            caller.name for caller in manager.get_hookcallers(plugin) or [] if not caller.has_spec()
        ]
        if unknown:
            manager.unregister(plugin)
            raise pluggy.PluginValidationError(
                plugin, f"implements unknown hooks {unknown}; known: zoo_architectures, zoo_cards"
            )
    except (ValueError, pluggy.PluginValidationError) as error:
        report.status = "failed"
        report.errors.append(f"registration failed: {error}")
        return
    report.hooks = sorted(caller.name for caller in manager.get_hookcallers(plugin) or [])


def _as_card(source: Card | PathLike[str] | Traversable | dict) -> Card:
    if isinstance(source, Card):
        return source
    if isinstance(source, dict):
        return Card.from_data(source, origin=f"card {source.get('name', '<unnamed>')!r}")
    if isinstance(source, PathLike | Traversable | str):
        return Card.from_yaml(source)
    raise CardError(
        f"a card source must be a Card, dict or YAML path, found {type(source).__name__}"
    )


_default: Registry | None = None


def default_registry() -> Registry:
    """The process-wide registry, built from entry points on first use."""
    global _default
    if _default is None:
        _default = Registry.from_entry_points()
    return _default


def reset_default_registry() -> None:
    """Forget the process-wide registry, so the next use re-reads plugins and environment."""
    global _default
    _default = None


def yaml_cards(package: str, folder: str) -> list[Traversable]:
    """The ``*.yaml`` files in a package's data folder: what a plugin's ``zoo_cards`` returns."""
    root = files(package) / folder
    return sorted(
        (entry for entry in root.iterdir() if entry.name.endswith(".yaml")), key=lambda e: e.name
    )
