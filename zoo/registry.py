"""Plugin discovery and the name registry.

Plugins are found through the ``zoo`` entry-point group (built-in ones too) and
registered with a pluggy PluginManager. Every step that runs a plugin's code is
isolated: an import error, a hook that raises, an invalid card or a name taken
twice is recorded in that plugin's :class:`PluginReport`, warned about once, and
the rest of the zoo keeps working.

Plugins are turned on and off by ``ZOO_PLUGINS`` and ``ZOO_DISABLE_PLUGINS``
(:mod:`zoo.selection`), read when the registry is first built. A model or
architecture of a plugin turned off this way is reported as such, not as unknown.
"""

from __future__ import annotations

import difflib
import fnmatch
import sys
import warnings
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from contextvars import ContextVar
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from importlib.resources import files
from importlib.resources.abc import Traversable
from os import PathLike
from typing import Any, get_args

import pluggy

from zoo import hookspecs
from zoo.architecture import Architecture
from zoo.cards import Card, CardCheck, Task
from zoo.errors import (
    AmbiguousNameError,
    CardError,
    ConfigError,
    DisabledPluginError,
    UnknownNameError,
    ZooError,
    ZooPluginWarning,
)
from zoo.selection import disabled_by, plugin_enabled, warn_about_unknown_selection

QUALIFIER = ":"


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


def new_plugin_manager() -> pluggy.PluginManager:
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    return manager


class Registry:
    """Architectures and cards from every registered plugin, by name.

    Build it from entry points with :meth:`from_entry_points`, or from plugin
    objects directly (tests, notebooks) with ``Registry.from_plugins({...})``.
    """

    def __init__(
        self,
        manager: pluggy.PluginManager,
        reports: dict[str, PluginReport],
        disabled: dict[str, EntryPoint] | None = None,
    ) -> None:
        self.manager = manager
        self.reports = reports
        self.disabled = disabled or {}
        self._architectures: dict[str, list[Entry]] = defaultdict(list)
        self._cards: dict[str, list[Entry]] = defaultdict(list)
        with plugin_output_to_stderr():
            self._collect_architectures()
            self._collect_cards()
        self._check_collisions()
        self._warn()

    @classmethod
    def from_entry_points(cls) -> Registry:
        manager = new_plugin_manager()
        reports: dict[str, PluginReport] = {}
        disabled: dict[str, EntryPoint] = {}
        points = sorted(entry_points(group=hookspecs.PROJECT), key=lambda ep: ep.name)
        warn_about_unknown_selection({point.name for point in points})
        for point in points:
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
                disabled[point.name] = point
                continue
            try:
                with plugin_output_to_stderr():
                    plugin = point.load()
            except KeyboardInterrupt:
                raise
            except BaseException as error:  # any failure, sys.exit() included; only Ctrl-C stops
                report.status = "failed"
                report.errors.append(f"import failed: {type(error).__name__}: {error}")
                continue
            _register(manager, plugin, report)
        return cls(manager, reports, disabled)

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

    def check_files(self, files: list[str | PathLike[str]]) -> list[CardCheck]:
        """Every card file checked as a plugin's would be, and its ``parameters`` against its
        config built on the meta device (no weights); one file's failure stops nothing."""
        checks = []
        for file in files:
            try:
                card = Card.from_yaml(file)
                self.check_card(card)
                self.check_parameters(card)
            except CardError as error:
                problem = str(error).removeprefix(f"{file}: ")
                checks.append(CardCheck(file=str(file), valid=False, problem=problem))
            else:
                checks.append(CardCheck(file=str(file), valid=True))
        return checks

    def _collect_cards(self) -> None:
        for plugin, items in self._results("zoo_cards"):
            for source in items:
                try:
                    card = _as_card(source)
                    self.check_card(card)
                except CardError as error:
                    self.reports[plugin].errors.append(f"invalid card: {error}")
                    continue
                for name in (card.name, *card.aliases):
                    self._cards[name].append(Entry(plugin, card))
                self.reports[plugin].cards.append(card.name)

    def check_card(self, card: Card) -> None:
        """Raise CardError unless ``card`` names a registered architecture and fits its config.

        The registry runs this on every card it registers, and ``zoo card
        validate`` runs it on files, so both accept and refuse the same cards
        with the same message.
        """
        try:
            self.architecture(card.architecture).validate_config(card.config)
        except (UnknownNameError, AmbiguousNameError, ConfigError) as error:
            raise CardError(f"card {card.name!r}: {error}") from None

    def check_parameters(self, card: Card) -> None:
        """Raise CardError unless the card's config builds exactly ``parameters`` parameters.

        The model is built on the meta device (structure only, no memory, no weights); this
        imports torch, so discovery never runs it, only ``zoo card validate`` and the kit.
        """
        from zoo.loading import count_parameters, empty_model

        try:
            with using_registry(self):
                found = count_parameters(
                    empty_model(self.architecture(card.architecture), card.config)
                )
        except ZooError as error:
            raise CardError(
                f"card {card.name!r}: building it on the meta device failed: {error}"
            ) from None
        if found != card.parameters:
            raise CardError(
                f"card {card.name!r}: parameters is {card.parameters:,}, but its config builds "
                f"{found:,} ({found - card.parameters:+,}); write the built model's count"
            )

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
        owner = self._disabled_owner(kind, name)
        if owner is not None:
            raise DisabledPluginError(kind, name, owner, disabled_by(owner) or "the environment")
        raise UnknownNameError(kind, name, difflib.get_close_matches(name, list(table), n=3))

    def _disabled_owner(self, kind: str, name: str) -> str | None:
        """The disabled plugin that would register ``name``, asked only when a lookup fails."""
        hook = "zoo_architectures" if kind == "architecture" else "zoo_cards"
        for plugin_name, point in sorted(self.disabled.items()):
            if name in _names_provided(point, hook):
                return plugin_name
        return None

    def architecture(self, name: str) -> Architecture:
        checked = _checked_name(name, "architecture")
        return self._lookup("architecture", self._architectures, checked)

    def card(self, name: str) -> Card:
        return self._lookup("model", self._cards, _checked_name(name, "model"))

    def plugin_version(self, architecture: Architecture) -> str | None:
        """The installed version of the plugin that registered ``architecture``, if known."""
        for entries in self._architectures.values():
            for entry in entries:
                if entry.item is architecture:
                    return self.reports[entry.plugin].version
        return None

    def architectures(self) -> list[Architecture]:
        return [entries[0].item for _, entries in sorted(self._architectures.items())]

    def cards(
        self,
        pattern: str | None = None,
        *,
        task: str | None = None,
        architecture: str | None = None,
    ) -> list[Card]:
        """Every registered card once, filtered by fnmatch pattern (on name or alias).

        An unknown ``task`` or ``architecture`` is an error listing the known
        ones: a typo must not look like an empty zoo.
        """
        unique = {
            id(entry.item): entry.item for entries in self._cards.values() for entry in entries
        }
        _check_filter("task", task, set(get_args(Task)))
        known_architectures = set(self._architectures) | {c.architecture for c in unique.values()}
        _check_filter("architecture", architecture, known_architectures)
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


