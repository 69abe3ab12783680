"""The options of an explanation or an attack, checked before any work: each for the
method that uses it, each value in its range, a window no larger than the input.

An option given for another method would be ignored, and NaN passes every range
comparison; both are refused in one line (:class:`~zoo.errors.OptionError`, which names
the option as the caller spells it), from Python as from the command line.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import TYPE_CHECKING, Any

from zoo.errors import InterpretError, OptionError, check_count

if TYPE_CHECKING:
    from zoo.interpret.subject import Subject


def check_explain_options(
    method: str = "gradcam",
    layer: str | None = None,
    window: tuple[int, ...] | None = None,
    stride: tuple[int, ...] | None = None,
    baseline: float | None = None,
    **_: Any,
) -> None:
    """The explanation's options, each for the method that uses it, before a model is built."""
    if method not in ("gradcam", "occlusion"):
        raise InterpretError(f"unknown method {method!r}; expected gradcam or occlusion")
    if method == "gradcam":
        _only_for("occlusion", "gradcam", window=window, stride=stride, baseline=baseline)
    else:
        _only_for("gradcam", "occlusion", layer=layer)
    if baseline is not None:
        _finite("baseline", baseline, high=1.0)


def check_attack_options(
    method: str = "fgsm",
    eps: float = 2 / 255,
    steps: int | None = None,
    step_size: float | None = None,
    **_: Any,
) -> None:
    """The attack's options, each for the method that uses it, before a model is built."""
    if method not in ("fgsm", "pgd"):
        raise InterpretError(f"unknown method {method!r}; expected fgsm or pgd")
    if method == "fgsm":
        _only_for("pgd", "fgsm", steps=steps, step_size=step_size)
    _finite("eps", eps)
    if step_size is not None:
        _finite("step_size", step_size)
    if steps is not None:
        check_count("steps", steps)


def _only_for(owner: str, method: str, **options: object) -> None:
    """Refuse options given for another method than the one asked: they would be ignored."""
    given = [option for option, value in options.items() if value is not None]
    if given:
        named = " and ".join(f"{{{option}}}" for option in given)
        belong = "belongs" if len(given) == 1 else "belong"
        raise OptionError(
            f"{named} {belong} to {{method}} {owner}, not {method}; drop "
            f"{'it' if len(given) == 1 else 'them'} or choose {owner}",
            *given,
            "method",
        )


def _finite(option: str, value: object, high: float | None = None) -> None:
    """A number at least 0 (and at most ``high``): NaN and infinity pass every comparison."""
    number = float(value) if isinstance(value, Real) and not isinstance(value, bool) else None
    within = number is not None and math.isfinite(number) and number >= 0
    if number is None or not within or (high is not None and number > high):
        limit = f"between 0 and {high:g}" if high is not None else "a finite number of at least 0"
        raise OptionError(f"{{{option}}} must be {limit}, found {value!r}", option)


def map_sizes(subject: Subject) -> dict[str, int]:
    """The input's size along each map axis (T, H, W or H, W), after pre-processing."""
    shape = subject.pixels[0].shape
    return {axis: shape[i] for i, axis in enumerate(subject.layout) if axis not in "NC"}


def per_axis(subject: Subject, sizes: tuple[int, ...] | None) -> tuple[int, ...] | None:
    """One size for every map axis (``--window 32``), or the sizes as given."""
    if sizes is not None and len(sizes) == 1:
        return sizes * len(map_sizes(subject))
    return sizes


def check_window(subject: Subject, window: tuple[int, ...]) -> None:
    """An occlusion window larger than the input would hide all of it at once."""
    axes = map_sizes(subject)
    sizes = tuple(axes.values())
    if len(window) == len(sizes) and any(w > s for w, s in zip(window, sizes, strict=True)):
        shown = "x".join(map(str, sizes))
        raise OptionError(
            f"the occlusion {{window}} {'x'.join(map(str, window))} is larger than the input, "
            f"which is {shown} ({''.join(axes)}) after the card's pre-processing",
            "window",
        )
