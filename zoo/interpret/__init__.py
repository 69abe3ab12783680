"""Looking inside the models: Grad-CAM, occlusion, feature space and adversarial examples.

Every function works on a built model and tensors, so it serves any zoo model, a
third-party plugin's included; what only the plugin knows (the Grad-CAM layer, the
pooled features) comes from its :class:`~zoo.FeatureHints`.

    >>> import zoo, zoo.interpret
    >>> model = zoo.load("resnet50.tv_in1k")
    >>> heat = zoo.interpret.grad_cam(model, images)            # (N, H, W), top-1 class
    >>> heat = zoo.interpret.occlusion(model, clips, 7, window=(4, 32, 32), stride=(2, 16, 16))
    >>> attack = zoo.interpret.fgsm(model, pixels, eps=2 / 255, normalize=normalize)
    >>> attack.samples[0].adversarial                           # top-1 after the attack

From files, through the predictor's pre-processing (what ``zoo explain``, ``zoo attack``
and ``zoo embed`` call):

    >>> zoo.interpret.explain_file("c3d-sports1m", "clip.mp4", Path("out")).frame_share
    >>> zoo.interpret.attack_file("resnet50.tv_in1k", "cat.jpg", Path("adv"), eps=2 / 255)
    >>> subject = zoo.interpret.open_subject("c3d-sports1m", "clip.mp4")  # several methods
    >>> zoo.interpret.explain(subject, Path("occ"), method="occlusion", force=True)
    >>> zoo.interpret.explore("resnet50.tv_in1k", ["cats/", "dogs/"], map_file=Path("map.png"))

Importing this package imports torch; captum, scikit-learn and matplotlib are imported
when a function that needs them runs.
"""

from __future__ import annotations

from zoo.errors import InterpretError
from zoo.interpret.attacks import fgsm, pgd
from zoo.interpret.collection import EmbeddingReport, explore
from zoo.interpret.embeddings import embed, feature_map, nearest, project, separation
from zoo.interpret.gradcam import grad_cam
from zoo.interpret.occlusion import occlusion, output_change
from zoo.interpret.pipeline import attack, attack_file, explain, explain_file
from zoo.interpret.results import (
    Attack,
    AttackedSample,
    AttackReport,
    Explanation,
    FeatureMap,
    Neighbour,
    Prediction,
)
from zoo.interpret.subject import open_subject

__all__ = [
    "Attack",
    "AttackReport",
    "AttackedSample",
    "EmbeddingReport",
    "Explanation",
    "FeatureMap",
    "InterpretError",
    "Neighbour",
    "Prediction",
    "attack",
    "attack_file",
    "embed",
    "explain",
    "explain_file",
    "explore",
    "feature_map",
    "fgsm",
    "grad_cam",
    "nearest",
    "occlusion",
    "open_subject",
    "output_change",
    "pgd",
    "project",
    "separation",
]
