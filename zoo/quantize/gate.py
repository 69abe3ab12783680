"""Accuracy is measured, not hoped for: a reduced-precision model against float32, by task.

Both models run the same held-out rows; their raw outputs go through the predictor's
own standardisation (:func:`zoo.inference.postprocess.standardize`), so what is compared
is what a user would get. One figure per task decides (``agreement``, against the
threshold, 99% by default):

- classifiers: top-1 agreement (the share of rows whose best class is float32's), with
  the top-5 overlap and the largest logit difference beside it;
- detectors: the share of float32's boxes (score at least 0.5) that the other model finds
  too, with the same label and an IoU of at least 0.9;
- forecasters: 1 - MSE(forecast, float32's) / variance of float32's forecast;
- feature extractors: the smallest mean cosine similarity of any output.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from zoo.architecture import Architecture
from zoo.cards import Card
from zoo.errors import AccuracyDropError

if TYPE_CHECKING:
    from torch import Tensor

DEFAULT_THRESHOLD = 0.99
BOX_IOU = 0.9
BOX_SCORE = 0.5
TOP_K = 5


class Accuracy(BaseModel):
    """A reduced-precision model against float32 on the same rows; ``agreement`` decides."""

    model_config = ConfigDict(extra="forbid")

    precision: str
    runtime: str = Field(description="what ran the reduced-precision model")
    rows: int = Field(description="held-out rows (clips, images) compared")
    metric: str = Field(description="what agreement measures, by task")
    agreement: float = Field(description="the deciding figure, 1.0 for identical answers")
    threshold: float
    passed: bool
    top1_agreement: float | None = None
    top5_overlap: float | None = None
    max_logit_error: float | None = Field(default=None, description="max |q - f|")
    max_relative_error: float | None = Field(
        default=None, description="max |q - f| / max |f| over every float output"
    )
    boxes_matched: float | None = None
    float32_boxes: int | None = None
    mse: float | None = None

    def describe(self) -> str:
        figures = [f"{self.metric} {self.agreement:.2%} on {self.rows} held-out rows"]
        if self.top5_overlap is not None:
            figures.append(f"top-5 overlap {self.top5_overlap:.2%}")
        if self.max_logit_error is not None:
            figures.append(f"max logit error {self.max_logit_error:.3g}")
        if self.mse is not None:
            figures.append(f"MSE {self.mse:.3g}")
        return f"{self.precision} on {self.runtime}: " + ", ".join(figures)


def measure(
    card: Card,
    architecture: Architecture,
    reference: Callable[[dict[str, Any]], Any],
    candidate: Callable[[dict[str, Any]], Any],
    rows: list[dict[str, Any]],
    *,
    precision: str,
    runtime: str,
    threshold: float = DEFAULT_THRESHOLD,
) -> Accuracy:
    """Run float32 (``reference``) and ``candidate`` on ``rows``; the figures of the task."""
    import torch

    from zoo.inference.postprocess import standardize

    ours, theirs = [], []
    for row in rows:
        inputs = {name: torch.as_tensor(value) for name, value in row.items()}
        theirs.append(standardize(reference(inputs), inputs, card, architecture))
        ours.append(standardize(candidate(inputs), inputs, card, architecture))
    figures = _figures(card.task, theirs, ours)
    agreement = figures.pop("agreement")
    return Accuracy(
        precision=precision,
        runtime=runtime,
        rows=len(rows),
        agreement=round(agreement, 6),
        threshold=threshold,
        passed=agreement >= threshold,
        **figures,
    )


def enforce(accuracy: Accuracy, model: str, *, accept_drop: bool) -> None:
    """Refuse a model below the threshold, with its numbers, unless the drop is accepted."""
    if accuracy.passed or accept_drop:
        return
    raise AccuracyDropError(
        f"{model}: {accuracy.describe()}, below the threshold {accuracy.threshold:.2%}; "
        "calibrate on more (or more typical) inputs, or pass --accept-drop (accept_drop=True) "
        "to use it anyway",
        accuracy,
    )


def _figures(task: str, reference: list[Any], found: list[Any]) -> dict[str, Any]:
    if task in ("image-classification", "video-classification"):
        return _classification(_cat(reference), _cat(found))
    if task == "object-detection":
        return _detection(
            [image for rows in reference for image in rows], [i for rows in found for i in rows]
        )
    if task == "video-forecasting":
        return _forecast(_cat(reference), _cat(found))
    return _features(reference, found)


def _cat(rows: list[Tensor]) -> Tensor:
    import torch

    return torch.cat(rows).float()


def _classification(reference: Tensor, found: Tensor) -> dict[str, Any]:
    k = min(TOP_K, reference.shape[-1])
    top1 = (reference.argmax(-1) == found.argmax(-1)).float().mean().item()
    ours, theirs = found.topk(k, dim=-1).indices, reference.topk(k, dim=-1).indices
    overlap = (ours.unsqueeze(-1) == theirs.unsqueeze(-2)).any(-1).float().sum(-1) / k
    error = (found - reference).abs().max().item()
    return {
        "metric": "top-1 agreement",
        "agreement": top1,
        "top1_agreement": round(top1, 6),
        "top5_overlap": round(overlap.mean().item(), 6),
        "max_logit_error": round(error, 6),
        "max_relative_error": round(error / max(reference.abs().max().item(), 1e-12), 6),
    }


def _detection(reference: list[dict[str, Tensor]], found: list[dict[str, Tensor]]) -> dict:
    matched = total = 0
    for theirs, ours in zip(reference, found, strict=True):
        keep = theirs["scores"] >= BOX_SCORE
        boxes, labels = theirs["boxes"][keep], theirs["labels"][keep]
        total += len(boxes)
        if len(boxes) and len(ours["boxes"]):
            overlaps = _iou(boxes, ours["boxes"])
            same = labels.unsqueeze(1) == ours["labels"].unsqueeze(0)
            matched += int(((overlaps >= BOX_IOU) & same).any(1).sum())
    share = matched / total if total else 1.0
    return {
        "metric": f"float32 boxes matched (IoU >= {BOX_IOU}, same label)",
        "agreement": share,
        "boxes_matched": round(share, 6),
        "float32_boxes": total,
    }


def _iou(a: Tensor, b: Tensor) -> Tensor:
    """Pairwise IoU of xyxy boxes ``a`` (N, 4) and ``b`` (M, 4)."""
    import torch

    top_left = torch.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (bottom_right - top_left).clamp(min=0).prod(-1)
    area_a = (a[:, 2:] - a[:, :2]).clamp(min=0).prod(-1)
    area_b = (b[:, 2:] - b[:, :2]).clamp(min=0).prod(-1)
    return inter / (area_a[:, None] + area_b[None, :] - inter).clamp(min=1e-12)


def _forecast(reference: Tensor, found: Tensor) -> dict[str, Any]:
    mse = ((found - reference) ** 2).mean().item()
    variance = max(reference.var().item(), 1e-12)
    return {
        "metric": "1 - MSE / variance of the float32 forecast",
        "agreement": max(0.0, 1 - mse / variance),
        "mse": round(mse, 9),
    }


def _features(reference: list[dict[str, Tensor]], found: list[dict[str, Tensor]]) -> dict:
    import torch

    similarities = []
    for name in reference[0]:
        theirs = torch.cat([rows[name] for rows in reference]).flatten(1).float()
        ours = torch.cat([rows[name] for rows in found]).flatten(1).float()
        similarities.append(torch.nn.functional.cosine_similarity(ours, theirs).mean().item())
    metric = "mean cosine similarity (least of the outputs)"
    return {"metric": metric, "agreement": min(similarities)}
