"""``zoo convert``, ``push``, ``pull`` and ``cache`` through the CLI, against the loopback Hub."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from test_weights import (  # noqa: F401  (fixtures)
    MODEL,
    assert_state,
    card_data,
    hub,
    pickled,
    registry_with,
    tiny,
    upstream_state,
    zoo_state,
)

import zoo
from zoo.cli import main


@pytest.fixture
def cli_registry(tiny, monkeypatch):  # noqa: F811
    """The CLI's default registry replaced by one holding the tiny plugin and a pickle card."""
    registry = registry_with(
        card_data({"url": "https://example.org/x.pth", "format": "pickle", "layout": "upstream"})
    )
    monkeypatch.setattr("zoo.registry._default", registry)
    return registry


def test_convert_push_pull_and_cache(cli_registry, hub, tmp_path, monkeypatch):  # noqa: F811
    checkpoint = tmp_path / "upstream.pth"
    checkpoint.write_bytes(pickled({"state_dict": upstream_state(2), "epoch": 1}))
    runner = CliRunner()
    out = tmp_path / "out"

    converted = runner.invoke(
        main, ["convert", "tiny-model", "--checkpoint", str(checkpoint), "-o", str(out)]
    )
    assert converted.exit_code == 0, converted.output
    assert f"wrote {out / MODEL}" in converted.output

    pushed = runner.invoke(main, ["push", str(out), "--repo", "someone/tiny"])
    assert pushed.exit_code == 0, pushed.output
    assert "hf-hub:someone/tiny@" in pushed.output

    model = zoo.load("hf-hub:someone/tiny", registry=cli_registry)
    assert_state(model, zoo_state(2))

    published = registry_with(card_data({"repo_id": "someone/tiny"}, name="tiny-hub"))
    monkeypatch.setattr("zoo.registry._default", published)
    pulled = runner.invoke(main, ["pull", "tiny-hub"])
    assert pulled.exit_code == 0, pulled.output
    assert "tiny-hub: " in pulled.output

    listed = runner.invoke(main, ["cache", "--json"])
    assert listed.exit_code == 0, listed.output
    repos = {repo["repo"]: repo for repo in json.loads(listed.output)["hub"]}
    assert repos["someone/tiny"]["files"] >= 2


def test_convert_reports_a_wrong_layout(cli_registry, tmp_path):
    checkpoint = tmp_path / "upstream.pth"
    checkpoint.write_bytes(pickled(upstream_state(0)))
    result = CliRunner().invoke(
        main,
        [
            "convert",
            "tiny-model",
            "--checkpoint",
            str(checkpoint),
            "--layout",
            "timm",
            "-o",
            str(tmp_path / "o"),
        ],
    )
    assert result.exit_code == 1
    assert "no converter for layout 'timm'" in result.output
