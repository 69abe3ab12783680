"""The inference layer: from a file on disk to labels, boxes or forecast frames, by the card.

``zoo.predictor(name)`` (this module's :func:`predictor`) builds a :class:`Predictor`;
``zoo/inference`` holds its parts: decoding (``decode``), frame sampling (``sampling``),
the card's spatial transforms and normalisation (``transforms``, ``preprocess``), the
backends, post-processing by task, typed results, pictures of the model input and the
benchmark. Importing this package imports torch; ``import zoo`` does not.
"""

from __future__ import annotations

from zoo.inference.factory import BACKENDS, predictor
from zoo.inference.predictor import Predictor
from zoo.inference.preprocess import Prepared
from zoo.inference.results import (
    Classification,
    Detection,
    Detections,
    Features,
    Forecast,
    LabelScore,
    Result,
)

__all__ = [
    "BACKENDS",
    "Classification",
    "Detection",
    "Detections",
    "Features",
    "Forecast",
    "LabelScore",
    "Predictor",
    "Prepared",
    "Result",
    "predictor",
]
