"""``zoo card validate`` and ``zoo card render``: cards as files, never torch."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from zoo.cards import CardCheck
from zoo.cli.base import fails_cleanly, main
from zoo.output import write_text_atomic
from zoo.registry import default_registry

README = "README.md"


@main.group()
def card() -> None:
    """Validate and render model cards."""


@card.command("validate")
@click.argument("files", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@fails_cleanly
def validate_cards(files: tuple[str, ...], as_json: bool) -> None:
    """Validate YAML card FILES as the registry would: schema, architecture and its config.

    Every file is checked and reported on standard output, whatever the others
    hold; if any is invalid, one line on stderr says how many.
    """
    checks = default_registry().check_files(list(files))
    if as_json:
        click.echo(json.dumps([check.model_dump() for check in checks], indent=2))
    else:
        for check in checks:
            click.echo(_verdict(check))
    failures = sum(not check.valid for check in checks)
    if failures:
        raise click.ClickException(f"{failures} of {len(checks)} cards are invalid")


def _verdict(check: CardCheck) -> str:
    return f"ok: {check.file}" if check.valid else f"invalid: {check.file}: {check.problem}"


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
