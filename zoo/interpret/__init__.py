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

Importing this package imports torch; captum, scikit-learn and matplotlib are imported
when a function that needs them runs.
"""

from __future__ import annotations

from zoo.errors import InterpretError
from zoo.interpret.attacks import fgsm, pgd
from zoo.interpret.embeddings import embed, feature_map, nearest, project, separation
from zoo.interpret.gradcam import grad_cam
from zoo.interpret.occlusion import occlusion, output_change
from zoo.interpret.results import Attack, AttackedSample, FeatureMap, Neighbour, Prediction

__all__ = [
    "Attack",
    "AttackedSample",
    "FeatureMap",
    "InterpretError",
    "Neighbour",
    "Prediction",
    "embed",
    "feature_map",
    "fgsm",
    "grad_cam",
    "nearest",
    "occlusion",
    "output_change",
    "pgd",
    "project",
    "separation",
]
