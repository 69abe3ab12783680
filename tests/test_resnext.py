"""ResNeXt/ResNet plugin: upstream parity, parameter counts, backbone outputs, errors.

Parity measure throughout: ``max|zoo - upstream| / max|upstream|`` in float32, eval mode,
with upstream's random weights and randomised BatchNorm statistics, saved as
safetensors in the upstream layout and loaded through ``zoo.build``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch
import torchvision
from safetensors.torch import save_file
from torch import nn

import zoo
from zoo.cards import Card
from zoo.loading import count_parameters, empty_model
from zoo.publish import convert
from zoo.weights import MODEL_FILE
from zoo_plugins.resnext import ResNeXtConfig
from zoo_plugins.resnext.convert import without_batch_counters
from zoo_plugins.resnext.model import FrozenBatchNorm2d, ResNeXt

TOLERANCE = 1e-5
RESNET50 = {"layers": (3, 4, 6, 3)}
RESNEXT50_32X4D = {"layers": (3, 4, 6, 3), "groups": 32, "width_per_group": 4}
RESNEXT101_32X4D = {"layers": (3, 4, 23, 3), "groups": 32, "width_per_group": 4}
RESNEXT101_32X8D = {"layers": (3, 4, 23, 3), "groups": 32, "width_per_group": 8}


def randomise_batchnorm(model: nn.Module) -> nn.Module:
    """Give every BatchNorm non-trivial statistics and affine terms, so they must be loaded."""
    generator = torch.Generator().manual_seed(0)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            size = module.num_features
            module.running_mean.copy_(torch.randn(size, generator=generator) * 0.1)
            module.running_var.copy_(torch.rand(size, generator=generator) + 0.5)
            module.weight.data.copy_(torch.rand(size, generator=generator) + 0.5)
            module.bias.data.copy_(torch.randn(size, generator=generator) * 0.1)
    return model.eval()


def save_state(model: nn.Module, path: Path) -> Path:
    save_file({key: value.contiguous() for key, value in model.state_dict().items()}, path)
    return path


def relative_difference(found: torch.Tensor, expected: torch.Tensor) -> float:
    return ((found - expected).abs().max() / expected.abs().max()).item()


def image(batch: int = 2, size: int = 64) -> torch.Tensor:
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(1))


def assert_parity(upstream: nn.Module, config: dict, layout: str, path: Path, size: int = 64):
    model = zoo.build("resnext", config, weights=save_state(upstream, path), layout=layout).eval()
    x = image(size=size)
    with torch.inference_mode():
        difference = relative_difference(model(x), upstream(x))
    assert difference <= TOLERANCE, f"relative difference {difference:.2e}"


@pytest.fixture(scope="module")
def torchvision_resnext50(tmp_path_factory) -> tuple[nn.Module, Path]:
    torch.manual_seed(0)
    upstream = randomise_batchnorm(torchvision.models.resnext50_32x4d(weights=None))
    return upstream, save_state(upstream, tmp_path_factory.mktemp("tv") / "resnext50.safetensors")


@pytest.mark.parametrize(
    ("config", "published", "torchvision_builder", "timm_name"),
    [
        (RESNET50, 25_557_032, "resnet50", "resnet50"),
        (RESNEXT50_32X4D, 25_028_904, "resnext50_32x4d", "resnext50_32x4d"),
        (RESNEXT101_32X4D, 44_177_704, None, "resnext101_32x4d"),
        (RESNEXT101_32X8D, 88_791_336, "resnext101_32x8d", "resnext101_32x8d"),
    ],
)
def test_parameter_count_matches_published_and_upstream(
    config, published, torchvision_builder, timm_name
):
    """Published counts: torchvision's weights metadata (num_params) and timm's model."""
    architecture = zoo.default_registry().architecture("resnext")
    assert count_parameters(empty_model(architecture, config)) == published
    with torch.device("meta"):
        assert count_parameters(timm.create_model(timm_name, pretrained=False)) == published
        if torchvision_builder:
            upstream = getattr(torchvision.models, torchvision_builder)(weights=None)
            assert count_parameters(upstream) == published


def test_resnext50_matches_torchvision(torchvision_resnext50):
    upstream, path = torchvision_resnext50
    model = zoo.build("resnext", RESNEXT50_32X4D, weights=path, layout="torchvision").eval()
    x = image()
    with torch.inference_mode():
        assert relative_difference(model(x), upstream(x)) <= TOLERANCE


def test_resnet50_matches_torchvision(tmp_path):
    torch.manual_seed(0)
    upstream = randomise_batchnorm(torchvision.models.resnet50(weights=None))
    assert_parity(upstream, RESNET50, "torchvision", tmp_path / "resnet50.safetensors")


def test_resnext50_matches_timm(tmp_path):
    torch.manual_seed(0)
    upstream = randomise_batchnorm(timm.create_model("resnext50_32x4d", pretrained=False))
    assert_parity(upstream, RESNEXT50_32X4D, "timm", tmp_path / "resnext50.safetensors")


@pytest.mark.heavy
def test_resnext101_32x8d_matches_torchvision_at_224(tmp_path):
    torch.manual_seed(0)
    upstream = randomise_batchnorm(torchvision.models.resnext101_32x8d(weights=None))
    path = tmp_path / "resnext101.safetensors"
    assert_parity(upstream, RESNEXT101_32X8D, "torchvision", path, size=224)


@pytest.mark.heavy
def test_resnext101_32x4d_matches_timm_at_224(tmp_path):
    torch.manual_seed(0)
    upstream = randomise_batchnorm(timm.create_model("resnext101_32x4d", pretrained=False))
    assert_parity(upstream, RESNEXT101_32X4D, "timm", tmp_path / "resnext101.safetensors", 224)


def test_training_mode_matches_torchvision(torchvision_resnext50):
    """Batch statistics in train mode: the path fine-tuning takes."""
    upstream, path = torchvision_resnext50
    model = zoo.build("resnext", RESNEXT50_32X4D, weights=path, layout="torchvision")
    reference = torchvision.models.resnext50_32x4d(weights=None)
    reference.load_state_dict(upstream.state_dict())
    x = image()
    with torch.no_grad():
        assert relative_difference(model.train()(x), reference.train()(x)) <= TOLERANCE


def test_card_loads_timm_weights(tmp_path):
    torch.manual_seed(0)
    upstream = randomise_batchnorm(timm.create_model("resnext50_32x4d", pretrained=False))
    path = save_state(upstream, tmp_path / "tv2.safetensors")
    model = zoo.load("resnext50_32x4d", weights=path, layout="timm")
    x = image()
    with torch.inference_mode():
        assert relative_difference(model(x), upstream(x)) <= TOLERANCE


def test_features_match_timm_features_only(tmp_path):
    """timm's own features_only checkpoint (no fc) loads; stem and every stage match timm."""
    indices = (0, 1, 2, 3, 4)
    torch.manual_seed(0)
    reference = timm.create_model(
        "resnext50_32x4d", pretrained=False, features_only=True, out_indices=indices
    )
    path = save_state(randomise_batchnorm(reference), tmp_path / "features.safetensors")
    config = {**RESNEXT50_32X4D, "features_only": True, "out_indices": indices}
    model = zoo.build("resnext", config, weights=path, layout="timm").eval()
    x = image()
    with torch.inference_mode():
        found, expected = model(x), reference.eval()(x)
    assert [f.shape for f in found] == [e.shape for e in expected]
    assert [tuple(f.shape[1:]) for f in found] == [
        (64, 32, 32),
        (256, 16, 16),
        (512, 8, 8),
        (1024, 4, 4),
        (2048, 2, 2),
    ]
    for stage, (f, e) in enumerate(zip(found, expected, strict=True)):
        assert relative_difference(f, e) <= TOLERANCE, f"stage {stage}"


