"""From a model name and a file to an explanation or an attack, with its pictures.

This is what ``zoo explain`` and ``zoo attack`` call, and it is usable from Python alone.
The input goes through the predictor's pre-processing (decode, sample, resize, crop, as
the card says) and stops at pixels in [0, 1]; the card's normalisation then sits inside
the model (:class:`PixelModel`), so every method works in pixel space: occlusion hides a
region with mid-grey whatever the model's mean and std, and attacks are bounded in grey
levels.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from zoo.cards import Card
from zoo.errors import InterpretError
from zoo.interpret import drawing
from zoo.interpret.attacks import fgsm, pgd
from zoo.interpret.gradcam import grad_cam, target_layer
from zoo.interpret.occlusion import occlusion, output_change
from zoo.interpret.results import AttackReport, Explanation, Prediction
from zoo.registry import default_registry

GREY = 0.5
SHEET_COLUMNS = 8
METHODS = ("gradcam", "occlusion", "fgsm", "pgd")
CLASSIFICATION = ("image-classification", "video-classification")


class PixelModel(nn.Module):
    """The model with the card's normalisation in front: it takes pixels in [0, 1]."""

    def __init__(self, model: nn.Module, normalizations: list[nn.Module]) -> None:
        super().__init__()
        self.model = model
        self.normalizations = nn.ModuleList(normalizations)

    def forward(self, *pixels: Tensor) -> Tensor:
        normalized = (n(p) for n, p in zip(self.normalizations, pixels, strict=True))
        return self.model(*normalized)


@dataclass
class Subject:
    """One input, prepared: the model in pixel space and the pixels of one row (clip)."""

    predictor: Any
    model: PixelModel
    pixels: tuple[Tensor, ...]
    source: str
    note: str

    @property
    def card(self) -> Any:
        return self.predictor.card

    @property
    def classifies(self) -> bool:
        return self.card.task in CLASSIFICATION

    @property
    def layout(self) -> str:
        return self.card.inputs[0].layout

    def frames(self, pixels: Tensor | None = None) -> np.ndarray:
        """uint8 frames (T, H, W, 3) of the first input (T = 1 for an image)."""
        shown = self.pixels[0] if pixels is None else pixels
        return self.predictor.unrender(shown.cpu(), self.card.inputs[0].name, normalized=False)[0]

    def prediction(self, index: int, probabilities: Tensor) -> Prediction:
        labels = self.card.label_names()
        label = labels[index] if labels and index < len(labels) else None
        return Prediction(index=index, label=label, probability=float(probabilities[index]))

    def probabilities(self) -> Tensor:
        with torch.no_grad():
            return torch.softmax(self.model(*self.pixels), dim=1)[0].float().cpu()


def open_subject(
    name: str,
    source: str | PathLike[str],
    *,
    method: str | None = None,
    target: int | str | None = None,
    weights: str | PathLike[str] | None = None,
    layout: str | None = None,
    pretrained: bool = True,
    device: str = "auto",
) -> Subject:
    """The model NAME in pixel space and the middle row (clip, or frame) of ``source``.

    Given the ``method`` and ``target`` to come, the request is checked against the card
    first, so a request that cannot work fails before a model is built.
    """
    if method is not None and not name.startswith("hf-hub:"):  # a Hub card is read later
        check_request(default_registry().card(name), method, target)
    predictor = seeded_predictor(
        name, device=device, weights=weights, layout=layout, pretrained=pretrained
    )
    prepared = predictor.preprocess(source, normalize=False)
    row = prepared.rows // 2
    place = predictor.backend.device
    pixels = tuple(tensor[row : row + 1].to(place) for tensor in prepared.inputs.values())
    normalizations = [predictor.normalizations[key].to(place) for key in prepared.inputs]
    note = prepared.note
    if prepared.rows > 1:
        note += f"; this is row {row + 1} of {prepared.rows}, the middle one"
    model = PixelModel(predictor.model, normalizations).eval()
    return Subject(predictor, model, pixels, str(source), note.strip("; "))


def check_request(card: Card, method: str, target: int | str | None) -> int | None:
    """What the card alone shows about a request: the target's class index (None: the
    top-1), or an error for a method the model cannot serve."""
    if method not in METHODS:
        raise InterpretError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
    if card.task in CLASSIFICATION:
        return class_index(target, card.label_names())
    task = f"{card.name} is a {card.task} model"
    if method in ("fgsm", "pgd"):
        raise InterpretError(f"attacks move a classifier's answer and {task}")
    if method == "gradcam":
        raise InterpretError(
            f"Grad-CAM explains a class score and {task}; occlusion maps where hiding the "
            "input changes its output (--method occlusion)"
        )
    if target is not None:
        raise InterpretError(f"a target names a class and {task}, without classes")
    return None


