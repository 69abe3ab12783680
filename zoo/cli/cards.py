"""``zoo card validate`` and ``zoo card render``: cards as files, never torch."""

from __future__ import annotations

import os
from pathlib import Path

import click

from zoo.cards import Card
from zoo.cli.base import atomic_write, fails_cleanly, main
from zoo.errors import ZooError
from zoo.registry import default_registry


@main.group()
def card() -> None:
    """Validate and render model cards."""


@card.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
def validate_cards(files: tuple[str, ...]) -> None:
    """Validate YAML card FILES against the schema; report every invalid one."""
    failures = 0
    for file in files:
        try:
            Card.from_yaml(file)
        except ZooError as error:
            failures += 1
            click.echo(f"invalid: {error}", err=True)
        else:
            click.echo(f"ok: {file}")
    if failures:
        raise click.ClickException(f"{failures} of {len(files)} cards are invalid")


@card.command("render")
@click.argument("name")
@click.option(
    "-o",
    "--output",
    type=click.Path(),
    help="File, or folder (existing, or ending in /) to write README.md to (default: stdout).",
)
@fails_cleanly
def render_card(name: str, output: str | None) -> None:
    """Write model NAME's card as a Hugging Face model card (README.md with metadata)."""
    from zoo.modelcard import to_hf_model_card

    text = str(to_hf_model_card(default_registry().card(name)))
    if output is None:
        click.echo(text, nl=False)
        return
    target = Path(output)
    if output.endswith(("/", os.sep)) or target.is_dir():
        target.mkdir(parents=True, exist_ok=True)
        target = target / "README.md"
    with atomic_write(target) as temporary:
        temporary.write_text(text, encoding="utf-8")
    click.echo(f"wrote {target}", err=True)