@contextmanager
def plugin_output_to_stderr() -> Iterator[None]:
    """What a plugin prints while it is imported or its hooks run goes to stderr.

    Discovery runs before every command's output, so a plugin's ``print`` on stdout
    would corrupt ``zoo list --json`` and every other machine-readable answer.
    """
    sys.stdout.flush()
    with redirect_stdout(sys.stderr):
        yield


def _check_filter(kind: str, value: str | None, known: set[str]) -> None:
    if value is not None and value not in known:
        raise UnknownNameError(
            kind,
            value,
            difflib.get_close_matches(value, sorted(known), n=3),
            hint=f"; known {kind}s: {', '.join(sorted(known)) or 'none'}",
        )


def _checked_name(name: Any, kind: str) -> str:
    if not isinstance(name, str) or not name:
        raise UnknownNameError(kind, str(name), [], hint=f" (a {kind} name is a non-empty string)")
    return name


def _names_provided(point: EntryPoint, hook: str) -> set[str]:
    """Names a disabled plugin's hook would register; empty when anything in it fails."""
    try:
        with plugin_output_to_stderr():
            items = list(getattr(point.load(), hook)() or ())
    except (Exception, SystemExit):  # a disabled plugin may be disabled because it is broken
        return set()
    names: set[str] = set()
    for item in items:
        if isinstance(item, Architecture):
            names.add(item.name)
            continue
        try:
            card = _as_card(item)
        except CardError:
            continue
        names.update((card.name, *card.aliases))
    return names


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


_in_use: ContextVar[Registry | None] = ContextVar("zoo_registry_in_use", default=None)


@contextmanager
def using_registry(registry: Registry) -> Iterator[Registry]:
    """Make ``registry`` the one :func:`current_registry` returns while building a model.

    ``zoo.load(..., registry=r)`` and ``zoo.build(..., registry=r)`` build inside
    this, so an architecture made of other zoo models (a video model around an
    image backbone) finds those models in ``r``, not in the default registry.
    """
    token = _in_use.set(registry)
    try:
        yield registry
    finally:
        _in_use.reset(token)


def current_registry() -> Registry:
    """The registry of the build in progress, else the process-wide default one."""
    return _in_use.get() or default_registry()


def yaml_cards(package: str, folder: str) -> list[Traversable]:
    """The ``*.yaml`` files in a package's data folder: what a plugin's ``zoo_cards`` returns."""
    root = files(package) / folder
    return sorted(
        (entry for entry in root.iterdir() if entry.name.endswith(".yaml")), key=lambda e: e.name
    )
