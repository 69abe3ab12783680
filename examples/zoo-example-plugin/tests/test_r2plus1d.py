"""R(2+1)D-18 keeps every contract of the zoo and computes what torchvision's does.

Run after ``pip install ./examples/zoo-example-plugin`` (torchvision and pytest
installed): ``python -m pytest examples/zoo-example-plugin/tests``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

import zoo
from zoo.testing import plugin_checks
from zoo_example_plugin import R2Plus1DConfig
from zoo_example_plugin.upstream import torchvision_model

TOLERANCE = 1e-5
SMALL = R2Plus1DConfig(layers=(1, 1, 1, 1))


@pytest.mark.parametrize(("item", "check"), plugin_checks("r2plus1d"), ids=str)
def test_the_plugin_keeps_the_zoo_contract(item, check):
    check(item)


def randomised(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random weights and BatchNorm statistics, so that a mis-mapped tensor shows."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm3d):
            size = module.num_features
            module.running_mean.copy_(torch.randn(size, generator=generator) * 0.1)
            module.running_var.copy_(torch.rand(size, generator=generator) + 0.5)
            module.weight.data.copy_(torch.rand(size, generator=generator) + 0.5)
            module.bias.data.copy_(torch.randn(size, generator=generator) * 0.1)
    return model.eval()


def relative_difference(found: torch.Tensor, expected: torch.Tensor) -> float:
    return ((found - expected).abs().max() / expected.abs().max()).item()


def loaded_from_torchvision(upstream: nn.Module, config: R2Plus1DConfig, folder: Path) -> nn.Module:
    path = folder / "r2plus1d.safetensors"
    save_file({key: value.contiguous() for key, value in upstream.state_dict().items()}, path)
    return zoo.build("r2plus1d", config, weights=path, layout="torchvision").eval()


def test_a_small_model_matches_torchvision_through_the_converter(tmp_path):
    torch.manual_seed(0)
    upstream = randomised(torchvision_model(SMALL))
    model = loaded_from_torchvision(upstream, SMALL, tmp_path)
    clip = torch.randn(2, 3, 4, 32, 32, generator=torch.Generator().manual_seed(1))

    with torch.inference_mode():
        assert relative_difference(model(clip), upstream(clip)) <= TOLERANCE


def test_the_cards_model_matches_torchvision_through_every_layer(tmp_path):
    """The card's full R(2+1)D-18; a short, small clip still goes through every tensor."""
    config = R2Plus1DConfig.model_validate(zoo.card("r2plus1d-18").config)
    torch.manual_seed(0)
    upstream = randomised(torchvision_model(config))
    model = loaded_from_torchvision(upstream, config, tmp_path)
    clip = torch.randn(1, 3, 4, 64, 64, generator=torch.Generator().manual_seed(1))

    with torch.inference_mode():
        assert relative_difference(model(clip), upstream(clip)) <= TOLERANCE


def test_the_parameter_count_is_torchvisions_published_one():
    """31,505,325: torchvision's R2Plus1D_18_Weights.KINETICS400_V1.meta['num_params']."""
    with torch.device("meta"):
        model = zoo.build("r2plus1d", {})

    assert sum(parameter.numel() for parameter in model.parameters()) == 31_505_325


def test_without_classes_the_model_returns_the_512_pooled_features(tmp_path):
    features_only = R2Plus1DConfig(layers=(1, 1, 1, 1), num_classes=None)
    upstream = torchvision_model(features_only)
    model = loaded_from_torchvision(upstream, features_only, tmp_path)

    with torch.inference_mode():
        assert model(torch.rand(1, 3, 4, 32, 32)).shape == (1, 512)


def test_a_checkpoint_in_another_layout_is_named(tmp_path):
    path = tmp_path / "other.safetensors"
    save_file({"conv1.weight": torch.zeros(1)}, path)

    with pytest.raises(zoo.WeightsError, match="not in torchvision's R\\(2\\+1\\)D layout"):
        zoo.build("r2plus1d", SMALL, weights=path, layout="torchvision")


def test_a_clip_with_the_wrong_channels_is_refused_clearly():
    model = zoo.build("r2plus1d", SMALL)

    with pytest.raises(ValueError, match=r"expects clips of shape \(N, 3, T, H, W\)"):
        model(torch.rand(1, 2, 4, 32, 32))
