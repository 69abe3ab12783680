"""DETR's raw outputs to detections: boxes in pixels of the original image, scores, labels."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from zoo_plugins.detr.boxes import cxcywh_to_xyxy


def postprocess(
    outputs: Mapping[str, Tensor],
    image_sizes: Tensor | Sequence[tuple[int, int]],
    threshold: float = 0.5,
) -> list[dict[str, Tensor]]:
    """One dict per image: ``boxes`` (K, 4) xyxy pixels, ``scores`` (K,), ``labels`` (K,).

    ``image_sizes`` holds each original image's (height, width): boxes are
    predicted relative to the image, so they scale straight back to it whatever
    resize happened in between. A query's score is its best class probability
    under a softmax that includes no-object, with no-object itself excluded
    from the choice (as the authors' PostProcess); queries scoring above
    ``threshold`` are kept, in query order. For COCO checkpoints the label is
    the COCO category id (the ``coco91`` label set).
    """
    logits, boxes = outputs["logits"], outputs["boxes"]
    sizes = torch.as_tensor(image_sizes, dtype=boxes.dtype, device=boxes.device)
    if sizes.shape != (logits.shape[0], 2):
        raise ValueError(
            f"image_sizes must hold one (height, width) per image: expected shape "
            f"({logits.shape[0]}, 2), found {tuple(sizes.shape)}"
        )
    scores, labels = logits.softmax(-1)[..., :-1].max(-1)
    height, width = sizes.unbind(1)
    scale = torch.stack((width, height, width, height), dim=1)[:, None, :]
    pixels = cxcywh_to_xyxy(boxes) * scale
    detections = []
    for image_scores, image_labels, image_boxes in zip(scores, labels, pixels, strict=True):
        keep = image_scores > threshold
        detections.append(
            {"boxes": image_boxes[keep], "scores": image_scores[keep], "labels": image_labels[keep]}
        )
    return detections
