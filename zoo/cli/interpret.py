"""``zoo explain``, ``zoo attack`` and ``zoo embed``: looking inside a model, from files.

They parse, call :mod:`zoo.interpret.pipeline` or :mod:`zoo.interpret.collection`, and
print the typed result (``--json``: the result itself). torch, captum, scikit-learn and
matplotlib are imported when a command runs, never when the CLI loads.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Literal

import click

from zoo.cli.base import (
    FiniteFloat,
    device_option,
    fails_cleanly,
    force_option,
    main,
    model_source_options,
    weights_arguments,
)
from zoo.errors import InterpretError

OUTPUT_DIR = click.Path(file_okay=False, path_type=Path)


def print_result(result: Any, as_json: bool, lines: list[str]) -> None:
    if as_json:
        click.echo(json.dumps(result.model_dump(mode="json"), indent=2))
        return
    for line in lines:
        click.echo(line)


def sizes(text: str | None, what: str) -> tuple[int, ...] | None:
    """``"32"`` or ``"4,32,32"`` -> a tuple of positive ints (one per map axis)."""
    if text is None:
        return None
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        values = ()
    if not values or min(values) < 1:
        raise InterpretError(
            f"{what} expects positive sizes like 32 or 4,32,32, found {text!r} (one per map "
            "axis: H,W for images, T,H,W for clips)"
        )
    return values


@main.command()
@click.argument("name")
@click.argument("input", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--method", type=click.Choice(["gradcam", "occlusion"]), default="gradcam", show_default=True
)
@click.option("--target", help="Class to explain: a label or an index (default: the top-1).")
@click.option("--layer", help="Grad-CAM layer, a dotted path (default: the plugin's).")
@click.option("--window", help="Occlusion window per map axis, e.g. 32 or 4,32,32 (T,H,W).")
@click.option("--stride", help="Occlusion stride per map axis (default: half the window).")
@click.option(
    "--baseline",
    type=FiniteFloat(0, 1),
    help="Occlusion: the pixel value hiding a region (0 black; default 0.5, grey).",
)
@device_option
@model_source_options
@click.option("-o", "--output", required=True, type=OUTPUT_DIR, help="Folder for the pictures.")
@force_option
@click.option("--json", "as_json", is_flag=True, help="The explanation as JSON.")
@fails_cleanly
def explain(
    name: str,
    input: str,
    method: str,
    target: str | None,
    layer: str | None,
    window: str | None,
    stride: str | None,
    baseline: float | None,
    device: str,
    weights: str | None,
    layout: str | None,
    random_init: bool,
    output: Path,
    force: bool,
    as_json: bool,
) -> None:
    """Show where model NAME looks in INPUT: Grad-CAM or occlusion, drawn over the input."""
    from zoo.interpret.pipeline import explain_file

    result = explain_file(
        name,
        input,
        output,
        method=method,
        target=target,
        layer=layer,
        window=sizes(window, "--window"),
        stride=sizes(stride, "--stride"),
        baseline=baseline,
        device=device,
        force=force,
        progress=sys.stderr.isatty(),
        **weights_arguments(weights, layout, random_init),
    )
    print_result(result, as_json, _explanation_lines(result))


def _explanation_lines(result: Any) -> list[str]:
    where = f"layer {result.layer}" if result.layer else f"window {result.window}"
    note = f"; {result.note}" if result.note else ""
    explained = result.target.describe() if result.target else result.score
    lines = [
        f"{result.input}  ({result.model}{note})",
        f"  {result.method} of {explained}, {where}",
    ]
    if result.top is not None:
        lines.append(f"  top-1 {result.top.describe()}")
    return [*lines, *(f"  wrote {file}" for file in result.files)]


@main.command()
@click.argument("name")
@click.argument("input", type=click.Path(exists=True, dir_okay=False))
@click.option("--method", type=click.Choice(["fgsm", "pgd"]), default="fgsm", show_default=True)
@click.option(
    "--eps",
    type=FiniteFloat(min=0),
    default=2 / 255,
    show_default="2/255",
    help="Largest change of a pixel value, pixels in [0, 1] (8/255 = 0.0314).",
)
@click.option("--steps", type=click.IntRange(min=1), help="PGD steps (default 10).")
@click.option("--step-size", type=FiniteFloat(min=0), help="PGD step (default 2.5 eps/steps).")
@click.option("--target", help="The true class to move away from (default: the top-1).")
@device_option
@model_source_options
@click.option("-o", "--output", required=True, type=OUTPUT_DIR, help="Folder for the pictures.")
@force_option
@click.option("--json", "as_json", is_flag=True, help="The attack's result as JSON.")
@fails_cleanly
def attack(
    name: str,
    input: str,
    method: str,
    eps: float,
    steps: int | None,
    step_size: float | None,
    target: str | None,
    device: str,
    weights: str | None,
    layout: str | None,
    random_init: bool,
    output: Path,
    force: bool,
    as_json: bool,
) -> None:
    """Perturb INPUT within EPS (L-infinity, pixel space) to change model NAME's answer."""
    from zoo.interpret.pipeline import attack_file

    result = attack_file(
        name,
        input,
        output,
        method=method,
        eps=eps,
        steps=steps,
        step_size=step_size,
        target=target,
        device=device,
        force=force,
        **weights_arguments(weights, layout, random_init),
    )
    print_result(result, as_json, _attack_lines(result))


