"""``zoo pull``, ``zoo cache``, ``zoo convert`` and ``zoo push``: weights in and out.

torch and huggingface_hub are imported inside each command, when it runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from zoo.cli.base import echo_table, fails_cleanly, main, megabytes
from zoo.registry import default_registry


@main.command()
@click.argument("names", nargs=-1, required=True)
@fails_cleanly
def pull(names: tuple[str, ...]) -> None:
    """Fetch, verify (and convert, for upstream pickles) the weights of models NAMES."""
    from zoo.weights import fetch, files_of

    registry = default_registry()
    for name in names:
        card = registry.card(name)
        for part in fetch(card, registry.architecture(card.architecture), registry):
            for file in files_of(part):
                click.echo(f"{card.name}: {file.path}")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def cache(as_json: bool) -> None:
    """Show cached Hub repos (huggingface_hub's cache scan) and converted upstream pickles."""
    from zoo.weights import cached_conversions, cached_hub_repos, zoo_cache_dir

    repos, conversions = cached_hub_repos(), cached_conversions()
    if as_json:
        click.echo(json.dumps({"hub": repos, "converted": conversions}, indent=2))
        return
    rows = [
        [r["repo"], megabytes(r["size"]), str(r["files"]), ",".join(r["revisions"])] for r in repos
    ]
    echo_table(["repo", "size", "files", "revisions"], rows)
    click.echo(f"\nconverted upstream checkpoints in {zoo_cache_dir() / 'converted'}:")
    echo_table(
        ["file", "size", "origin"],
        [[c["file"], megabytes(c["size"]), c["origin"]] for c in conversions],
    )


@main.command()
@click.argument("name")
@click.option(
    "--checkpoint",
    "checkpoints",
    multiple=True,
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Upstream .pth/.pt/.pickle/.safetensors file; repeat once per weights part of the card.",
)
@click.option("--layout", help="Key layout of the checkpoints (default: the card's).")
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False, path_type=Path))
@fails_cleanly
def convert(name: str, checkpoints: tuple[Path, ...], layout: str | None, output: Path) -> None:
    """Convert upstream checkpoints of model NAME into a zoo folder (safetensors + card)."""
    from zoo.publish import convert as convert_checkpoints

    folder = convert_checkpoints(name, list(checkpoints), output, layout=layout)
    for path in sorted(folder.iterdir()):
        click.echo(f"wrote {path}")


@main.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--repo", "repo_id", required=True, help="Hub repo to publish to, org/name.")
@click.option("--revision", help="Branch to commit to (default: main).")
@click.option("--private", is_flag=True, default=None, help="Create the repo as private.")
@fails_cleanly
def push(folder: Path, repo_id: str, revision: str | None, private: bool | None) -> None:
    """Publish a folder written by `zoo convert` to the Hub; it loads with hf-hub:ORG/NAME."""
    from zoo.publish import push as push_folder

    commit = push_folder(folder, repo_id, revision=revision, private=private)
    click.echo(f"pushed {commit.oid} to {repo_id}: zoo.load('hf-hub:{repo_id}@{commit.oid}')")
