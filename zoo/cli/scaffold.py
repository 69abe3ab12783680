"""``zoo new-plugin``: write a plugin package that passes the conformance kit as it stands."""

from __future__ import annotations

from pathlib import Path

import click

from zoo.cli.base import fails_cleanly, force_option, main


@main.command("new-plugin")
@click.argument("name")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(path_type=Path),
    help="Folder to write the package into (new, empty, or zoo's own files only).",
)
@force_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@fails_cleanly
def new_plugin(name: str, output: Path, force: bool, as_json: bool) -> None:
    """Write plugin package NAME (entry point, hooks, model, converter, card, tests) to OUTPUT."""
    from zoo.scaffold import new_plugin as write_skeleton

    skeleton = write_skeleton(name, output, force=force)
    if as_json:
        click.echo(skeleton.model_dump_json(indent=2))
        return
    for file in skeleton.files:
        click.echo(f"wrote {Path(skeleton.folder) / file}")
    tests = Path(skeleton.folder) / "tests"
    click.echo(f"next: pip install {skeleton.folder} && python -m pytest {tests}", err=True)
