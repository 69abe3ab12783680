"""``zoo finetune``: a classifier and labelled files in, a model folder out.

The options and their defaults are :class:`zoo.finetuning.FinetuneOptions`' (read from
it here, never typed twice), so ``--help`` shows exactly what the library does. The
command only parses and prints: one line per epoch, the report with ``--json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from zoo.cli.base import (
    FiniteFloat,
    fails_cleanly,
    force_option,
    main,
    model_source_options,
    weights_arguments,
)
from zoo.finetuning.options import DEFAULT_LR, FinetuneOptions
from zoo.finetuning.report import EpochRecord

FIELDS = FinetuneOptions.model_fields


def _help(name: str, extra: str = "") -> str:
    text = (FIELDS[name].description or "").rstrip(".") + extra + "."
    return text[:1].upper() + text[1:]


def recipe_options(command: Any) -> Any:
    """Every option of the recipe, with FinetuneOptions' default and description."""
    default = {name: field.default for name, field in FIELDS.items()}
    options = [
        click.option(
            "--mode",
            type=click.Choice(["linear", "full"]),
            default=default["mode"],
            show_default=True,
            help=_help("mode"),
        ),
        click.option(
            "--epochs", type=click.IntRange(min=1), default=default["epochs"], show_default=True
        ),
        click.option(
            "--batch-size",
            type=click.IntRange(min=1),
            default=default["batch_size"],
            show_default=True,
            help=_help("batch_size"),
        ),
        click.option(
            "--lr",
            type=FiniteFloat(min=0, min_open=True),
            help=f"Peak learning rate of AdamW [default: {DEFAULT_LR['full']:g} full, "
            f"{DEFAULT_LR['linear']:g} linear].",
        ),
        click.option(
            "--weight-decay",
            type=FiniteFloat(min=0),
            default=default["weight_decay"],
            show_default=True,
            help=_help("weight_decay"),
        ),
        click.option(
            "--warmup-epochs",
            type=FiniteFloat(min=0),
            default=default["warmup_epochs"],
            show_default=True,
            help=_help("warmup_epochs"),
        ),
        click.option(
            "--label-smoothing",
            type=FiniteFloat(0, 1, max_open=True),
            default=default["label_smoothing"],
            show_default=True,
        ),
        click.option(
            "--clip-grad",
            type=FiniteFloat(min=0),
            default=default["clip_grad"],
            show_default=True,
            help=_help("clip_grad"),
        ),
        click.option("--freeze-until", metavar="LAYER", help=_help("freeze_until")),
        click.option(
            "--val",
            type=click.Path(exists=True, path_type=Path),
            help="Validation data: a class-folder tree or a manifest, as DATA.",
        ),
        click.option(
            "--val-split",
            type=FiniteFloat(0, 1, min_open=True, max_open=True),
            default=default["val_split"],
            show_default=True,
            help=_help("val_split"),
        ),
        click.option(
            "--precision",
            type=click.Choice(["fp32", "bf16", "fp16"]),
            default=default["precision"],
            show_default=True,
            help=_help("precision"),
        ),
        click.option(
            "--seed",
            type=click.IntRange(min=0),
            default=default["seed"],
            show_default=True,
            help=_help("seed"),
        ),
        click.option(
            "--crop-scale",
            type=(FiniteFloat(0, 1), FiniteFloat(0, 1)),
            default=default["crop_scale"],
            show_default=True,
            metavar="MIN MAX",
            help=_help("crop_scale"),
        ),
        click.option(
            "--hflip",
            type=FiniteFloat(0, 1),
            default=default["hflip"],
            show_default=True,
            help=_help("hflip"),
        ),
        click.option(
            "--max-unreadable",
            type=FiniteFloat(0, 1),
            default=default["max_unreadable"],
            show_default=True,
            help=_help("max_unreadable"),
        ),
        click.option(
            "--workers",
            type=click.IntRange(min=0),
            default=default["workers"],
            show_default=True,
            help=_help("workers"),
        ),
        click.option(
            "--device",
            default=default["device"],
            show_default=True,
            help="cpu, cuda, cuda:1, mps; auto: CUDA, then MPS, then the CPU.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@main.command()
@click.argument("name")
@click.argument("data", type=click.Path(exists=True, path_type=Path))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(path_type=Path),
    help="The new model folder (model.safetensors, card.yaml, history, checkpoints).",
)
@recipe_options
@model_source_options
@click.option("--name", "model_name", help="The new model's name [default: OUT's folder name].")
@click.option("--resume", is_flag=True, help="Continue the run in OUT from its last checkpoint.")
@force_option
@click.option("--json", "as_json", is_flag=True, help="The whole report, history included.")
@fails_cleanly
def finetune(
    name: str,
    data: Path,
    output: Path,
    weights: str | None,
    layout: str | None,
    random_init: bool,
    model_name: str | None,
    resume: bool,
    force: bool,
    as_json: bool,
    **recipe: Any,
) -> None:
    """Fine-tune classifier NAME on DATA into the model folder OUT.

    DATA is a folder with one subfolder per class (images or videos), or a .csv/.parquet
    manifest with path and label columns. NAME is a model name, hf-hub:org/name or a
    zoo folder (./out/). Launched by torchrun, it trains on every process
    (DistributedDataParallel); only rank 0 writes and prints.
    """
    from zoo.finetuning import distributed
    from zoo.finetuning import finetune as run

    source = weights_arguments(weights, layout, random_init)

    def show(record: EpochRecord) -> None:
        if not as_json:
            click.echo(record.line(recipe["epochs"]))

    report = run(
        name,
        data,
        output,
        name=model_name,
        resume=resume,
        force=force,
        on_epoch=show,
        **source,
        **recipe,
    )
    if not distributed.is_main():
        return
    if as_json:
        click.echo(report.model_dump_json(indent=2))
        return
    top5 = f", top-5 {report.metrics['top5']:.1f}%" if len(report.classes) > 5 else ""
    skipped = f"; {len(report.unreadable)} unreadable file(s) skipped" if report.unreadable else ""
    click.echo(
        f"{report.model}: validation top-1 {report.metrics['top1']:.1f}%{top5} "
        f"(epoch {report.best_epoch} of {report.epochs}){skipped}; wrote {report.output}"
    )
