"""Checks of a plugin as the listing path sees it: no torch, clean registration, own names.

These never build a model: they are what ``zoo list`` and ``zoo plugins`` rely on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING

from zoo.architecture import import_string
from zoo.conformance import ContractError

if TYPE_CHECKING:
    from zoo.testing import ArchitectureItem, Item

PROBE_TIMEOUT_S = 120
# Run in a fresh interpreter: load the plugin as its entry point does, call its hooks as
# `zoo list` does, and name the line that first imported torch, if any did.
PROBE = r"""
import json, sys, traceback
from importlib.metadata import EntryPoint

class FirstTorchImport:
    where = None

    def find_spec(self, name, path=None, target=None):
        if name == "torch" and FirstTorchImport.where is None:
            stack = traceback.extract_stack()[:-1]
            probe = max(i for i, frame in enumerate(stack) if frame.filename == "<string>")
            FirstTorchImport.where = " -> ".join(
                f"{frame.filename}:{frame.lineno} ({frame.line})"
                for frame in stack[probe + 1:]
                if not frame.filename.startswith("<frozen") and "importlib" not in frame.filename
            )
        return None

sys.meta_path.insert(0, FirstTorchImport())
import warnings
warnings.simplefilter("ignore")
from zoo.registry import Registry
name, value = sys.argv[1], sys.argv[2]
plugin = EntryPoint(name=name, value=value, group="zoo").load()
Registry.from_plugins({name: plugin})
print(json.dumps({"torch": "torch" in sys.modules, "where": FirstTorchImport.where}))
"""


def imports_without_torch(item: Item) -> None:
    """Importing the plugin and calling its hooks (as ``zoo list`` does) never imports torch."""
    module = item.report.module
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, sys.path))}
    result = subprocess.run(
        [sys.executable, "-c", PROBE, item.plugin, module],
        capture_output=True,
        text=True,
        env=environment,
        timeout=PROBE_TIMEOUT_S,
    )
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise ContractError(f"plugin {item.plugin!r} ({module}) does not import: {last}")
    found = json.loads(result.stdout.strip().splitlines()[-1])
    if found["torch"]:
        raise ContractError(
            f"importing plugin {item.plugin!r} ({module}) and calling its hooks imported torch, "
            f"first at {found['where']}; every `zoo list` pays for that (about 3 s). Import "
            "torch only in the modules the builder and converters name by import string"
        )


def registers_cleanly(item: Item) -> None:
    """The hooks return valid architectures and cards: no import error, no warning, no rejects."""
    report = item.report
    problems = list(report.errors)
    if report.status != "loaded":
        problems.insert(0, f"status is {report.status!r}, expected 'loaded'")
    elif not report.hooks:
        problems.append("it implements neither zoo_architectures nor zoo_cards")
    elif not (report.architectures or report.cards):
        problems.append("its hooks register no architecture and no card")
    if problems:
        raise ContractError(
            f"plugin {item.plugin!r} does not register cleanly: " + "; ".join(problems)
        )


def names_are_unique(item: Item) -> None:
    """No architecture, model name or alias of this plugin is registered by another plugin."""
    registry, plugin = item.registry, item.plugin
    claimed = [("architecture", name) for name in item.report.architectures]
    for card in item.own_cards():
        claimed += [("model", name) for name in (card.name, *card.aliases)]
    taken = []
    for kind, name in claimed:
        others = [owner for owner in registry.claimants(kind, name) if owner != plugin]
        if others:
            taken.append(f"{kind} {name!r} (also registered by {', '.join(others)})")
    if taken:
        raise ContractError(
            f"plugin {plugin!r} registers names other plugins register too: {'; '.join(taken)}; "
            "a bare name that two plugins claim resolves to neither, so choose names of your own"
        )


def declarations_resolve(item: ArchitectureItem) -> None:
    """Every import string resolves, every converter has an example, every opt-out is known."""
    from zoo.testing import CHECK_NAMES

    architecture = item.architecture
    problems = []
    specs = {
        "builder": architecture.builder,
        **{f"converters[{k!r}]": v for k, v in architecture.converters.items()},
        **{f"converter_examples[{k!r}]": v for k, v in architecture.converter_examples.items()},
    }
    if architecture.features.pooled is not None:
        specs["features.pooled"] = architecture.features.pooled
    for label, spec in specs.items():
        try:
            import_string(spec)
        except Exception as error:
            problems.append(f"{label} {spec!r} does not import: {type(error).__name__}: {error}")
    for layout in sorted(set(architecture.converters) - set(architecture.converter_examples)):
        problems.append(
            f"converter {layout!r} has no converter_examples entry: name a function "
            "(config) -> a state dict in that layout, so the kit can prove the converter"
        )
    for layout in sorted(set(architecture.converter_examples) - set(architecture.converters)):
        problems.append(f"converter_examples[{layout!r}] names a layout with no converter")
    for name, reason in architecture.expected_failures.items():
        if name not in CHECK_NAMES:
            problems.append(
                f"expected_failures names no check: {name!r}; the checks are "
                f"{', '.join(CHECK_NAMES)}"
            )
        elif not reason.strip():
            problems.append(f"expected_failures[{name!r}] gives no reason")
    if problems:
        raise ContractError(f"architecture {architecture.name!r}: " + "; ".join(problems))