def test_backbone_builds_only_the_stages_it_returns(torchvision_resnext50):
    _, path = torchvision_resnext50
    config = {**RESNEXT50_32X4D, "features_only": True, "out_indices": (1, 2)}
    model = zoo.build("resnext", config, weights=path, layout="torchvision")
    top_level = {key.split(".")[0] for key in model.state_dict()}
    assert top_level == {"conv1", "bn1", "layer1", "layer2"}
    assert [tuple(f.shape[1:]) for f in model.eval()(image())] == [(256, 16, 16), (512, 8, 8)]


def test_classifier_also_gives_its_stage_outputs():
    config = {"layers": (1, 1, 1, 1), "groups": 2, "width_per_group": 4, "out_indices": (0, 2)}
    model = zoo.build("resnext", config).eval()
    x = image()
    stem, layer2 = model.forward_features(x)
    assert (stem.shape, layer2.shape) == ((2, 64, 32, 32), (2, 512, 8, 8))
    assert model(x).shape == (2, 1000)


def test_headless_model_returns_pooled_features(torchvision_resnext50):
    _, path = torchvision_resnext50
    model = zoo.build("resnext", {**RESNEXT50_32X4D, "num_classes": 0}, weights=path, layout="timm")
    assert "fc.weight" not in model.state_dict()
    assert model.eval()(image()).shape == (2, 2048)


