"""The README stays a five-minute read, and what it and the docs state follows the code.

The README is what zoo is, the two commands, a short tour and the model table; the
manual is the site in ``docs/``. These tests hold the README to that size, the model
tables to the registry, CI to the README's test command and the changelog to the version.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from conftest import ROOT

import zoo
from zoo.cards import Card

README = (ROOT / "README.md").read_text(encoding="utf-8")
CARDS = zoo.default_registry().cards()
FEATURE_EXTRAS_EXCLUDED = {"all", "dev", "docs"}  # not features: every one, the tools


def section(text: str, heading: str) -> str:
    start = text.index(f"\n{heading}\n") + len(heading) + 2
    end = text.find("\n## ", start)
    return text[start : end if end >= 0 else len(text)]


def table_rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("| `")]


def millions(count: int) -> str:
    return f"{count / 1e3:.0f}K" if count < 1e6 else f"{count / 1e6:.1f}M"


def readme_row(card: Card) -> str:
    metric = card.metrics[0] if card.metrics else None
    reported = f"{metric.name} {metric.value:g} ({metric.dataset})" if metric else "-"
    return f"| `{card.name}` | {card.task} | {millions(card.parameters)} | {reported} |"


def docs_row(card: Card) -> str:
    aliases = ", ".join(f"`{alias}`" for alias in card.aliases) or "-"
    checks = ", ".join(dict.fromkeys(str(part.integrity) for part in card.weights))
    return (
        f"| `{card.name}` | {aliases} | {card.architecture} | {card.task} | "
        f"{card.parameters:,} | {checks} |"
    )


def test_the_readme_is_read_in_five_minutes():
    assert len(README) <= 10_000


def test_the_readme_tour_is_at_most_thirty_lines_of_code():
    tour = section(README, "## A short tour")
    code = [
        line for line in tour.splitlines() if line.strip() and not line.startswith(("```", "<!--"))
    ]

    assert 0 < len(code) <= 30


def test_the_readme_model_table_lists_every_registered_model_as_the_registry_has_it():
    assert table_rows(section(README, "## Models")) == [readme_row(card) for card in CARDS]


def test_the_models_page_lists_every_registered_model_as_the_registry_has_it():
    page = (ROOT / "docs" / "models.md").read_text(encoding="utf-8")

    assert table_rows(page) == [docs_row(card) for card in CARDS]


def test_ci_runs_the_test_command_the_readme_gives_and_the_docs_and_type_checks():
    commands = re.findall(r"^\$ (.+)$", section(README, "## Set up and run"), flags=re.MULTILINE)
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()

    assert len(commands) == 2 and commands[1] in ci
    assert ".venv/bin/mypy" in ci and ".venv/bin/mkdocs build --strict" in ci


def test_the_changelog_keeps_a_changelog_and_its_latest_release_is_this_version():
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    releases = re.findall(r"^## \[([^\]]+)\](?: - (\d{4}-\d{2}-\d{2}))?$", changelog, re.M)

    assert changelog.startswith("# Changelog\n") and "Keep a Changelog" in changelog
    assert releases[0] == ("Unreleased", "")
    assert releases[1][0] == zoo.__version__ and releases[1][1]


def test_zoo_version_prints_the_installed_distributions_version():
    result = subprocess.run(
        [str(Path(sys.executable).with_name("zoo")), "--version"], capture_output=True, text=True
    )

    assert result.returncode == 0
    assert result.stdout.strip() == f"zoo-models, version {version('zoo-models')}"
    assert version("zoo-models") == zoo.__version__


def test_the_all_extra_installs_every_feature_extra():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    features = sorted(set(extras) - FEATURE_EXTRAS_EXCLUDED)

    (everything,) = extras["all"]
    assert everything.startswith("zoo-models[") and everything.endswith("]")
    assert sorted(everything.removeprefix("zoo-models[").removesuffix("]").split(",")) == features
    assert "zoo-models[all,docs]" in extras["dev"]


@pytest.mark.parametrize("extra", ["export", "video", "detection", "interpret", "all"])
def test_the_getting_started_page_names_every_extra(extra):
    page = (ROOT / "docs" / "getting-started.md").read_text(encoding="utf-8")

    assert f"| `{extra}` |" in page
