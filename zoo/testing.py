"""The conformance kit: the contracts every zoo plugin keeps, as small named checks.

A plugin works everywhere the built-in ones do only if it keeps promises no type
checker sees: its module imports without torch, its card counts the parameters
the model really has, its converters give state dicts that load strictly, its
forward returns what the card says. Each promise is one check, run on one item
(the plugin, one of its architectures or one of its cards), in the spirit of
scikit-learn's ``parametrize_with_checks``::

    import pytest
    from zoo.testing import plugin_checks

    @pytest.mark.parametrize(("item", "check"), plugin_checks("r2plus1d"), ids=str)
    def test_the_plugin_keeps_the_zoo_contract(item, check):
        check(item)

Outside pytest, ``check_plugin("r2plus1d")`` runs them all and raises one
:class:`PluginCheckError` listing every failure (or returns the typed report).

Models are built from the architecture's ``test_config``, a small model of the
same code paths, so the kit runs in seconds; the parameter count alone uses the
card's own config, on the meta device. An architecture that cannot pass a check
says so, with the reason, in ``Architecture.expected_failures``: the check is
then reported as an expected failure (xfail), never skipped, and as an error
once it passes, so a stale excuse does not outlive the problem.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel

from zoo.architecture import Architecture
from zoo.cards import Card
from zoo.conformance import ContractError, PluginCheckError
from zoo.conformance import models as model_checks
from zoo.conformance import plugins as plugin_level
from zoo.errors import ArgumentError, UnknownNameError
from zoo.registry import PluginReport, Registry, default_registry, using_registry

__all__ = [
    "CHECK_NAMES",
    "ArchitectureItem",
    "CardItem",
    "Check",
    "CheckResult",
    "ContractError",
    "Item",
    "PluginCheckError",
    "PluginCheckReport",
    "check_plugin",
    "plugin_checks",
]

NOT_INSTALLED = (
    " (not installed: no package here declares a `zoo` entry point of that name; install "
    "the plugin's package first, e.g. `pip install -e .` beside its pyproject.toml, and "
    "`zoo plugins` lists it)"
)
PLUGIN_CHECKS: tuple[Callable[[Item], None], ...] = (
    plugin_level.imports_without_torch,
    plugin_level.registers_cleanly,
    plugin_level.names_are_unique,
)
ARCHITECTURE_CHECKS: tuple[Callable[[ArchitectureItem], None], ...] = (
    plugin_level.declarations_resolve,
    model_checks.builds_on_meta,
    model_checks.converters_load_strictly,
)
CARD_CHECKS: tuple[Callable[[CardItem], None], ...] = (
    model_checks.parameters_match_card,
    model_checks.forward_matches_card,
    model_checks.state_dict_round_trip,
    model_checks.exports_to_onnx,
    model_checks.runs_on_openvino,
    model_checks.predicts,
    model_checks.hf_model_card_round_trip,
)
OFFLINE_CARD_CHECKS = tuple(
    check for check in CARD_CHECKS if check is not model_checks.runs_on_openvino
)
CHECK_NAMES: tuple[str, ...] = tuple(
    check.__name__ for check in (*PLUGIN_CHECKS, *ARCHITECTURE_CHECKS, *CARD_CHECKS)
)


@dataclass(frozen=True)
class Item:
    """What one check runs on: a plugin, or (the subclasses) one of its architectures or cards."""

    plugin: str
    registry: Registry = field(repr=False, compare=False)

    def __str__(self) -> str:
        return self.plugin

    @property
    def report(self) -> PluginReport:
        return self.registry.reports[self.plugin]

    def own_cards(self) -> list[Card]:
        return [self.registry.card(f"{self.plugin}:{name}") for name in self.report.cards]


@dataclass(frozen=True)
class ArchitectureItem(Item):
    """One architecture of the plugin."""

    architecture: Architecture = field(kw_only=True)

    def __str__(self) -> str:
        return f"{self.plugin}/{self.architecture.name}"


@dataclass(frozen=True)
class CardItem(ArchitectureItem):
    """One card of the plugin, with the architecture it is built with."""

    card: Card = field(kw_only=True)

    def __str__(self) -> str:
        return f"{self.plugin}/{self.card.name}"


ItemT = TypeVar("ItemT", bound=Item)
PartT = TypeVar("PartT", bound=ArchitectureItem)


Status = Literal["passed", "failed", "xfailed", "xpassed"]


class CheckResult(BaseModel):
    """One check on one item; xfailed/xpassed: it failed/passed where it was declared to fail."""

    item: str
    check: str
    status: Status
    message: str = ""


class PluginCheckReport(BaseModel):
    """Every check of one plugin; ``failures`` are what :func:`check_plugin` raises for."""

    plugin: str
    results: list[CheckResult]

    @property
    def failures(self) -> list[CheckResult]:
        return [result for result in self.results if result.status in ("failed", "xpassed")]


@dataclass(frozen=True)
class Check(Generic[ItemT]):
    """One named contract; ``expected_failure`` is the architecture's reason for not keeping it."""

    name: str
    function: Callable[[ItemT], None] = field(repr=False)
    expected_failure: str | None = None

    def __str__(self) -> str:
        return self.name

    def __call__(self, item: ItemT) -> None:
        """Run under pytest: a failure raises with its traceback; a declared one is an xfail."""
        if self.expected_failure is None:
            self._check(item)
            return
        try:
            self._check(item)
        except Exception as error:
            import pytest

            pytest.xfail(f"{self.expected_failure} ({_first_line(error)})")
        raise ContractError(self._passed_unexpectedly(item))

    def _check(self, item: ItemT) -> None:
        # Under the item's registry: a model made of other zoo models (a video model
        # around an image backbone) must find them where the plugin under test is.
        with using_registry(item.registry):
            self.function(item)

    def run(self, item: ItemT) -> CheckResult:
        """Run without pytest and say how it went."""
        try:
            self._check(item)
        except Exception as error:
            if self.expected_failure is not None:
                reason = f"{self.expected_failure} ({_first_line(error)})"
                return self._result(item, "xfailed", reason)
            return self._result(item, "failed", f"{type(error).__name__}: {error}")
        if self.expected_failure is not None:
            return self._result(item, "xpassed", self._passed_unexpectedly(item))
        return self._result(item, "passed")

    def _result(self, item: Item, status: Status, message: str = "") -> CheckResult:
        return CheckResult(item=str(item), check=self.name, status=status, message=message)

    def _passed_unexpectedly(self, item: Item) -> str:
        return (
            f"{item}: {self.name} passes, but the architecture declares it an expected failure "
            f"({self.expected_failure!r}); remove it from expected_failures"
        )


