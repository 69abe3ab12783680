"""``zoo card validate`` and ``zoo card render``: cards as files, never torch."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from zoo.cards import CardCheck
from zoo.cli.base import fails_cleanly, force_option, main
from zoo.output import output_folder, write_text_atomic
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
@force_option
@fails_cleanly
def render_card(name: str, output: str | None, force: bool) -> None:
    """Write model NAME's card as a Hugging Face model card (README.md with metadata)."""
    from zoo.modelcard import to_hf_model_card

    text = str(to_hf_model_card(default_registry().card(name)))
    if output is None:
        click.echo(text, nl=False)
        return
    path = Path(output)
    if output.endswith(("/", os.sep)) or path.is_dir():
        with output_folder(path, [README], force=force):
            target = write_text_atomic(path / README, text)
    else:
        target = write_text_atomic(path, text)
    click.echo(f"wrote {target}", err=True)
