"""Adversarial examples: FGSM (Goodfellow et al. 2015) and PGD (Madry et al. 2018).

Both run through captum's ``FGSM`` and ``PGD`` in pixel space: the attacked tensor holds
pixel values in [0, 1], and the card's normalisation is part of the attacked function.
So ``eps`` means the same for every model (8/255 is a change of 8 grey levels) and the
adversarial input stays an image one could save, whatever mean and std the model wants.
captum skips pixels whose gradient is below 1e-6; here every non-zero gradient counts, as
in the paper, because a confident model's gradients are that small.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo.errors import InterpretError
from zoo.interpret.results import Attack, AttackedSample, Prediction
from zoo.interpret.tensors import Target, class_scores, resolve_target

Normalize = Callable[[Tensor], Tensor]


def fgsm(
    model: nn.Module,
    pixels: Tensor,
    target: Target = None,
    eps: float = 8 / 255,
    *,
    normalize: Normalize | None = None,
    labels: Sequence[str] | None = None,
) -> Attack:
    """One signed-gradient step of size ``eps`` away from class ``target`` (default top-1).

    ``pixels`` is a batch in [0, 1] in the model's layout; ``normalize`` maps it to what
    the model eats (the card's value range, mean and std). The result reports clean and
    adversarial top-1, the target's probability before and after, and the L-infinity size.
    """
    from captum.robust import FGSM

    forward, targets = _attacked(model, pixels, target, normalize, eps)
    attack = FGSM(forward, loss_func=_loss, lower_bound=0.0, upper_bound=1.0)
    attack.zero_thresh = 0.0
    with _quiet_gradients():
        adversarial = attack.perturb(pixels, epsilon=eps, target=targets).detach()
    samples = _outcomes(forward, pixels, adversarial, targets, labels)
    return Attack(
        method="fgsm", eps=eps, steps=1, step_size=eps, samples=samples, adversarial=adversarial
    )


def pgd(
    model: nn.Module,
    pixels: Tensor,
    target: Target = None,
    eps: float = 8 / 255,
    *,
    steps: int = 10,
    step_size: float | None = None,
    random_start: bool = False,
    normalize: Normalize | None = None,
    labels: Sequence[str] | None = None,
) -> Attack:
    """``steps`` FGSM steps of ``step_size`` (default 2.5 * eps / steps), each projected
    back into the L-infinity ball of radius ``eps`` around the clean pixels and [0, 1].

    ``random_start`` begins at a random point of the ball (Madry et al.); seed torch for
    a repeatable result. Otherwise as :func:`fgsm`.
    """
    from captum.robust import PGD

    if steps < 1:
        raise InterpretError(f"expected at least one PGD step, found steps={steps}")
    step = 2.5 * eps / steps if step_size is None else step_size
    forward, targets = _attacked(model, pixels, target, normalize, eps)
    attack = PGD(forward, loss_func=_loss, lower_bound=0.0, upper_bound=1.0)
    attack.fgsm.zero_thresh = 0.0
    with _quiet_gradients():
        adversarial = attack.perturb(
            pixels,
            radius=eps,
            step_size=step,
            step_num=steps,
            target=targets,
            random_start=random_start,
            norm="Linf",
        ).detach()
    samples = _outcomes(forward, pixels, adversarial, targets, labels)
    return Attack(
        method="pgd", eps=eps, steps=steps, step_size=step, samples=samples, adversarial=adversarial
    )


def _attacked(
    model: nn.Module, pixels: Tensor, target: Target, normalize: Normalize | None, eps: float
) -> tuple[Callable[[Tensor], Tensor], Tensor]:
    """The function under attack (pixels -> class scores) and the class of each sample."""
    if not isinstance(pixels, Tensor) or not pixels.is_floating_point():
        raise InterpretError("attacks take one floating-point pixel tensor in [0, 1]")
    if eps < 0:
        raise InterpretError(f"expected an attack size eps >= 0, found {eps}")
    low, high = float(pixels.min()), float(pixels.max())
    if low < 0.0 or high > 1.0:
        raise InterpretError(
            f"attacks work in pixel space: expected values in [0, 1], found [{low:.3g}, "
            f"{high:.3g}]; pass the pixels before normalisation and normalize= for the rest"
        )
    prepare = normalize or (lambda x: x)
    targets = resolve_target(model, (prepare(pixels),), target)
    scores = class_scores(model, targets)
    return (lambda x: scores(prepare(x))), targets


@contextmanager
def _quiet_gradients() -> Iterator[None]:
    """captum warns on every step that the pixels did not require gradients: by design here,
    the caller's tensor is never marked, captum marks its own copy."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Input Tensor .* did not already require")
        yield


def _loss(scores: Tensor, targets: Tensor) -> Tensor:
    """Per-sample cross-entropy on the scores: captum's default assumes probabilities."""
    return F.cross_entropy(scores, targets, reduction="none")


def _outcomes(
    forward: Callable[[Tensor], Tensor],
    clean: Tensor,
    adversarial: Tensor,
    targets: Tensor,
    labels: Sequence[str] | None,
) -> list[AttackedSample]:
    with torch.no_grad():
        before = F.softmax(forward(clean), dim=1)
        after = F.softmax(forward(adversarial), dim=1)
    linf = (adversarial - clean).flatten(1).abs().amax(dim=1)
    return [
        AttackedSample(
            target=_prediction(before[i], int(targets[i]), labels),
            target_after=_prediction(after[i], int(targets[i]), labels),
            clean=_prediction(before[i], int(before[i].argmax()), labels),
            adversarial=_prediction(after[i], int(after[i].argmax()), labels),
            linf=float(linf[i]),
        )
        for i in range(clean.shape[0])
    ]


def _prediction(probabilities: Tensor, index: int, labels: Sequence[str] | None) -> Prediction:
    label = labels[index] if labels is not None and index < len(labels) else None
    return Prediction(index=index, label=label, probability=float(probabilities[index]))
