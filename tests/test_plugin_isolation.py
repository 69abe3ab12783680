"""A plugin whose import fails in any way is reported, and the rest of the zoo keeps working.

A plugin's module is third-party code run at discovery time: it may raise any exception,
hold a syntax error in a submodule it imports, or call ``sys.exit()``. Each broken plugin
is laid out as an installed distribution (dist-info + module) and found through the real
entry-point group, first in this process, then by ``python -m zoo`` in a subprocess.
Only ``KeyboardInterrupt`` is let through: the user asked to stop.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import install_distribution

import zoo
from zoo.registry import Registry

PLUGIN = "broken"
MODULE = "zoo_broken_plugin"

# What the plugin's module does when imported, and (a regex of) the error its report must name.
FAILURES = {
    "import-error": ("import not_a_module\n", "ModuleNotFoundError: No module named 'not_a_mod"),
    "runtime-error": ("raise RuntimeError('no GPU driver found')\n", "RuntimeError: no GPU driver"),
    "value-error": ("raise ValueError('bad setting: 3')\n", "ValueError: bad setting: 3"),
    "syntax-error-in-a-submodule": (
        f"from {MODULE} import helpers\n",
        r"SyntaxError: .* \(helpers\.py, line 1\)",
    ),
    "sys-exit": ("import sys\nsys.exit(3)\n", "SystemExit: 3"),
    "other-base-exception": (
        "class Abort(BaseException):\n    pass\nraise Abort('gave up')\n",
        "Abort: gave up",
    ),
}


def install_broken_plugin(site: Path, source: str) -> Path:
    """A distribution whose ``zoo`` entry point is a package that runs ``source`` on import."""
    install_distribution(site, "zoo-broken", {PLUGIN: MODULE}, {})
    package = site / MODULE
    package.mkdir()
    (package / "__init__.py").write_text(source)
    (package / "helpers.py").write_text("def helper(:\n    pass\n")
    return site


@pytest.fixture
def broken_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Installs a broken plugin on this process's path (a failed import leaves no module)."""

    def install(source: str) -> Path:
        site = install_broken_plugin(tmp_path, source)
        monkeypatch.syspath_prepend(str(site))
        return site

    return install


@pytest.mark.parametrize(("source", "error"), FAILURES.values(), ids=FAILURES.keys())
def test_a_plugin_whose_import_fails_in_any_way_is_reported_and_the_rest_works(
    broken_site, source, error
):
    healthy = [card.name for card in Registry.from_entry_points().cards()]
    broken_site(source)

    with pytest.warns(zoo.ZooPluginWarning, match=f"zoo plugin '{PLUGIN}': import failed"):
        registry = Registry.from_entry_points()

    report = registry.reports[PLUGIN]
    assert report.status == "failed"
    assert report.distribution == "zoo-broken"
    assert len(report.errors) == 1 and re.search(error, report.errors[0])
    assert healthy and [card.name for card in registry.cards()] == healthy


def test_ctrl_c_during_a_plugin_import_still_stops_the_zoo(broken_site):
    broken_site("raise KeyboardInterrupt\n")

    with pytest.raises(KeyboardInterrupt):
        Registry.from_entry_points()


def zoo_cli(site: Path, *args: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run(
        [sys.executable, "-m", "zoo", *args], capture_output=True, text=True, env=environment
    )


@pytest.mark.parametrize("failure", ["runtime-error", "sys-exit"])
def test_zoo_list_and_plugins_survive_a_plugin_that_raises_or_exits(tmp_path, failure):
    source, error = FAILURES[failure]
    site = install_broken_plugin(tmp_path, source)

    listing = zoo_cli(site, "list", "--json")
    plugins = zoo_cli(site, "plugins", "--json")

    for result in (listing, plugins):
        assert result.returncode == 0, result.stderr
        assert re.search(f"warning: zoo plugin '{PLUGIN}': import failed: {error}", result.stderr)
        assert "Traceback" not in result.stderr
    assert [row["name"] for row in json.loads(listing.stdout)] == [
        card.name for card in Registry.from_entry_points().cards()
    ]
    reports = {report["name"]: report for report in json.loads(plugins.stdout)}
    assert reports[PLUGIN]["status"] == "failed"
    assert {r["status"] for name, r in reports.items() if name != PLUGIN} == {"loaded"}
