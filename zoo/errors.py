"""The errors zoo raises. Each message names what was expected and what was found.

Every class derives from :class:`ZooError`, so the CLI turns any of them into one
line on stderr; anything else reaching a user is a bug.
"""

from __future__ import annotations

from collections.abc import Callable
from numbers import Integral
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


class ZooError(Exception):
    """Base class of every error zoo raises on purpose."""

    def for_command_line(self) -> str:
        """The message as the command line shows it (options spelled as flags)."""
        return str(self)


class ZooPluginWarning(UserWarning):
    """A plugin failed to import, raised in a hook, or registered something invalid or taken."""


class ZooWarning(UserWarning):
    """Something zoo carried on through but a user should know: an unwritable cache, a file
    trusted on first use because its card has no hash."""


class UnknownNameError(ZooError, KeyError):
    """A model, alias, architecture or task name that nothing registered."""

    def __init__(self, kind: str, name: str, suggestions: list[str], hint: str = "") -> None:
        did_you_mean = (
            f"; did you mean {', '.join(repr(s) for s in suggestions)}?" if suggestions else ""
        )
        hint = hint or f" (`zoo list` shows every {kind})"
        super().__init__(f"unknown {kind} {name!r}{did_you_mean}{hint}")
        self.name = name
        self.suggestions = suggestions

    def __str__(self) -> str:
        return str(self.args[0])


class AmbiguousNameError(ZooError, KeyError):
    """A name claimed by more than one plugin: zoo never picks one silently."""

    def __init__(self, kind: str, name: str, qualified: list[str]) -> None:
        super().__init__(
            f"{kind} name {name!r} is registered by several plugins; choose one with its "
            f"qualified name ({', '.join(qualified)}) or disable the others with "
            "ZOO_DISABLE_PLUGINS"
        )
        self.name = name
        self.qualified = qualified

    def __str__(self) -> str:
        return str(self.args[0])


class DisabledPluginError(UnknownNameError):
    """A name of a plugin the environment turned off (ZOO_PLUGINS, ZOO_DISABLE_PLUGINS)."""

    def __init__(self, kind: str, name: str, plugin: str, variable: str) -> None:
        ZooError.__init__(
            self,
            f"{kind} {name!r} belongs to plugin {plugin!r}, which is disabled by {variable}; "
            f"enable it to use {name!r}",
        )
        self.name = name
        self.suggestions = []
        self.plugin = plugin


class CardError(ZooError, ValueError):
    """A model card that does not validate; the message carries the file and field path."""


class ConfigError(ZooError, ValueError):
    """An architecture config that its pydantic model refuses; the message names each field."""


class WeightsError(ZooError, ValueError):
    """Weights that cannot be used: wrong hash, corrupt file, keys or shapes that do not match."""


class BackboneError(ZooError, ValueError):
    """A model named as a backbone that cannot serve as one.

    Composite architectures (a video model around an image model) need the
    backbone to be an image model that declares the :class:`zoo.FeatureHints`
    they use; the message names the model, what is missing and what was found.
    """


class InputError(ZooError, ValueError):
    """An input the predictor cannot use: missing, undecodable, or not what the model takes.

    The message starts with the input (its path, or what kind of object it was) so that a
    run over many inputs can report each failure on one line and carry on.
    """

    def __init__(self, source: str, problem: str) -> None:
        super().__init__(f"{source}: {problem}")
        self.source = source
        self.problem = problem


class PluginError(ZooError, RuntimeError):
    """A plugin's own code (builder, converter) failed; the message names the plugin's function."""


class CacheError(ZooError, OSError):
    """The zoo cache (``ZOO_CACHE``) cannot be used for what was asked: not a folder, read-only."""


class OutputError(ZooError, OSError):
    """An output path that cannot be written, or a folder that would lose the user's files."""


class PublishError(ZooError, RuntimeError):
    """Publishing to the Hub failed, or cannot start: no token, no network, refused."""


class ArgumentError(ZooError, ValueError):
    """An argument of the wrong kind or form, e.g. ``zoo.load(None)`` or ``"hf-hub:"``."""


class OptionError(ArgumentError):
    """An option that cannot apply, or a value it cannot take, named as the caller wrote it.

    The message names options as ``{name}`` placeholders, written ``name=`` in Python
    and ``--name`` on the command line (:meth:`for_command_line`), so that one check in
    the library serves both with the same sentence::

        OptionError("{clips} applies to models that average clips", "clips")
    """

    def __init__(self, template: str, *options: str) -> None:
        self.template = template
        self.options = options
        super().__init__(self._spelled(lambda option: f"{option}="))

    def __str__(self) -> str:
        return str(self.args[0])

    def for_command_line(self) -> str:
        return self._spelled(lambda option: f"--{option.replace('_', '-')}")

    def _spelled(self, spelling: Callable[[str], str]) -> str:
        text = self.template
        for option in self.options:
            text = text.replace(f"{{{option}}}", spelling(option))
        return text


def check_count(option: str, value: object) -> None:
    """Refuse anything but a whole number of at least 1 (``True`` is no count either)."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise OptionError(
            f"{{{option}}} must be a whole number of at least 1, found {value!r}", option
        )


class ScaffoldError(ZooError, ValueError):
    """A plugin skeleton that cannot be written: a bad name, a taken name, a folder in the way."""


def describe_validation_error(error: ValidationError, prefix: str = "") -> str:
    """One line for all problems: ``field.path: message (found: value); ...``.

    ``prefix`` places the paths inside a larger document (``"config."``).
    """
    lines = []
    for problem in error.errors():
        path = ".".join(str(part) for part in problem["loc"])
        where = f"{prefix}{path}" if path else (prefix.rstrip(".") or "(card)")
        found = problem.get("input")
        shown = "" if isinstance(found, dict) else f" (found: {found!r})"
        lines.append(f"{where}: {problem['msg']}{shown}")
    return one_line("; ".join(lines))


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines included) as one space."""
    return " ".join(str(text).split())


class ExportError(ZooError, ValueError):
    """A model that cannot be exported as asked: a size it cannot take, an exporter failure,
    an output folder that cannot be written."""


class ExportCheckError(ExportError):
    """An exported graph that onnxruntime runs differently from PyTorch; nothing was written.

    ``report`` holds every check's numbers, for a caller that wants more than the message.
    """

    def __init__(self, message: str, report: object) -> None:
        super().__init__(message)
        self.report = report


class InterpretError(ZooError, ValueError):
    """An interpretation request the model or input cannot serve (a layer without spatial
    axes, a forecaster asked for Grad-CAM, pixels outside [0, 1]); says what was expected."""


class RuntimeCompileError(ZooError, RuntimeError):
    """A runtime (OpenVINO) cannot run a graph as asked: it fails to compile it, or its export
    check found it differs from PyTorch. The default path falls back to another backend."""


class QuantizationError(ZooError, ValueError):
    """A model that cannot be quantized as asked: no calibration inputs, no NNCF, a failure."""


class AccuracyDropError(QuantizationError):
    """A reduced-precision model that agrees with float32 less than the threshold asks.

    ``accuracy`` holds the measured figures, for a caller that wants more than the message.
    """

    def __init__(self, message: str, accuracy: object) -> None:
        super().__init__(message)
        self.accuracy = accuracy


class FinetuneError(ZooError, ValueError):
    """Data or a model that fine-tuning cannot use: one class only, an empty class folder, a
    validation label training never saw, too many unreadable files, a model that is not a
    classifier; says what was expected and what was found."""
