"""From a model name and a file to an explanation or an attack, with its pictures.

This is what ``zoo explain`` and ``zoo attack`` call, and it is usable from Python alone:
:func:`explain_file` and :func:`attack_file` from a name and a path, or :func:`explain`
and :func:`attack` on a :class:`~zoo.interpret.subject.Subject` already opened. Each
writes into an output folder by :mod:`zoo.output`'s rule (new, empty or zoo's own;
``force`` writes beside a user's files), with its result as JSON beside the pictures.
"""

from __future__ import annotations

from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor

from zoo.errors import InterpretError
from zoo.interpret import drawing
from zoo.interpret.attacks import fgsm, pgd
from zoo.interpret.gradcam import grad_cam, target_layer
from zoo.interpret.occlusion import occlusion, output_change
from zoo.interpret.options import (
    check_attack_options,
    check_explain_options,
    check_window,
    per_axis,
)
from zoo.interpret.results import AttackReport, Explanation, Prediction, Result
from zoo.interpret.subject import Subject, check_request, open_subject
from zoo.output import check_folder, output_folder, write_text_atomic

GREY = 0.5
PGD_STEPS = 10
SHEET_COLUMNS = 8  # at most; a short clip is laid out in two lines
EXPLANATION = "explanation.json"
ATTACK = "attack.json"


def explanation_files(method: str, clip: bool | None = None) -> list[str]:
    """What an explanation writes: for an image, a clip, or (None) either of them."""
    image = [f"{method}.png"] if clip is not True else []
    video = [f"{method}.gif", f"{method}-frames.png"] if clip is not False else []
    return [*image, *video, f"{method}.npy", EXPLANATION]


def attack_files(clip: bool | None = None) -> list[str]:
    """What an attack writes: for an image, a clip, or (None) either of them."""
    image = ["adversarial.png"] if clip is not True else []
    video = ["adversarial.gif"] if clip is not False else []
    return ["attack.png", *image, *video, "adversarial.npy", ATTACK]


def explain_file(
    name: str,
    source: str | PathLike[str],
    output: Path,
    *,
    weights: str | PathLike[str] | None = None,
    layout: str | None = None,
    pretrained: bool = True,
    device: str = "auto",
    force: bool = False,
    **options: Any,
) -> Explanation:
    """:func:`explain` of model NAME on the file ``source``; ``options`` are explain's.

    The request and the output folder are checked before the model is built.
    """
    check_explain_options(**options)
    check_folder(output, explanation_files(options.get("method", "gradcam")), force=force)
    subject = open_subject(
        name,
        source,
        method=options.get("method", "gradcam"),
        target=options.get("target"),
        weights=weights,
        layout=layout,
        pretrained=pretrained,
        device=device,
    )
    return explain(subject, output, force=force, **options)


def attack_file(
    name: str,
    source: str | PathLike[str],
    output: Path,
    *,
    weights: str | PathLike[str] | None = None,
    layout: str | None = None,
    pretrained: bool = True,
    device: str = "auto",
    force: bool = False,
    **options: Any,
) -> AttackReport:
    """:func:`attack` of model NAME on the file ``source``; ``options`` are attack's."""
    check_attack_options(**options)
    check_folder(output, attack_files(), force=force)
    subject = open_subject(
        name,
        source,
        method=options.get("method", "fgsm"),
        target=options.get("target"),
        weights=weights,
        layout=layout,
        pretrained=pretrained,
        device=device,
    )
    return attack(subject, output, force=force, **options)


