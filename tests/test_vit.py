"""ViT: parity with timm and transformers, converters, parameter counts, ONNX export.

Parity measure: max |zoo - upstream| / max |upstream| over the logits, float32,
eval mode, upstream weights randomised and saved as safetensors in the upstream layout.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

import zoo
from zoo.loading import count_parameters, empty_model
from zoo_plugins.vit import PRESETS, ViTConfig

timm = pytest.importorskip("timm")
transformers = pytest.importorskip("transformers")

TOLERANCE = 1e-5
TINY = {"image_size": 32, "patch_size": 8, "width": 64, "depth": 2, "heads": 4, "num_classes": 10}


def relative_difference(found: torch.Tensor, expected: torch.Tensor) -> float:
    return ((found - expected).abs().max() / expected.abs().max()).item()


def assert_parity(found: torch.Tensor, expected: torch.Tensor, label: str) -> None:
    difference = relative_difference(found, expected)
    print(f"{label}: max relative difference {difference:.3g}")
    assert difference <= TOLERANCE


@torch.no_grad()
def randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Every parameter random (norm weights and biases too, so a wrong mapping shows)."""
    generator = torch.Generator().manual_seed(seed)
    for parameter in model.parameters():
        parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.1)
    return model.eval()


def images(config: dict, batch: int = 3) -> torch.Tensor:
    size = config["image_size"]
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(1))


def timm_random(name: str, **kwargs) -> nn.Module:
    """A timm model with random weights, built on meta first to skip timm's own (slow) init."""
    with torch.device("meta"):
        model = timm.create_model(name, pretrained=False, **kwargs)
    return randomize(model.to_empty(device="cpu"))


def timm_tiny(path: Path, **overrides) -> tuple[nn.Module, dict]:
    """A vit_tiny_patch16_224-style timm model at a small resolution, saved to ``path``."""
    kwargs = {"img_size": 64, "depth": 2, "num_classes": 10, **overrides}
    model = timm_random("vit_tiny_patch16_224", **kwargs)
    save_file(model.state_dict(), path)
    config = {
        "image_size": kwargs["img_size"],
        "patch_size": kwargs.get("patch_size", 16),
        "width": kwargs.get("embed_dim", 192),
        "depth": kwargs["depth"],
        "heads": kwargs.get("num_heads", 3),
        "mlp_ratio": kwargs.get("mlp_ratio", 4.0),
        "num_classes": kwargs["num_classes"],
        "qkv_bias": kwargs.get("qkv_bias", True),
    }
    return model, config


def transformers_model(folder: Path, config: dict, **overrides) -> nn.Module:
    """transformers' ViTForImageClassification for a zoo config, saved with save_pretrained."""
    upstream_config = transformers.ViTConfig(
        image_size=config["image_size"],
        patch_size=config["patch_size"],
        hidden_size=config["width"],
        num_hidden_layers=config["depth"],
        num_attention_heads=config["heads"],
        intermediate_size=config["width"] * 4,
        num_labels=config["num_classes"],
        **overrides,
    )
    model = randomize(transformers.ViTForImageClassification(upstream_config))
    model.save_pretrained(folder)
    return model


# Parameter counts


@pytest.mark.parametrize(
    ("preset", "expected"),
    [
        # Paper Table 1: ViT-Base 86M. Exact figure with a 1000-class head, as timm counts it.
        ("vit-b16", 86_567_656),
        # Paper Table 1 rounds ViT-Large to 307M; timm's results list vit_large_patch16_224
        # at 304.33M, which this exact figure (1000-class head, 224 pixels) matches.
        ("vit-l16", 304_326_632),
    ],
)
def test_parameter_count_matches_published(preset: str, expected: int) -> None:
    architecture = zoo.default_registry().architecture("vit")
    assert count_parameters(empty_model(architecture, PRESETS[preset])) == expected


def test_cards_state_their_own_layer_norm_eps() -> None:
    assert zoo.card("vit-b16-in1k").config["layer_norm_eps"] == 1e-6
    assert zoo.card("vit-b16-in1k.google").config["layer_norm_eps"] == 1e-12


# Parity, small configs


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"patch_size": 8, "img_size": 32, "qkv_bias": False, "mlp_ratio": 2.0},
    ],
    ids=["vit-tiny-like", "patch8-no-qkv-bias"],
)
def test_timm_parity_small(tmp_path: Path, overrides: dict) -> None:
    upstream, config = timm_tiny(tmp_path / "timm.safetensors", **overrides)
    model = zoo.build("vit", config, weights=tmp_path / "timm.safetensors", layout="timm").eval()
    x = images(config)
    with torch.no_grad():
        assert_parity(model(x), upstream(x), f"timm {overrides}")


