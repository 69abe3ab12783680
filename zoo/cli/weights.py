"""``zoo pull``, ``zoo cache``, ``zoo convert`` and ``zoo push``: weights in and out.

torch and huggingface_hub are imported inside each command, when it runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from zoo.cli.base import echo_table, fails_cleanly, force_option, main, megabytes
from zoo.registry import default_registry


@main.command()
@click.argument("names", nargs=-1, required=True)
@click.option(
    "--print-hash",
    is_flag=True,
    help="Also print each source file's sha256, as a card's `sha256:` would pin it.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@fails_cleanly
def pull(names: tuple[str, ...], print_hash: bool, as_json: bool) -> None:
    """Fetch, verify (and convert, for upstream pickles) the weights of models NAMES.

    A NAME may be hf-hub:org/name[@revision], a repo published with `zoo push`.
    """
    from zoo.weights import pull as pull_weights

    parts = [part for name in names for part in pull_weights(name, hashes=print_hash)]
    if as_json:
        click.echo(json.dumps([part.model_dump() for part in parts], indent=2))
        return
    for part in parts:
        click.echo(f"{part.model}: {part.path}")
        if print_hash:
            click.echo(f"  source: {part.source}\n  integrity: {part.integrity}")
            click.echo(f"  sha256: {part.sha256}")


@main.command()
@click.argument("names", nargs=-1)
@click.option(
    "--clear",
    is_flag=True,
    help="Remove what is cached for NAMES (Hub repos, conversions, exports; default: of "
    "every model, and every zoo cache folder); first-use hash records are kept.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@fails_cleanly
def cache(names: tuple[str, ...], clear: bool, as_json: bool) -> None:
    """Show (or --clear) cached Hub repos and the zoo cache's folders, of NAMES or all."""
    from zoo.weights import cache_listing, clear_cache

    registry = default_registry()
    cards = [registry.card(name) for name in names] if names else None
    if clear:
        cleared = clear_cache(cards)
        if as_json:
            click.echo(cleared.model_dump_json(indent=2))
            return
        for path in cleared.removed:
            click.echo(f"removed {path}")
        click.echo(f"freed {megabytes(cleared.freed_bytes)}", err=True)
        return
    listing = cache_listing(cards)
    if as_json:
        click.echo(listing.model_dump_json(indent=2))
        return
    rows = [[r.repo, megabytes(r.size), str(r.files), ",".join(r.revisions)] for r in listing.hub]
    echo_table(["repo", "size", "files", "revisions"], rows, empty="(no Hub repos cached)")
    click.echo(f"\nconverted upstream checkpoints in {listing.folder}/converted:")
    echo_table(
        ["file", "size", "origin"],
        [[c.file, megabytes(c.size), c.origin] for c in listing.converted],
        empty="(no conversions cached)",
    )
    click.echo(f"\nmade from models (exports, quantizations) in {listing.folder}:")
    echo_table(
        ["area", "entry", "size"],
        [[m.area, m.entry, megabytes(m.size)] for m in listing.made],
        empty="(nothing made yet)",
    )
    click.echo(f"\nzoo cache folders in {listing.folder}:")
    echo_table(
        ["folder", "size", "entries", "holds"],
        [
            [
                a.name,
                megabytes(a.size),
                str(a.entries),
                a.holds + (" (kept by --clear)" if a.kept else ""),
            ]
            for a in listing.areas
        ],
        empty="(nothing cached for these models)",
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
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path))
@force_option
@fails_cleanly
def convert(
    name: str, checkpoints: tuple[Path, ...], layout: str | None, output: Path, force: bool
) -> None:
    """Convert upstream checkpoints of model NAME into a zoo folder (safetensors + card)."""
    from zoo.publish import convert as convert_checkpoints

    result = convert_checkpoints(name, list(checkpoints), output, layout=layout, force=force)
    for path in result.files:
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
