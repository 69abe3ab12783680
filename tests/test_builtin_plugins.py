"""Every built-in plugin passes the conformance kit, exactly as a third-party plugin must.

One test per (item, check) of every plugin the ``zoo`` distribution registers,
with the architectures' small test configs. What a built-in architecture cannot
pass it declares in its own ``expected_failures``, with the reason; pytest shows
those as xfail.
"""

from __future__ import annotations

import pytest

from zoo.registry import Registry
from zoo.testing import ArchitectureItem, CardItem, plugin_checks

BUILT_IN = Registry.from_entry_points()
PLUGINS = sorted(
    name for name, report in BUILT_IN.reports.items() if report.distribution == "zoo-models"
)
# Run with the heavy cases (CI runs them too), for the time they take, not to skip them:
# I3D cannot be made small (the Inception's widths, at least 193 pixels and 9 frames), and
# these are the only exports of every built-in card's small model (tests/test_export.py
# exports three small ones in the default run and every card's full size).
HEAVY_CHECKS = {"exports_to_onnx", "runs_on_openvino"}
HEAVY_PLUGIN_CHECKS = {
    ("i3d", "forward_matches_card"),
    ("i3d", "state_dict_round_trip"),
    ("i3d", "predicts"),  # and its flow stream computes TV-L1 optical flow: a minute a clip
}


def marked(item, check):
    if check.name in HEAVY_CHECKS or (item.plugin, check.name) in HEAVY_PLUGIN_CHECKS:
        return pytest.param(item, check, marks=pytest.mark.heavy)
    return pytest.param(item, check)


PAIRS = [pair for name in PLUGINS for pair in plugin_checks(name, registry=BUILT_IN)]


@pytest.mark.parametrize(("item", "check"), [marked(*pair) for pair in PAIRS], ids=str)
def test_a_built_in_plugin_keeps_the_zoo_contract(item, check):
    check(item)


def test_the_kit_runs_on_every_built_in_card_and_architecture():
    checked_cards = {item.card.name for item, _ in PAIRS if isinstance(item, CardItem)}
    checked_architectures = {
        item.architecture.name for item, _ in PAIRS if isinstance(item, ArchitectureItem)
    }

    assert checked_cards == {card.name for card in BUILT_IN.cards()}
    assert checked_architectures == {a.name for a in BUILT_IN.architectures()}
