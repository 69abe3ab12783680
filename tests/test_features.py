"""FeatureHints: each plugin says where its pooled features, Grad-CAM layer and first conv are.

Checked on small configs of the real architectures: the pooled features are what the
classifier reads, the Grad-CAM layer keeps the input's spatial (and time) axes, and the
first convolution is the one that reads the input pixels.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import zoo
from zoo.architecture import submodule
from zoo.registry import default_registry

# A small config of the same code per architecture, and the input it takes.
SMALL = {
    "resnext": ({"layers": [1, 1, 1, 1], "num_classes": 5}, [(3, 64, 64)]),
    "vit": (
        {"image_size": 32, "patch_size": 8, "width": 32, "depth": 2, "heads": 2, "num_classes": 5},
        [(3, 32, 32)],
    ),
    "c3d": (
        {"channels": [4, 4, 4, 4, 4, 4, 4, 4], "hidden": 8, "num_classes": 5},
        [(3, 16, 112, 112)],
    ),
    "i3d": ({"num_classes": 5, "frames": 9, "size": [193, 193]}, [(3, 9, 193, 193)]),
    "i3d-two-stream": (
        {"num_classes": 5, "frames": 9, "size": [193, 193]},
        [(3, 9, 193, 193), (2, 9, 193, 193)],
    ),
    # Fusion models over a built-in backbone (ResNeXt takes any image size): small clips.
    **{
        name: ({"backbone": "resnet50.tv_in1k", "num_classes": 5, **extra}, [(3, 2, 64, 64)])
        for name, extra in {
            "early-fusion": {"frames": 2},
            "late-fusion": {},
            "late-fusion-concat": {"frames": 2},
            "cnn-lstm": {"hidden_size": 8},
        }.items()
    },
}
# The classifier that reads the pooled features, where it is one layer.
HEADS = {"resnext": "fc", "vit": "head", "c3d": "fc8"}


def with_features() -> list[zoo.Architecture]:
    return [a for a in default_registry().architectures() if a.features.pooled]


def small_model(architecture: zoo.Architecture) -> tuple[nn.Module, list[torch.Tensor]]:
    config, shapes = SMALL[architecture.name]
    torch.manual_seed(0)
    model = zoo.build(architecture, config).eval()
    return model, [torch.randn(2, *shape) for shape in shapes]


def test_every_architecture_with_pooled_features_has_a_small_config_here():
    assert {a.name for a in with_features()} == set(SMALL)


@pytest.mark.parametrize("architecture", with_features(), ids=lambda a: a.name)
def test_pooled_features_are_one_vector_per_sample_independent_of_the_batch(architecture):
    model, inputs = small_model(architecture)
    pooled = architecture.features.resolve_pooled()

    with torch.inference_mode():
        both = pooled(model, *inputs)
        first = pooled(model, *(x[:1] for x in inputs))

    assert both.ndim == 2 and both.shape[0] == 2
    torch.testing.assert_close(both[:1], first, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(both[0], both[1])


@pytest.mark.parametrize(
    "architecture", [a for a in with_features() if a.features.pooled_width], ids=lambda a: a.name
)
def test_the_declared_pooled_width_is_the_pooled_features_width(architecture):
    model, inputs = small_model(architecture)
    config = architecture.validate_config(SMALL[architecture.name][0])

    with torch.inference_mode():
        pooled = architecture.features.resolve_pooled()(model, *inputs)

    assert architecture.features.resolve_pooled_width()(config) == pooled.shape[-1]


@pytest.mark.parametrize("name", sorted(HEADS))
def test_the_classifier_reads_exactly_the_pooled_features(name):
    architecture = default_registry().architecture(name)
    model, inputs = small_model(architecture)

    with torch.inference_mode():
        logits = model(*inputs)
        from_pooled = getattr(model, HEADS[name])(
            architecture.features.resolve_pooled()(model, *inputs)
        )

    torch.testing.assert_close(from_pooled, logits, rtol=0, atol=0)


@pytest.mark.parametrize(
    "architecture", [a for a in with_features() if a.features.cam_layer], ids=lambda a: a.name
)
def test_the_grad_cam_layer_keeps_the_inputs_spatial_axes(architecture):
    model, inputs = small_model(architecture)
    hints = architecture.features
    seen = []
    submodule(model, hints.cam_layer).register_forward_hook(lambda m, i, out: seen.append(out))

    with torch.inference_mode():
        model(*inputs)

    (activation,) = seen
    if hints.cam_tokens is None:
        assert activation.ndim == inputs[0].ndim
        assert min(activation.shape[2:]) > 1
    else:
        grid = (activation.shape[1] - hints.cam_tokens) ** 0.5
        assert activation.ndim == 3 and grid == int(grid) and grid > 1


@pytest.mark.parametrize(
    "architecture", [a for a in with_features() if a.features.first_conv], ids=lambda a: a.name
)
def test_the_first_conv_reads_the_input_channels(architecture):
    model, inputs = small_model(architecture)
    conv = submodule(model, architecture.features.first_conv)

    assert isinstance(conv, nn.Conv2d | nn.Conv3d)
    assert conv.in_channels == inputs[0].shape[1]
    assert conv.weight.ndim == inputs[0].ndim


def test_a_wrong_module_path_names_the_children_that_exist():
    model = nn.Sequential(nn.Linear(2, 2))

    with pytest.raises(ValueError, match=r"no module '1.weight'.*children: 0"):
        submodule(model, "1.weight")
    assert submodule(model, "-1") is model[0]
