"""``zoo card validate`` and ``zoo card render``: cards as files, never torch."""

from __future__ import annotations

import os
from pathlib import Path

import click

from zoo.cards import Card
from zoo.cli.base import fails_cleanly, main
from zoo.errors import ZooError
from zoo.output import write_text_atomic
from zoo.registry import default_registry

README = "README.md"


@main.group()
def card() -> None:
    """Validate and render model cards."""


@card.command("validate")
@click.argument("files", nargs=-1, required=True)
@fails_cleanly
def validate_cards(files: tuple[str, ...]) -> None:
    """Validate YAML card FILES as the registry would: schema, architecture and its config.

    Every file is checked and reported, whatever the others hold.
    """
    registry = default_registry()
    failures = 0
    for file in files:
        try:
            registry.check_card(Card.from_yaml(file))
        except ZooError as error:
            failures += 1
            click.echo(f"invalid: {file}: {_without_prefix(str(error), file)}", err=True)
        else:
            click.echo(f"ok: {file}")
    if failures:
        raise click.ClickException(f"{failures} of {len(files)} cards are invalid")


def _without_prefix(message: str, file: str) -> str:
    return message.removeprefix(f"{file}: ")


@card.command("render")
@click.argument("name")
@click.option(
    "-o",
    "--output",
    help="File to write, or folder (existing, or ending in /) to write README.md into; "
    "default: standard output.",
)
@fails_cleanly
def render_card(name: str, output: str | None) -> None:
    """Write model NAME's card as a Hugging Face model card (README.md with metadata)."""
    from zoo.modelcard import to_hf_model_card

    text = str(to_hf_model_card(default_registry().card(name)))
    if output is None:
        click.echo(text, nl=False)
        return
    target = write_text_atomic(_render_target(output), text)
    click.echo(f"wrote {target}", err=True)


def _render_target(output: str) -> Path:
    """A folder (one that exists, or any path ending in a separator) gets README.md inside."""
    path = Path(output)
    if output.endswith(("/", os.sep)) or path.is_dir():
        return path / README
    return path