def seeded_predictor(name: str, *, seed: int = 0, **options: Any) -> Any:
    """The predictor of model NAME on PyTorch, uncompiled (the methods need its gradients).

    Random weights (``pretrained=False``) are drawn from a fixed seed, so that a picture
    made with ``--random`` is made again by the same command; the caller's random state
    is left as it was.
    """
    from zoo.inference import predictor

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return predictor(name, backend="torch", compile=False, **options)


def class_index(target: int | str | None, labels: list[str] | None) -> int | None:
    """A class given by index, by index as text, or by label name (None: the top-1)."""
    if target is None or isinstance(target, int):
        return target
    if target.isdigit():
        return int(target)
    if labels and target in labels:
        return labels.index(target)
    close = difflib.get_close_matches(target, labels or [], n=3)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise InterpretError(
        f"unknown target label {target!r}{hint} (give a label of the model's card or a class index)"
    )


def explain(
    subject: Subject,
    output: Path,
    *,
    method: str = "gradcam",
    target: int | str | None = None,
    layer: str | None = None,
    window: tuple[int, ...] | None = None,
    stride: tuple[int, ...] | None = None,
    baseline: float = GREY,
    progress: bool = False,
) -> Explanation:
    """Grad-CAM or occlusion of ``subject`` for ``target``, with its pictures in ``output``.

    ``window`` and ``stride`` (occlusion) are per map axis (T, H, W or H, W); by default
    about a seventh of the frame, half of that as stride, and a quarter of the clip. The
    occluded region takes the pixel value ``baseline`` (mid-grey). A model that does not
    classify (a forecaster) gets occlusion of :func:`output_change`: where hiding the input
    moves its output most.
    """
    if method not in ("gradcam", "occlusion"):
        raise InterpretError(f"unknown method {method!r}; expected gradcam or occlusion")
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
    return Explanation(
        model=subject.card.name,
        input=subject.source,
        method=method,
        score=scored.score,
        target=scored.target,
        top=scored.top,
        axes="".join(axis for axis in subject.layout if axis not in "NC"),
        shape=list(heat.shape),
        frame_share=_frame_share(heat) if "T" in subject.layout else None,
        files=[str(f) for f in _draw_explanation(subject, heat, output, method)],
        note=subject.note,
        heat=heat.numpy(),
        **settings,
    )


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
    steps: int = 10,
    step_size: float | None = None,
    target: int | str | None = None,
) -> AttackReport:
    """FGSM or PGD on ``subject`` in pixel space, with the adversarial input and a figure."""
    if method not in ("fgsm", "pgd"):
        raise InterpretError(f"unknown method {method!r}; expected fgsm or pgd")
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
        result = pgd(
            subject.model, pixels, index, eps, steps=steps, step_size=step_size, labels=labels
        )
    files = _draw_attack(subject, result, output)
    return AttackReport(
        model=subject.card.name,
        input=subject.source,
        attack=result,
        files=[str(f) for f in files],
        note=subject.note,
    )


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

    output.mkdir(parents=True, exist_ok=True)
    frames = subject.frames()
    scaled = drawing.scaled(heat.numpy() if "T" in subject.layout else heat[None].numpy())
    overlays = drawing.enlarged(
        np.stack([drawing.overlay(f, h) for f, h in zip(frames, scaled, strict=True)])
    )
    files = [drawing.write_array(output / f"{method}.npy", heat.numpy())]
    if "T" not in subject.layout:
        return [drawing.write_png(output / f"{method}.png", overlays[0]), *files]
    fps = subject.card.inputs[0].fps or 10.0
    sheet = contact_sheet(overlays[None], columns=SHEET_COLUMNS)
    return [
        write_picture(overlays[None], output / f"{method}.gif", fps=fps),
        drawing.write_png(output / f"{method}-frames.png", sheet),
        *files,
    ]


def _draw_attack(subject: Subject, result: Any, output: Path) -> list[Path]:
    from zoo.inference.render import write_picture

    output.mkdir(parents=True, exist_ok=True)
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
