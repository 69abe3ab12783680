"""``zoo list``, ``zoo info`` and ``zoo plugins``: cards and plugin metadata, never torch."""

from __future__ import annotations

import json

import click

from zoo.cards import Card
from zoo.cli.base import echo_table, fails_cleanly, main, millions
from zoo.registry import default_registry


@main.command("list")
@click.argument("pattern", required=False)
@click.option("--task", help="Only models for this task, e.g. video-classification.")
@click.option("--architecture", help="Only models of this architecture, e.g. i3d.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@fails_cleanly
def list_models(
    pattern: str | None, task: str | None, architecture: str | None, as_json: bool
) -> None:
    """List registered models; PATTERN is an fnmatch wildcard like 'i3d*'."""
    cards = default_registry().cards(pattern, task=task, architecture=architecture)
    if as_json:
        rows = [
            {
                "name": card.name,
                "architecture": card.architecture,
                "task": card.task,
                "parameters": card.parameters,
                "weights": _weights_summary(card),
                "aliases": card.aliases,
            }
            for card in cards
        ]
        click.echo(json.dumps(rows, indent=2))
        return
    table = [
        [card.name, card.architecture, card.task, millions(card.parameters), _weights_summary(card)]
        for card in cards
    ]
    echo_table(["name", "architecture", "task", "params", "weights"], table)


@main.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@fails_cleanly
def info(name: str, as_json: bool) -> None:
    """Show the whole card of model NAME (a name, alias or plugin:name)."""
    card = default_registry().card(name)
    if as_json:
        click.echo(json.dumps(card.to_data(), indent=2))
        return
    click.echo(card.to_yaml().rstrip())
    labels = card.label_names()
    if labels:
        click.echo(f"# {len(labels)} labels, e.g. {', '.join(labels[:3])}, …")
    for spec in card.inputs:
        click.echo(f"# input {spec.name!r}: example shape {spec.example_shape()}")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@fails_cleanly
def plugins(as_json: bool) -> None:
    """Show each plugin: its distribution, hooks, what it registered and what went wrong."""
    reports = [report.to_data() for report in default_registry().reports.values()]
    if as_json:
        click.echo(json.dumps(reports, indent=2))
        return
    table = [
        [
            r["name"],
            r["status"],
            f"{r['distribution'] or '-'} {r['version'] or ''}".strip(),
            ",".join(r["hooks"]) or "-",
            ",".join(r["architectures"]) or "-",
            str(len(r["cards"])),
        ]
        for r in reports
    ]
    echo_table(["plugin", "status", "distribution", "hooks", "architectures", "cards"], table)
    for r in reports:
        for error in r["errors"]:
            click.echo(f"{r['name']}: {error}", err=True)


def _weights_summary(card: Card) -> str:
    if not card.weights:
        return "-"
    parts = []
    for part in card.weights:
        if part.repo_id:
            parts.append(f"hf:{part.repo_id}")
        elif part.bundled:
            parts.append("bundled")
        elif part.model:
            parts.append(f"model:{part.model}")
        elif part.url:  # a part has exactly one source (the card schema holds it)
            parts.append(f"{part.format}:{part.url.rsplit('/', 1)[-1]}")
    return " + ".join(parts)
