"""``zoo features``, and what ``zoo predict -o results.parquet`` shares with it: corpus jobs.

Both parse, call :mod:`zoo.corpus` and print its report: a progress bar on a terminal,
then one summary line (done, skipped, failed and where the failures are listed, inputs/s,
frames/s), or the report as JSON. The exit status is 1 when any input failed.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from zoo.cli.base import (
    FiniteFloat,
    fails_cleanly,
    main,
    model_source_options,
    weights_arguments,
)
from zoo.cli.jobs import corpus_options, finish, job_arguments
from zoo.cli.predict import runtime_options

POOLS = click.Choice(["avg", "max", "none"])


@main.command()
@click.argument("name")
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for <input>.npy files and index.parquet.",
)
@click.option(
    "--layer",
    default="pooled",
    show_default=True,
    help="pooled (what the classifier reads), logits, or a module path such as Mixed_4f.",
)
@click.option("--pool", type=POOLS, default="avg", show_default=True, help="Over space and time.")
@click.option("--window", type=click.IntRange(min=1), help="Frames per row (card's clip length).")
@click.option("--stride", type=click.IntRange(min=1), help="Frames between rows (one window).")
@click.option("--fps", type=FiniteFloat(min=0, min_open=True), help="Resample to (card's rate).")
@click.option("--pad-last", is_flag=True, help="Add the tail as a padded window.")
@click.option(
    "--batch-size",
    default=8,
    show_default=True,
    type=click.IntRange(min=1),
    help="Windows per forward at most; fewer when windows are long and large.",
)
@runtime_options
@model_source_options
@corpus_options
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
@fails_cleanly
def features(
    context: click.Context,
    name: str,
    inputs: tuple[str, ...],
    output: Path,
    layer: str,
    pool: str,
    window: int | None,
    stride: int | None,
    fps: float | None,
    pad_last: bool,
    batch_size: int,
    runtime: dict[str, Any],
    weights: str | None,
    layout: str | None,
    random_init: bool,
    as_json: bool,
    **options: Any,
) -> None:
    """Dense features of INPUTS (files, folders, globs, manifests) with model NAME.

    One row per window of each video (per image: one row), written to DIR/<input>.npy;
    DIR/index.parquet lists every input with its status and windows. A rerun computes
    only what is missing.
    """
    from zoo.corpus import features as run

    job = job_arguments(options)
    report = run(
        name,
        inputs,
        output,
        layer=layer,
        pool=pool,
        window=window,
        stride=stride,
        fps=fps,
        pad_last=pad_last,
        batch_size=batch_size,
        progress=sys.stderr.isatty(),
        **job,
        **runtime,
        **weights_arguments(weights, layout, random_init),
    )
    finish(context, report, as_json)