def test_channels_last_gives_the_same_logits(torchvision_resnext50):
    _, path = torchvision_resnext50
    model = zoo.build("resnext", RESNEXT50_32X4D, weights=path, layout="torchvision").eval()
    x = image()
    with torch.inference_mode():
        expected = model(x)
        model = model.to(memory_format=torch.channels_last)
        found = model(x.to(memory_format=torch.channels_last))
    assert relative_difference(found, expected) <= TOLERANCE


def test_frozen_batchnorm_matches_batchnorm_and_torchvision():
    batchnorm = randomise_batchnorm(nn.BatchNorm2d(8))
    state = without_batch_counters(batchnorm.state_dict())
    frozen = FrozenBatchNorm2d(8)
    frozen.load_state_dict(state)
    reference = torchvision.ops.FrozenBatchNorm2d(8)
    reference.load_state_dict(state)
    assert set(frozen.state_dict()) == {"weight", "bias", "running_mean", "running_var"}
    x = torch.randn(2, 8, 5, 5)
    assert relative_difference(frozen(x), batchnorm(x)) <= TOLERANCE
    assert relative_difference(frozen(x), reference(x)) <= TOLERANCE


def test_frozen_backbone_loads_a_batchnorm_checkpoint(torchvision_resnext50):
    upstream, _ = torchvision_resnext50
    config = ResNeXtConfig(**RESNEXT50_32X4D, features_only=True, out_indices=(4,))
    with torch.device("meta"):
        model = ResNeXt(config, norm_layer=FrozenBatchNorm2d)
    state = {k: v for k, v in upstream.state_dict().items() if not k.startswith("fc.")}
    model.load_state_dict(without_batch_counters(state), strict=True, assign=True)
    trainable = {name.rsplit(".", 1)[0] for name, _ in model.named_parameters()}
    assert all(isinstance(model.get_submodule(name), nn.Conv2d) for name in trainable)
    upstream_body = nn.Sequential(*list(upstream.children())[:-2])  # without avgpool and fc
    x = image()
    with torch.inference_mode():
        expected = upstream_body(x)
        (found,) = model(x)
    assert relative_difference(found, expected) <= TOLERANCE


def test_checkpoint_without_batch_counters_loads(torchvision_resnext50, tmp_path):
    """torchvision's older .pth files predate num_batches_tracked; the converter adds them."""
    upstream, _ = torchvision_resnext50
    old_style = without_batch_counters(upstream.state_dict())
    path = tmp_path / "old.safetensors"
    save_file({key: value.contiguous() for key, value in old_style.items()}, path)
    model = zoo.build("resnext", RESNEXT50_32X4D, weights=path, layout="torchvision")
    assert model.layer1[0].bn1.num_batches_tracked.item() == 0


def test_torchvision_pickle_enters_through_zoo_convert(torchvision_resnext50, tmp_path):
    """The torchvision .pth cards' path: a pre-counter pickle, read safely, converted, loaded.

    The ResNeXt-101 card's source and layout with ResNeXt-50's config, to keep the file small.
    """
    upstream, _ = torchvision_resnext50
    published = zoo.card("resnext101_32x8d.tv_in1k").to_data()
    card = Card.from_data({**published, "config": RESNEXT50_32X4D, "parameters": 25_028_904})
    checkpoint = tmp_path / "resnext50_32x4d-old.pth"
    torch.save(without_batch_counters(upstream.state_dict()), checkpoint)
    converted = convert(card, [checkpoint], tmp_path / "converted")
    model = zoo.load(card, weights=converted.path / MODEL_FILE)
    x = image()
    with torch.inference_mode():
        assert relative_difference(model(x), upstream(x)) <= TOLERANCE


