"""The ``zoo`` command line.

Listing commands (list, info, plugins, card) read cards and plugin metadata
only: they never import torch. Commands that touch weights import it inside.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Any

import click

from zoo.cards import Card
from zoo.errors import ZooError
from zoo.registry import ZooPluginWarning, default_registry


def _show_plugin_warning(message, category, filename, lineno, file=None, line=None) -> None:
    click.echo(f"warning: {message}", err=True)


def _fails_cleanly(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn zoo's own errors into one-line messages and exit status 1, not tracebacks."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (ZooError, KeyError) as error:
            raise click.ClickException(str(error).strip("'\"")) from None

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="zoo")
def main() -> None:
    """zoo: pretrained video and vision models with validated cards and verified weights."""
    warnings.simplefilter("default", ZooPluginWarning)
    warnings.showwarning = _show_plugin_warning


@main.command("list")
@click.argument("pattern", required=False)
@click.option("--task", help="Only models for this task, e.g. video-classification.")
@click.option("--architecture", help="Only models of this architecture, e.g. i3d.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_fails_cleanly
def list_models(
    pattern: str | None, task: str | None, architecture: str | None, as_json: bool
) -> None:
    """List registered models; PATTERN is an fnmatch wildcard like 'i3d*'."""
    cards = default_registry().cards(pattern, task=task, architecture=architecture)
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
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = [
        [r["name"], r["architecture"], r["task"], _millions(r["parameters"]), r["weights"]]
        for r in rows
    ]
    _echo_table(["name", "architecture", "task", "params", "weights"], table)


@main.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_fails_cleanly
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
    _echo_table(["plugin", "status", "distribution", "hooks", "architectures", "cards"], table)
    for r in reports:
        for error in r["errors"]:
            click.echo(f"{r['name']}: {error}", err=True)


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
    type=click.Path(path_type=Path),
    help="File or folder to write README.md to (default: standard output).",
)
@_fails_cleanly
def render_card(name: str, output: Path | None) -> None:
    """Write model NAME's card as a Hugging Face model card (README.md with metadata)."""
    from zoo.modelcard import to_hf_model_card

    text = str(to_hf_model_card(default_registry().card(name)))
    if output is None:
        click.echo(text, nl=False)
        return
    target = output / "README.md" if output.is_dir() else output
    with _atomic_write(target) as temporary:
        temporary.write_text(text, encoding="utf-8")
    click.echo(f"wrote {target}", err=True)


# --- weights: pull, cache, convert, push (torch and huggingface_hub imported inside) ---------


@main.command()
@click.argument("names", nargs=-1, required=True)
@_fails_cleanly
def pull(names: tuple[str, ...]) -> None:
    """Fetch, verify (and convert, for upstream pickles) the weights of models NAMES."""
    from zoo.weights import fetch

    registry = default_registry()
    for name in names:
        card = registry.card(name)
        for part in fetch(card, registry.architecture(card.architecture)):
            click.echo(f"{card.name}: {part.path}")


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
        [r["repo"], _megabytes(r["size"]), str(r["files"]), ",".join(r["revisions"])] for r in repos
    ]
    _echo_table(["repo", "size", "files", "revisions"], rows)
    click.echo(f"\nconverted upstream checkpoints in {zoo_cache_dir() / 'converted'}:")
    _echo_table(
        ["file", "size", "origin"],
        [[c["file"], _megabytes(c["size"]), c["origin"]] for c in conversions],
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
@_fails_cleanly
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
@_fails_cleanly
def push(folder: Path, repo_id: str, revision: str | None, private: bool | None) -> None:
    """Publish a folder written by `zoo convert` to the Hub; it loads with hf-hub:ORG/NAME."""
    from zoo.publish import push as push_folder

    commit = push_folder(folder, repo_id, revision=revision, private=private)
    click.echo(f"pushed {commit.oid} to {repo_id}: zoo.load('hf-hub:{repo_id}@{commit.oid}')")


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f}MB"


@contextmanager
def _atomic_write(target: Path) -> Iterator[Path]:
    """Write to a sibling temporary file and rename, so a failure never leaves half a file."""
    temporary = target.with_name(f".{target.name}.partial")
    try:
        yield temporary
        temporary.replace(target)
    finally:
        temporary.unlink(missing_ok=True)


def _weights_summary(card: Card) -> str:
    if not card.weights:
        return "-"
    parts = []
    for part in card.weights:
        if part.repo_id:
            parts.append(f"hf:{part.repo_id}")
        elif part.bundled:
            parts.append("bundled")
        else:
            parts.append(f"{part.format}:{part.url.rsplit('/', 1)[-1]}")
    return " + ".join(parts)


def _millions(count: int) -> str:
    return f"{count / 1e6:.1f}M"


def _echo_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    for row in [header, *rows]:
        click.echo(
            "  ".join(
                str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)
            ).rstrip()
        )
    if not rows:
        click.echo("(no models match)", err=True)