def plugin_checks(
    plugin: str, *, registry: Registry | None = None
) -> list[tuple[Item, Check[Any]]]:
    """(item, check) pairs for every contract of ``plugin`` (its entry-point name).

    A plugin that fails to load still gets its plugin-level checks, which fail
    and say why; nothing is skipped for being broken.
    """
    if not isinstance(plugin, str) or not plugin:
        raise ArgumentError(
            f"plugin_checks expects a plugin's entry-point name (a non-empty str), found {plugin!r}"
        )
    registry = registry or default_registry()
    if plugin not in registry.reports:
        close = difflib.get_close_matches(plugin, list(registry.reports), n=3)
        raise UnknownNameError("plugin", plugin, close, hint=NOT_INSTALLED)
    item = Item(plugin, registry)
    pairs: list[tuple[Item, Check[Any]]] = [
        (item, Check(function.__name__, function)) for function in PLUGIN_CHECKS
    ]
    for name in item.report.architectures:
        architecture = registry.architecture(f"{plugin}:{name}")
        pairs += _checks(
            ArchitectureItem(plugin, registry, architecture=architecture), ARCHITECTURE_CHECKS
        )
    card_checks = CARD_CHECKS if _openvino_installed() else OFFLINE_CARD_CHECKS
    for card in item.own_cards():
        architecture = registry.architecture(card.architecture)
        pairs += _checks(
            CardItem(plugin, registry, architecture=architecture, card=card), card_checks
        )
    return pairs


def _openvino_installed() -> bool:
    """``runs_on_openvino`` is a check only where OpenVINO is installed to run it."""
    import importlib.util

    return importlib.util.find_spec("openvino") is not None


def check_plugin(plugin: str, *, registry: Registry | None = None) -> PluginCheckReport:
    """Run every check of ``plugin``; raise one :class:`PluginCheckError` listing each failure."""
    results = [check.run(item) for item, check in plugin_checks(plugin, registry=registry)]
    report = PluginCheckReport(plugin=plugin, results=results)
    if report.failures:
        lines = [f"{r.item} {r.check}: {r.message}" for r in report.failures]
        raise PluginCheckError(
            f"plugin {plugin!r} fails {len(lines)} of {len(results)} checks:\n" + "\n".join(lines)
        )
    return report


def _checks(
    item: PartT, functions: tuple[Callable[[PartT], None], ...]
) -> list[tuple[PartT, Check[PartT]]]:
    declared = item.architecture.expected_failures
    return [
        (item, Check(function.__name__, function, declared.get(function.__name__)))
        for function in functions
    ]


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"