@pytest.mark.parametrize("depth", [1, 3])
def test_transformers_parity_small(tmp_path: Path, depth: int) -> None:
    config = {**TINY, "depth": depth, "layer_norm_eps": 1e-12}
    upstream = transformers_model(tmp_path, config)
    model = zoo.build(
        "vit", config, weights=tmp_path / "model.safetensors", layout="transformers"
    ).eval()
    x = images(config)
    with torch.no_grad():
        assert_parity(model(x), upstream(pixel_values=x).logits, f"transformers depth {depth}")


def test_a_transformers_5_state_dict_saved_with_torch_save_converts_with_parity(
    tmp_path: Path,
) -> None:
    """transformers 5 names its modules layers.N.attention.q_proj, ... in memory; files differ."""
    config = {**TINY, "layer_norm_eps": 1e-12}
    upstream = transformers_model(tmp_path, config)
    torch.save(upstream.state_dict(), tmp_path / "vit.pth")
    state = zoo.weights.read_checkpoint(tmp_path / "vit.pth")
    assert any(".attention.q_proj." in key for key in state)  # the naming under test
    save_file(state, tmp_path / "in-memory-names.safetensors")

    model = zoo.build(
        "vit", config, weights=tmp_path / "in-memory-names.safetensors", layout="transformers"
    ).eval()
    x = images(config)
    with torch.no_grad():
        assert_parity(model(x), upstream(pixel_values=x).logits, "transformers 5 names")


def test_layer_norm_eps_is_honoured(tmp_path: Path) -> None:
    """With tiny activations the eps matters: the wrong one must visibly break parity."""
    config = {**TINY, "layer_norm_eps": 1e-2}
    upstream = transformers_model(tmp_path, config, layer_norm_eps=1e-2)
    weights = tmp_path / "model.safetensors"
    right = zoo.build("vit", config, weights=weights, layout="transformers").eval()
    wrong = zoo.build(
        "vit", {**config, "layer_norm_eps": 1e-12}, weights=weights, layout="transformers"
    ).eval()
    x = images(config) * 1e-3
    with torch.no_grad():
        expected = upstream(pixel_values=x).logits
        assert relative_difference(right(x), expected) <= TOLERANCE
        assert relative_difference(wrong(x), expected) > 1e-3


# Converters and errors


def test_timm_file_in_transformers_layout_is_rejected_with_a_hint(tmp_path: Path) -> None:
    _, config = timm_tiny(tmp_path / "timm.safetensors")
    with pytest.raises(zoo.WeightsError, match="looks like the 'timm' layout"):
        zoo.build("vit", config, weights=tmp_path / "timm.safetensors", layout="transformers")


def test_transformers_file_in_timm_layout_is_rejected_with_a_hint(tmp_path: Path) -> None:
    transformers_model(tmp_path, TINY)
    with pytest.raises(zoo.WeightsError, match="looks like the 'transformers' layout"):
        zoo.build("vit", TINY, weights=tmp_path / "model.safetensors", layout="timm")


def test_wrong_resolution_names_the_position_table(tmp_path: Path) -> None:
    _, config = timm_tiny(tmp_path / "timm.safetensors")
    with pytest.raises(zoo.WeightsError, match=r"pos_embed has shape \(1, 17, 192\).*image_size"):
        zoo.build(
            "vit",
            {**config, "image_size": 32},
            weights=tmp_path / "timm.safetensors",
            layout="timm",
        )


def test_missing_and_unexpected_keys_are_reported(tmp_path: Path) -> None:
    _, config = timm_tiny(tmp_path / "timm.safetensors")
    state = load_file(tmp_path / "timm.safetensors")
    state["fc_norm.weight"] = state.pop("blocks.1.attn.qkv.weight")
    save_file(state, tmp_path / "broken.safetensors")
    with pytest.raises(zoo.WeightsError, match=r"missing keys \[blocks\.1\.attn\.qkv\.weight\]"):
        zoo.build("vit", config, weights=tmp_path / "broken.safetensors", layout="timm")
    with pytest.raises(zoo.WeightsError, match=r"unexpected keys \[fc_norm\.weight\]"):
        zoo.build("vit", config, weights=tmp_path / "broken.safetensors", layout="timm")


def test_transformers_attention_without_value_is_reported(tmp_path: Path) -> None:
    transformers_model(tmp_path, TINY)
    state = load_file(tmp_path / "model.safetensors")
    del state["vit.encoder.layer.1.attention.attention.value.weight"]
    save_file(state, tmp_path / "broken.safetensors")
    with pytest.raises(zoo.WeightsError, match=r"layer 1: attention weight .* lacks \['value'\]"):
        zoo.build("vit", TINY, weights=tmp_path / "broken.safetensors", layout="transformers")


