"""The ``zoo`` click group and what every command module shares.

Commands live one group per module (:mod:`zoo.cli.listing`, :mod:`zoo.cli.cards`,
:mod:`zoo.cli.weights`, ...) and register themselves on :data:`main`. They only
parse and print: the work happens in the library layers they call.

Every failure a user can cause ends as ONE line on stderr and a non-zero exit:
zoo's own errors through :func:`fails_cleanly`, click's usage errors through
:class:`OneLineErrors`. Anything else reaching a user is a bug.
"""

from __future__ import annotations

import math
import os
import re
import sys
import warnings
from collections.abc import Callable, Sequence
from functools import wraps
from importlib.metadata import PackageNotFoundError, requires
from pathlib import Path
from typing import Any, TextIO

import click

from zoo.errors import ZooError, ZooPluginWarning, ZooWarning, one_line
from zoo.output import FORCE_MEANING
from zoo.version import DISTRIBUTION

# Optional packages whose import name is not their distribution's name.
DISTRIBUTION_OF_MODULE = {"cv2": "opencv-contrib-python-headless", "sklearn": "scikit-learn"}


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    click.echo(f"warning: {one_line(str(message))}", err=True)


def fails_cleanly(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn every ZooError into a one-line message and exit status 1, never a traceback."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ZooError as error:
            raise click.ClickException(one_line(error.for_command_line())) from None
        except ModuleNotFoundError as error:
            raise click.ClickException(_missing_package(error)) from None

    return wrapper


def _missing_package(error: ModuleNotFoundError) -> str:
    """Export, video decoding, detection, interpretation and corpus jobs need optional packages."""
    package = (error.name or str(error)).partition(".")[0]
    extras = ",".join(extras_providing(package)) or "all"
    return (
        f"this command needs the Python package {package!r}, which is not installed; "
        f"install it with zoo's extra: pip install '{DISTRIBUTION}[{extras}]'"
    )


def extras_providing(module: str) -> list[str]:
    """The extras of the installed distribution that install the top-level ``module``.

    Read from the distribution's own requirements (``onnx>=1.17; extra == "export"``),
    so an extra added to pyproject.toml is named here with nothing else to change.
    """
    wanted = _canonical(DISTRIBUTION_OF_MODULE.get(module, module))
    try:
        lines = requires(DISTRIBUTION) or []
    except PackageNotFoundError:
        return []
    extras = []
    for line in lines:
        name = re.split(r"[\s\[<>=!~;(]", line, maxsplit=1)[0]
        extra = re.search(r"""extra\s*==\s*["']([^"']+)["']""", line)
        if extra and extra[1] != "dev" and _canonical(name) == wanted:
            extras.append(extra[1])
    return sorted(set(extras))


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


class OneLineErrors(click.Group):
    """A click group whose usage errors are one line too (click prints a usage block)."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        arguments = list(sys.argv[1:] if args is None else args)
        try:
            result = super().main(arguments, prog_name, complete_var, False, **extra)
        except click.ClickException as error:
            hint = _dash_file_hint(error, arguments) or _help_hint(error)
            click.echo(f"Error: {one_line(error.format_message())}{hint}", err=True)
            sys.exit(error.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)


def _dash_file_hint(error: click.ClickException, arguments: list[str]) -> str:
    """A file name starting with a dash reads as options: point to ``--`` before it."""
    if not isinstance(error, click.NoSuchOption):
        return ""
    files = [
        argument
        for argument in arguments
        if argument.startswith("-") and not argument.startswith("--") and Path(argument).suffix
    ]
    if not files:
        return ""
    return (
        f" ({files[0]} reads as options: to pass a file whose name starts with a dash, put "
        f"`--` before it, as in `... -- {files[0]}`, or write ./{files[0]})"
    )


def _help_hint(error: click.ClickException) -> str:
    context = getattr(error, "ctx", None)
    if isinstance(error, click.UsageError) and context is not None:
        return f" (see `{context.command_path} --help`)"
    return ""


@click.group(cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name=DISTRIBUTION, prog_name=DISTRIBUTION)
def main() -> None:
    """zoo: pretrained video and vision models with validated cards and verified weights."""
    for category in (ZooPluginWarning, ZooWarning):
        warnings.simplefilter("default", category)
    warnings.showwarning = _show_warning
    if not sys.stderr.isatty():
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


class FiniteFloat(click.FloatRange):
    """A float option that refuses NaN and infinity, which pass every range comparison.

    ``--threshold nan`` would keep no detection "with score > nan" and exit 0: every float
    option the CLI takes is one of these, so no such value reaches the library.
    """

    name = "float"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


force_option = click.option(
    "--force", is_flag=True, help=f"{FORCE_MEANING[0].upper()}{FORCE_MEANING[1:]}."
)
"""``--force``, one meaning for every command that writes (:mod:`zoo.output`)."""

device_option = click.option(
    "--device", default="auto", show_default=True, help="cpu, cuda, cuda:1, mps"
)


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


def echo_table(header: list[str], rows: list[list[str]], empty: str = "(no models match)") -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    for row in [header, *rows]:
        click.echo(
            "  ".join(
                str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)
            ).rstrip()
        )
    if not rows:
        click.echo(empty, err=True)
