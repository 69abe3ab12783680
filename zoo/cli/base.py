"""The ``zoo`` click group and what every command module shares.

Commands live one group per module (:mod:`zoo.cli.listing`, :mod:`zoo.cli.cards`,
:mod:`zoo.cli.weights`, ...) and register themselves on :data:`main`. They only
parse and print: the work happens in the library layers they call.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from functools import wraps
from typing import Any

import click

from zoo.errors import ZooError
from zoo.files import atomic_write
from zoo.registry import ZooPluginWarning


def _show_plugin_warning(message, category, filename, lineno, file=None, line=None) -> None:
    click.echo(f"warning: {message}", err=True)


def fails_cleanly(command: Callable[..., Any]) -> Callable[..., Any]:
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


__all__ = [
    "atomic_write",
    "echo_table",
    "fails_cleanly",
    "main",
    "megabytes",
    "millions",
    "model_source_options",
    "weights_arguments",
]


def model_source_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--weights FILE [--layout L]`` and ``--random``: what every model-building command takes.

    They mean what ``zoo.load(weights=..., layout=...)`` and ``pretrained=False`` mean.
    """
    options = [
        click.option(
            "--weights",
            type=click.Path(exists=True, dir_okay=False),
            help="A local safetensors file instead of the card's weights.",
        ),
        click.option("--layout", help="Key layout of --weights (default: zoo), e.g. timm."),
        click.option("--random", "random_init", is_flag=True, help="Random weights, no download."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def weights_arguments(weights: str | None, layout: str | None, random_init: bool) -> dict:
    """The ``zoo.load`` keywords for the model-source options, refusing contradictions."""
    if random_init and weights is not None:
        raise click.UsageError("--random and --weights contradict each other; give one")
    if layout is not None and weights is None:
        raise click.UsageError("--layout describes a --weights file; give --weights too")
    return {"weights": weights, "layout": layout, "pretrained": not random_init}


def megabytes(size: int) -> str:
    return f"{size / 1e6:.1f}MB"


def millions(count: int) -> str:
    return f"{count / 1e6:.1f}M"


def echo_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    for row in [header, *rows]:
        click.echo(
            "  ".join(
                str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)
            ).rstrip()
        )
    if not rows:
        click.echo("(no models match)", err=True)