def test_wrong_input_shape_is_a_clear_error() -> None:
    model = zoo.build("vit", TINY)
    with pytest.raises(ValueError, match=r"expects images of shape \(batch, 3, 32, 32\), found"):
        model(torch.zeros(1, 3, 64, 64))
    with pytest.raises(ValueError, match=r"found \(1, 1, 32, 32\)"):
        model(torch.zeros(1, 1, 32, 32))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"image_size": 30}, "not a multiple of patch_size"),
        ({"heads": 3}, "not divisible by heads"),
        ({"mlp_ratio": 1.001}, "whole number"),
        ({"depths": 2}, "Extra inputs are not permitted"),
    ],
)
def test_bad_config_is_rejected(overrides: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ViTConfig(**{**TINY, **overrides})


# Meta-device loading


def test_meta_build_skips_random_init(monkeypatch: pytest.MonkeyPatch) -> None:
    """Init ops on meta tensors are slow on first use (DESIGN.md); the builder must skip them."""

    def refuse(*args, **kwargs):
        raise AssertionError("random init ran on the meta device")

    monkeypatch.setattr(nn.init, "trunc_normal_", refuse)
    monkeypatch.setattr(nn.init, "normal_", refuse)
    architecture = zoo.default_registry().architecture("vit")
    assert count_parameters(empty_model(architecture, PRESETS["vit-b16"])) == 86_567_656


def test_random_build_initialises_embeddings() -> None:
    model = zoo.build("vit", TINY)
    assert model.pos_embed.std() > 0.01
    assert model.cls_token.abs().max() > 0


def test_features_without_head() -> None:
    model = zoo.build("vit", {**TINY, "num_classes": 0}).eval()
    with torch.no_grad():
        assert model(images(TINY, batch=2)).shape == (2, TINY["width"])


def test_plugin_imports_without_torch() -> None:
    code = "import sys, zoo_plugins.vit; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# ONNX export


def test_onnx_export_with_dynamic_batch(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    onnxruntime = pytest.importorskip("onnxruntime")
    hints = zoo.default_registry().architecture("vit").export
    model = randomize(zoo.build("vit", TINY))
    path = tmp_path / "vit.onnx"
    torch.onnx.export(
        model,
        (images(TINY, batch=2),),
        path,
        dynamo=True,
        input_names=["image"],
        output_names=hints.output_names,
        dynamic_shapes={"image": {0: torch.export.Dim(hints.dynamic_axes["image"][0])}},
        opset_version=hints.opset,
        external_data=False,
    )
    exported = onnx.load(path)
    onnx.checker.check_model(exported)
    for value in (*exported.graph.input, *exported.graph.output):
        assert value.type.tensor_type.shape.dim[0].dim_param == "batch"
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    x = images(TINY, batch=3)
    (found,) = session.run(None, {"image": x.numpy()})
    with torch.no_grad():
        expected = model(x)
    difference = (torch.from_numpy(found) - expected).abs().max().item()
    print(f"onnxruntime vs torch, batch 3: max abs diff {difference:.3g}")
    assert found.shape == (3, TINY["num_classes"])
    assert difference <= 1e-5 * expected.abs().max().item() + 1e-6


# Full size (CI's heavy pass)


@pytest.mark.heavy
@pytest.mark.parametrize(
    ("timm_name", "card"),
    [("vit_base_patch16_224", "vit-b16-in1k"), ("vit_large_patch16_224", "vit-l16-in1k")],
)
def test_timm_parity_full_size(tmp_path: Path, timm_name: str, card: str) -> None:
    upstream = timm_random(timm_name)
    save_file(upstream.state_dict(), tmp_path / "timm.safetensors")
    model = zoo.load(card, weights=tmp_path / "timm.safetensors", layout="timm")
    assert count_parameters(model) == count_parameters(upstream) == zoo.card(card).parameters
    x = images({"image_size": 224}, batch=1)
    with torch.no_grad():
        assert_parity(model(x), upstream(x), f"timm {timm_name}")


@pytest.mark.heavy
def test_transformers_parity_base(tmp_path: Path) -> None:
    upstream = randomize(
        transformers.ViTForImageClassification(transformers.ViTConfig(num_labels=1000))
    )
    upstream.save_pretrained(tmp_path)
    model = zoo.load(
        "vit-b16-in1k.google", weights=tmp_path / "model.safetensors", layout="transformers"
    )
    assert count_parameters(model) == count_parameters(upstream) == 86_567_656
    x = images({"image_size": 224}, batch=2)
    with torch.no_grad():
        assert_parity(model(x), upstream(pixel_values=x).logits, "transformers base")
