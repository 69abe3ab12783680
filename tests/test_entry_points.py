"""Entry-point discovery with real installed distributions, in subprocesses.

The example plugin is installed with pip into a private folder; broken plugins
are laid out as installed distributions by hand. Each subprocess sees the zoo,
its built-in plugins and whatever the folder adds, exactly as a user would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import install_distribution


def zoo_cli(*args: str, site: Path | None = None, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, **env}
    if site is not None:
        environment["PYTHONPATH"] = os.pathsep.join([str(site), environment.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "zoo", *args], capture_output=True, text=True, env=environment
    )


def plugin_reports(result: subprocess.CompletedProcess) -> dict[str, dict]:
    assert result.returncode == 0, result.stderr
    return {report["name"]: report for report in json.loads(result.stdout)}


def test_an_installed_third_party_plugin_is_discovered(example_site):
    reports = plugin_reports(zoo_cli("plugins", "--json", site=example_site))

    example = reports["r2plus1d"]
    assert example["status"] == "loaded"
    assert example["distribution"] == "zoo-example-plugin"
    assert example["version"] == "0.2.0"
    assert example["hooks"] == ["zoo_architectures", "zoo_cards"]
    assert example["cards"] == ["r2plus1d-18-kinetics400"]
    assert all(
        report["distribution"] == "zoo-models"
        for name, report in reports.items()
        if name != "r2plus1d"
    )


def test_the_example_plugins_model_loads_from_its_card(example_site):
    script = (
        "import torch, zoo\n"
        "with torch.device('meta'):\n"  # the whole R(2+1)D-18, its shapes without the compute
        "    model = zoo.load('r2plus1d-18', pretrained=False)\n"
        "    print(tuple(model(torch.zeros(2, 3, 16, 112, 112)).shape))\n"
    )
    environment = {**os.environ, "PYTHONPATH": str(example_site)}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=environment
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(2, 400)"


def test_a_plugin_that_fails_to_import_is_reported_and_the_zoo_works(tmp_path, example_site):
    install_distribution(
        tmp_path, "zoo-broken", {"broken": "zoo_broken"}, {"zoo_broken": "import not_a_module\n"}
    )
    site = Path(f"{tmp_path}{os.pathsep}{example_site}")

    plugins = zoo_cli("plugins", "--json", site=site)
    listing = zoo_cli("list", "--json", site=site)

    broken = plugin_reports(plugins)["broken"]
    assert broken["status"] == "failed"
    assert broken["distribution"] == "zoo-broken"
    assert (
        "import failed: ModuleNotFoundError: No module named 'not_a_module'" in broken["errors"][0]
    )
    assert "warning: zoo plugin 'broken': import failed" in plugins.stderr
    assert "r2plus1d-18-kinetics400" in [row["name"] for row in json.loads(listing.stdout)]


def test_a_plugin_that_claims_a_taken_card_name_is_reported(tmp_path, example_site):
    install_distribution(
        tmp_path,
        "zoo-copycat",
        {"copycat": "zoo_copycat"},
        {
            "zoo_copycat": """
                import zoo
                from importlib.resources import files

                @zoo.hookimpl
                def zoo_cards():
                    return [files("zoo_example_plugin") / "cards" / "r2plus1d-18-kinetics400.yaml"]
            """
        },
    )
    site = Path(f"{tmp_path}{os.pathsep}{example_site}")

    info = zoo_cli("info", "r2plus1d-18", site=site)
    qualified = zoo_cli("info", "copycat:r2plus1d-18", "--json", site=site)

    assert info.returncode == 1
    assert "registered by several plugins" in info.stderr
    assert "copycat:r2plus1d-18" in info.stderr and "r2plus1d:r2plus1d-18" in info.stderr
    assert json.loads(qualified.stdout)["name"] == "r2plus1d-18-kinetics400"


@pytest.mark.parametrize(
    ("env", "expected_loaded"),
    [
        ({"ZOO_PLUGINS": "r2plus1d"}, {"r2plus1d"}),
        ({"ZOO_PLUGINS": ""}, set()),
        ({"ZOO_PLUGINS": "r2plus1d,vit", "ZOO_DISABLE_PLUGINS": "vit"}, {"r2plus1d"}),
    ],
)
def test_the_environment_selects_plugins(example_site, env, expected_loaded):
    reports = plugin_reports(zoo_cli("plugins", "--json", site=example_site, **env))

    loaded = {name for name, report in reports.items() if report["status"] == "loaded"}
    assert loaded == expected_loaded
    assert all(
        report["status"] == "disabled" for name, report in reports.items() if name not in loaded
    )


def test_a_disabled_plugin_contributes_nothing(example_site):
    result = zoo_cli("list", "--json", site=example_site, ZOO_DISABLE_PLUGINS="r2plus1d")

    assert "r2plus1d-18-kinetics400" not in [row["name"] for row in json.loads(result.stdout)]
