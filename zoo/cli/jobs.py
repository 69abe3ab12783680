"""What every corpus command shares: where the job runs, what it may do to its output, and
how its report is printed (:mod:`zoo.cli.corpus`, and ``zoo predict -o results.parquet``)."""

from __future__ import annotations

import json
from typing import Any

import click

from zoo.cli.base import FiniteFloat, force_option

ENGINES = click.Choice(["local", "ray"])


def corpus_options(command: Any) -> Any:
    """Where a corpus job runs and what it may do to its output."""
    options = [
        click.option(
            "--engine",
            type=ENGINES,
            default="local",
            show_default=True,
            help="This machine's processes, or a Ray cluster (pip install 'zoo-models[ray]').",
        ),
        click.option(
            "--workers",
            type=click.IntRange(min=1),
            help="Worker processes (local; default one per core) or actors (ray).",
        ),
        click.option("--address", help="Ray: auto, or HOST:PORT of the head (default: start one)."),
        click.option("--num-cpus", type=FiniteFloat(min=0), help="Ray: CPUs per actor (1)."),
        click.option("--num-gpus", type=FiniteFloat(min=0), help="Ray: GPUs per actor (0)."),
        click.option(
            "--overwrite",
            is_flag=True,
            help="Replace results of another model, weights or options in the output.",
        ),
        force_option,
    ]
    for option in reversed(options):
        command = option(command)
    return command


ENGINE_KEYS = ("engine", "workers", "address", "num_cpus", "num_gpus", "overwrite", "force")


def job_arguments(options: dict[str, Any]) -> dict[str, Any]:
    """The corpus options among a command's keyword arguments (removed from ``options``)."""
    return {key: options.pop(key) for key in ENGINE_KEYS}


def finish(context: click.Context, report: Any, as_json: bool) -> None:
    """Print the report (one line, or JSON); exit 1 when any input failed."""
    if as_json:
        data = report.model_dump(mode="json")
        data |= {
            "inputs_per_second": report.inputs_per_second,
            "frames_per_second": report.frames_per_second,
        }
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo(report.summary())
    if report.failed:
        context.exit(1)