def _attack_lines(result: Any) -> list[str]:
    attack, sample = result.attack, result.attack.samples[0]
    size = f"eps {attack.eps:.4f} = {attack.eps * 255:.1f}/255"
    return [
        f"{result.input}  ({result.model}, {attack.method.upper()} {size})",
        f"  clean        {sample.clean.describe()}",
        f"  adversarial  {sample.adversarial.describe()}  (L-inf {sample.linf:.4f})",
        f"  {sample.target.name}: {sample.target.probability:.1%} before, "
        f"{sample.target_after.probability:.1%} after",
        *(f"  wrote {file}" for file in result.files),
    ]


@main.command()
@click.argument("name")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the embeddings here, an (M, D) float32 .npy in the order listed.",
)
@click.option(
    "--query",
    type=click.Path(exists=True, dir_okay=False),
    help="List the INPUTS nearest to this file by cosine similarity.",
)
@click.option("-k", "k", type=click.IntRange(min=1), default=5, show_default=True)
@click.option(
    "--map",
    "map_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Draw the INPUTS as a 2-D scatter (PNG).",
)
@click.option("--method", type=click.Choice(["pca", "tsne"]), default="pca", show_default=True)
@click.option(
    "--colour",
    type=click.Choice(["folder", "label"]),
    default="folder",
    show_default=True,
    help="Colour the map by folder or by the model's top-1.",
)
@device_option
@model_source_options
@click.option("--json", "as_json", is_flag=True, help="The result as JSON.")
@fails_cleanly
def embed(
    name: str,
    inputs: tuple[str, ...],
    output: Path | None,
    query: str | None,
    k: int,
    map_file: Path | None,
    method: Literal["pca", "tsne"],  # click.Choices of these
    colour: Literal["folder", "label"],
    device: str,
    weights: str | None,
    layout: str | None,
    random_init: bool,
    as_json: bool,
) -> None:
    """Penultimate features of INPUTS (files, or folders of them) under model NAME."""
    from zoo.interpret.collection import explore

    if output is None and query is None and map_file is None:
        raise InterpretError("nothing to do: give -o FILE, --query FILE or --map FILE")
    result = explore(
        name,
        inputs,
        output=output,
        query=query,
        k=k,
        map_file=map_file,
        method=method,
        colour=colour,
        device=device,
        progress=sys.stderr.isatty(),
        **weights_arguments(weights, layout, random_init),
    )
    print_result(result, as_json, _embedding_lines(result))


def _embedding_lines(result: Any) -> list[str]:
    lines = [f"{len(result.inputs)} inputs, {result.dimension} features each ({result.model})"]
    if result.output:
        lines.append(f"  wrote {result.output} (rows in input order)")
    if result.query:
        lines.append(f"  nearest to {result.query}:")
    for rank, neighbour in enumerate(result.neighbours or [], start=1):
        lines.append(f"  {rank}. {neighbour.similarity:.4f}  {neighbour.name}")
    if result.map is not None:
        mapped, measured = result.map, ""
        if mapped.knn_accuracy is not None:
            measured = f", k-NN accuracy {mapped.knn_accuracy:.2f} (chance {mapped.chance:.2f})"
        lines.append(f"  wrote {result.map_file} ({mapped.method}{measured})")
    return lines