def explain(
    subject: Subject,
    output: Path,
    *,
    method: str = "gradcam",
    target: int | str | None = None,
    layer: str | None = None,
    window: tuple[int, ...] | None = None,
    stride: tuple[int, ...] | None = None,
    baseline: float | None = None,
    progress: bool = False,
    force: bool = False,
) -> Explanation:
    """Grad-CAM or occlusion of ``subject`` for ``target``, with its pictures in ``output``.

    ``window`` and ``stride`` (occlusion) are per map axis (T, H, W or H, W), or one size
    for every axis; by default about a seventh of the frame, half of that as stride, and a
    quarter of the clip. The occluded region takes the pixel value ``baseline`` (default
    mid-grey). A model that does not classify (a forecaster) gets occlusion of
    :func:`output_change`: where hiding the input moves its output most.
    """
    check_explain_options(
        method=method, layer=layer, window=window, stride=stride, baseline=baseline
    )
    window, stride = per_axis(subject, window), per_axis(subject, stride)
    if window is not None:
        check_window(subject, window)
    scored = _scored(subject, method, target)
    if method == "gradcam":
        module, tokens, path = target_layer(subject.model.model, layer)
        heat = grad_cam(
            scored.model, subject.pixels, scored.index, module, tokens=tokens, layout=subject.layout
        )
        settings: dict[str, Any] = {"layer": path}
    else:
        window = window or default_window(subject)
        stride = stride or tuple(max(1, size // 2) for size in window)
        baseline = GREY if baseline is None else baseline
        maps = occlusion(
            scored.model,
            subject.pixels,
            scored.index,
            window,
            stride,
            layout=subject.layout,
            baseline=baseline,
            batch=4,
            progress=progress,
        )
        heat = maps[0] if isinstance(maps, tuple) else maps
        settings = {"window": list(window), "stride": list(stride), "baseline": baseline}
    heat = heat[0].float().cpu()
    files = explanation_files(method, clip="T" in subject.layout)
    with output_folder(output, files, force=force) as folder:
        result = Explanation(
            model=subject.card.name,
            input=subject.source,
            method=method,
            score=scored.score,
            target=scored.target,
            top=scored.top,
            axes="".join(axis for axis in subject.layout if axis not in "NC"),
            shape=list(heat.shape),
            frame_share=_frame_share(heat) if "T" in subject.layout else None,
            files=[str(f) for f in _draw_explanation(subject, heat, folder, method)],
            note=subject.note,
            heat=heat.numpy(),
            **settings,
        )
        return _with_record(result, folder / EXPLANATION)


@dataclass
class Scored:
    """What a method explains: a function of the pixels, the score's index, and its name."""

    model: Any
    index: int
    score: str
    target: Prediction | None = None
    top: Prediction | None = None


def _scored(subject: Subject, method: str, target: int | str | None) -> Scored:
    index = check_request(subject.card, method, target)
    if not subject.classifies:
        return Scored(output_change(subject.model, subject.pixels), 0, "output change")
    probabilities = subject.probabilities()
    top = int(probabilities.argmax())
    index = top if index is None else index
    return Scored(
        subject.model,
        index,
        "class score",
        subject.prediction(index, probabilities),
        subject.prediction(top, probabilities),
    )


def attack(
    subject: Subject,
    output: Path,
    *,
    method: str = "fgsm",
    eps: float = 2 / 255,
    steps: int | None = None,
    step_size: float | None = None,
    target: int | str | None = None,
    force: bool = False,
) -> AttackReport:
    """FGSM or PGD on ``subject`` in pixel space, with the adversarial input and a figure.

    ``steps`` (default 10) and ``step_size`` (default 2.5 eps / steps) are PGD's.
    """
    check_attack_options(method=method, eps=eps, steps=steps, step_size=step_size)
    index = check_request(subject.card, method, target)
    if len(subject.pixels) != 1:
        raise InterpretError(
            f"attacks perturb one pixel input; {subject.card.name} takes "
            f"{len(subject.pixels)} ({', '.join(spec.name for spec in subject.card.inputs)})"
        )
    labels = subject.card.label_names()
    (pixels,) = subject.pixels
    if method == "fgsm":
        result = fgsm(subject.model, pixels, index, eps, labels=labels)
    else:
        steps = PGD_STEPS if steps is None else steps
        result = pgd(
            subject.model, pixels, index, eps, steps=steps, step_size=step_size, labels=labels
        )
    with output_folder(output, attack_files("T" in subject.layout), force=force) as folder:
        report = AttackReport(
            model=subject.card.name,
            input=subject.source,
            attack=result,
            files=[str(f) for f in _draw_attack(subject, result, folder)],
            note=subject.note,
        )
        return _with_record(report, folder / ATTACK)


def _with_record(result: Result, path: Path) -> Any:
    """The result, written beside its pictures as the JSON ``--json`` prints."""
    write_text_atomic(path, result.model_dump_json(indent=2) + "\n")
    return result


def default_window(subject: Subject) -> tuple[int, ...]:
    """About a seventh of the frame (32 pixels at 224), and a quarter of a clip's frames."""
    shape = subject.pixels[0].shape
    sizes = {axis: shape[i] for i, axis in enumerate(subject.layout)}
    window = {"H": max(1, sizes["H"] // 7), "W": max(1, sizes["W"] // 7)}
    if "T" in sizes:
        window["T"] = max(1, sizes["T"] // 4)
    return tuple(window[axis] for axis in subject.layout if axis not in "NC")


def _frame_share(heat: Tensor) -> list[float]:
    mass = heat.clamp(min=0).sum(dim=(1, 2))
    total = float(mass.sum())
    return [float(m) / total if total > 0 else 0.0 for m in mass]


def _draw_explanation(subject: Subject, heat: Tensor, output: Path, method: str) -> list[Path]:
    from zoo.inference.render import contact_sheet, write_picture

    frames = subject.frames()
    scaled = drawing.scaled(heat.numpy() if "T" in subject.layout else heat[None].numpy())
    overlays = drawing.enlarged(
        np.stack([drawing.overlay(f, h) for f, h in zip(frames, scaled, strict=True)])
    )
    files = [drawing.write_array(output / f"{method}.npy", heat.numpy())]
    if "T" not in subject.layout:
        return [drawing.write_png(output / f"{method}.png", overlays[0]), *files]
    fps = subject.card.inputs[0].fps or 10.0
    sheet = contact_sheet(overlays[None], columns=min(SHEET_COLUMNS, -(-len(overlays) // 2)))
    return [
        write_picture(overlays[None], output / f"{method}.gif", fps=fps),
        drawing.write_png(output / f"{method}-frames.png", sheet),
        *files,
    ]


def _draw_attack(subject: Subject, result: Any, output: Path) -> list[Path]:
    from zoo.inference.render import write_picture

    clean, adversarial = subject.frames(), subject.frames(result.adversarial)
    sample = result.samples[0]
    middle = len(clean) // 2
    where = f", frame {middle + 1} of {len(clean)}" if len(clean) > 1 else ""
    figure = drawing.write_attack_figure(
        output / "attack.png",
        clean[middle],
        adversarial[middle],
        [
            f"clean: {sample.clean.describe()}",
            f"adversarial: {sample.adversarial.describe()}",
            f"change, stretched (L-inf {sample.linf * 255:.1f}/255)",
        ],
        f"{subject.card.name}: {result.method.upper()}, eps {result.eps * 255:.1f}/255{where}",
    )
    pixels = drawing.write_array(output / "adversarial.npy", result.adversarial[0].cpu().numpy())
    if len(clean) == 1:
        picture = drawing.write_png(output / "adversarial.png", adversarial[0])
    else:
        fps = subject.card.inputs[0].fps or 10.0
        picture = write_picture(adversarial[None], output / "adversarial.gif", fps=fps)
    return [figure, picture, pixels]