def test_wrong_config_is_reported_in_config_terms(torchvision_resnext50):
    _, path = torchvision_resnext50
    with pytest.raises(zoo.WeightsError, match=r"layer3 has 6 blocks, config layers expects 23"):
        zoo.build("resnext", RESNEXT101_32X4D, weights=path, layout="torchvision")
    with pytest.raises(zoo.WeightsError, match=r"groups=1, width_per_group=64"):
        zoo.build("resnext", RESNET50, weights=path, layout="timm")
    with pytest.raises(zoo.WeightsError, match=r"fc has 1000 classes, config num_classes is 10"):
        zoo.build("resnext", {**RESNEXT50_32X4D, "num_classes": 10}, weights=path, layout="timm")


def test_foreign_layout_is_named(torchvision_resnext50, tmp_path):
    upstream, _ = torchvision_resnext50
    wrapped = {f"module.{key}": value for key, value in upstream.state_dict().items()}
    path = tmp_path / "wrapped.safetensors"
    save_file({key: value.contiguous() for key, value in wrapped.items()}, path)
    with pytest.raises(zoo.WeightsError, match="DataParallel wrapper"):
        zoo.build("resnext", RESNEXT50_32X4D, weights=path, layout="torchvision")


def test_missing_tensor_is_reported_by_name(torchvision_resnext50, tmp_path):
    upstream, _ = torchvision_resnext50
    state = dict(upstream.state_dict())
    del state["layer2.1.conv2.weight"]
    path = tmp_path / "incomplete.safetensors"
    save_file({key: value.contiguous() for key, value in state.items()}, path)
    with pytest.raises(zoo.WeightsError, match=r"missing keys \[layer2\.1\.conv2\.weight\]"):
        zoo.build("resnext", RESNEXT50_32X4D, weights=path, layout="timm")


def test_wrong_input_is_rejected_with_the_expected_shape():
    model = zoo.build("resnext", {"layers": (1, 1, 1, 1), "groups": 2, "width_per_group": 4})
    with pytest.raises(ValueError, match=r"expects images of shape \(batch, 3, height, width\)"):
        model(torch.randn(1, 1, 32, 32))
    with pytest.raises(ValueError, match=r"found \(3, 32, 32\)"):
        model(torch.randn(3, 32, 32))


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"out_indices": ()}, "non-empty and rising"),
        ({"out_indices": (3, 1)}, "non-empty and rising"),
        ({"out_indices": (1, 5)}, r"must lie in 0\.\.4"),
        ({"layers": (3, 0, 6, 3)}, "at least one block"),
        ({"groups": 0}, "greater than or equal to 1"),
        ({"cardinality": 32}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_config_is_rejected(values, message):
    with pytest.raises(ValueError, match=message):
        ResNeXtConfig(**values)


def test_random_init_is_he_normal_and_an_sgd_step_lowers_the_loss():
    """Built without weights, the model trains from scratch: He-initialised, a gradient reaches
    every parameter, and one step against it lowers the loss on the same batch (train mode
    both times, so BatchNorm uses the batch's statistics and the loss is a function of the
    weights alone)."""
    config = {"layers": (1, 1, 1, 1), "groups": 4, "width_per_group": 4, "num_classes": 4}
    torch.manual_seed(0)
    model = zoo.build("resnext", config).train()
    weight = model.layer1[0].conv1.weight
    fan_out = weight.shape[0] * weight.shape[2] * weight.shape[3]
    assert weight.std().item() == pytest.approx((2 / fan_out) ** 0.5, rel=0.2)
    images, labels = image(batch=4, size=32), torch.arange(4)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.003)

    before = nn.functional.cross_entropy(model(images), labels)
    before.backward()
    optimizer.step()
    with torch.no_grad():
        after = nn.functional.cross_entropy(model(images), labels)

    assert [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()] == []
    assert after < 0.9 * before  # 0.43 to 0.81 of it over seeds 0-7
