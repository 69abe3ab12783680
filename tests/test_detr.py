"""DETR: parity with transformers' DetrForObjectDetection, the authors' layout, post-processing,
and the Hungarian matcher and set loss.

Parity measure: max relative difference ``(a - b).abs().max() / b.abs().max()`` in float32,
eval mode, with every weight and BatchNorm statistic randomised so all of them matter.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import zoo
from zoo.errors import WeightsError
from zoo_plugins.detr import DetrConfig
from zoo_plugins.detr.loss import HungarianMatcher, SetCriterion
from zoo_plugins.detr.model import DETR, pad_batch
from zoo_plugins.detr.postprocess import postprocess

transformers = pytest.importorskip("transformers")

TOLERANCE = 1e-5
SMALL = {
    "backbone_layers": (2, 2, 2, 2),
    "d_model": 64,
    "num_heads": 8,
    "ffn_dim": 128,
    "encoder_layers": 2,
    "decoder_layers": 2,
    "num_queries": 10,
}
# Paper, Table 1: DETR (R50) 41M and DETR-R101 60M parameters; these are the exact counts,
# equal for the zoo, transformers (num_labels=91) and the authors' model (FrozenBatchNorm
# statistics are buffers in all three).
PARAMETERS = {(3, 4, 6, 3): 41_524_768, (3, 4, 23, 3): 60_464_672}


def reference_model(
    config: DetrConfig, timm_backbone: bool = True
) -> transformers.DetrForObjectDetection:
    """transformers' DETR matching ``config``, built offline, every tensor randomised."""
    backbone = {(2, 2, 2, 2): "resnet26", (3, 4, 6, 3): "resnet50", (3, 4, 23, 3): "resnet101"}
    size = {
        "num_labels": config.num_classes,
        "d_model": config.d_model,
        "encoder_attention_heads": config.num_heads,
        "decoder_attention_heads": config.num_heads,
        "encoder_ffn_dim": config.ffn_dim,
        "decoder_ffn_dim": config.ffn_dim,
        "encoder_layers": config.encoder_layers,
        "decoder_layers": config.decoder_layers,
        "num_queries": config.num_queries,
    }
    if timm_backbone:
        hf_config = transformers.DetrConfig(
            use_pretrained_backbone=False, backbone=backbone[config.backbone_layers], **size
        )
    else:
        resnet = transformers.ResNetConfig(
            depths=list(config.backbone_layers), out_features=["stage4"]
        )
        hf_config = transformers.DetrConfig(backbone_config=resnet, **size)
    model = transformers.DetrForObjectDetection(hf_config).eval()
    randomise_(model.state_dict())
    return model


def randomise_(state: dict[str, torch.Tensor], seed: int = 0) -> None:
    """Weights ~ N(0, 1/fan_in), biases and BN shifts small, scales and variances near 1."""
    generator = torch.Generator().manual_seed(seed)
    for key, tensor in state.items():
        if not tensor.is_floating_point():
            continue
        noise = torch.randn(tensor.shape, generator=generator)
        if key.endswith("running_var"):
            tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
        elif tensor.dim() == 1 and key.endswith("weight"):
            tensor.copy_(1 + 0.1 * noise)
        elif tensor.dim() == 1:
            tensor.copy_(0.1 * noise)
        elif "query_position" in key:
            tensor.copy_(noise)
        else:
            tensor.copy_(noise / tensor[0].numel() ** 0.5)


def relative(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    return ((ours - theirs).abs().max() / theirs.abs().max()).item()


def save(state: dict[str, torch.Tensor], path: Path) -> Path:
    save_file({key: value.contiguous() for key, value in state.items()}, path)
    return path


def assert_parity(ours: dict, theirs) -> None:
    assert relative(ours["logits"], theirs.logits) <= TOLERANCE
    assert relative(ours["boxes"], theirs.pred_boxes) <= TOLERANCE


def assert_same_detections(ours: dict, theirs, sizes: list[tuple[int, int]]) -> None:
    """postprocess() against transformers' post_process_object_detection, same threshold."""
    scores = theirs.logits.softmax(-1)[..., :-1].max(-1).values
    threshold = scores.median().item()  # keeps about half the queries of each image
    processor = transformers.DetrImageProcessor()
    expected = processor.post_process_object_detection(
        theirs, threshold=threshold, target_sizes=torch.tensor(sizes)
    )
    found = postprocess(ours, sizes, threshold)
    assert sum(len(image["labels"]) for image in found) > 0
    for mine, upstream in zip(found, expected, strict=True):
        assert torch.equal(mine["labels"], upstream["labels"])
        torch.testing.assert_close(mine["scores"], upstream["scores"], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(mine["boxes"], upstream["boxes"], rtol=1e-5, atol=1e-3)


@pytest.fixture(scope="module")
def small_reference() -> transformers.DetrForObjectDetection:
    torch.manual_seed(0)
    return reference_model(DetrConfig(**SMALL))


@pytest.fixture
def small_file(small_reference, tmp_path: Path) -> Path:
    return save(small_reference.state_dict(), tmp_path / "detr.safetensors")


def test_transformers_parity_same_size_batch(small_reference, small_file: Path) -> None:
    model = zoo.build("detr", SMALL, weights=small_file, layout="transformers").eval()
    image = torch.randn(2, 3, 128, 160)
    with torch.no_grad():
        ours, theirs = model(image), small_reference(pixel_values=image)
    assert ours["logits"].shape == (2, 10, 92) and ours["boxes"].shape == (2, 10, 4)
    assert (theirs.logits[:, 0] - theirs.logits[:, 1]).abs().max() > 1e-2  # queries differ
    assert_parity(ours, theirs)
    assert_same_detections(ours, theirs, [(480, 640), (300, 200)])


def test_transformers_parity_padded_batch_of_different_sizes(
    small_reference, small_file: Path
) -> None:
    model = zoo.build("detr", SMALL, weights=small_file, layout="transformers").eval()
    images = [torch.randn(3, 128, 160), torch.randn(3, 96, 120)]
    batch, pixel_mask = pad_batch(images)
    assert batch.shape == (2, 3, 128, 160) and pixel_mask[1].sum() == 96 * 120
    with torch.no_grad():
        ours = model(batch, pixel_mask)
        theirs = small_reference(pixel_values=batch, pixel_mask=pixel_mask)
        unpadded = model(images[1][None])
    assert_parity(ours, theirs)
    # Padding changes the result only through the backbone's receptive field at the border.
    assert relative(ours["logits"][1], model(batch)["logits"][1]) > TOLERANCE
    assert unpadded["logits"].shape == (1, 10, 92)


def test_no_mask_equals_all_real_mask(small_file: Path) -> None:
    """The export path (no mask) computes what the masked path computes for unpadded images."""
    model = zoo.build("detr", SMALL, weights=small_file, layout="transformers").eval()
    image = torch.randn(2, 3, 128, 160)
    with torch.no_grad():
        plain = model(image)
        masked = model(image, torch.ones(2, 128, 160, dtype=torch.long))
    assert relative(plain["logits"], masked["logits"]) <= 1e-6
    assert relative(plain["boxes"], masked["boxes"]) <= 1e-6


def hub_file_names(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """transformers >= 5 in-memory names to those of the facebook/detr-resnet-50 Hub file.

    The inverse of transformers' conversion_mapping for DetrModel: ``backbone.conv_encoder``
    -> ``backbone``, ``out_proj`` -> ``o_proj``, ``layers.N.fc1`` -> ``layers.N.mlp.fc1``.
    """
    renamed = {}
    for key, tensor in state.items():
        key = key.replace("model.backbone.model.", "model.backbone.conv_encoder.model.")
        key = key.replace(".o_proj.", ".out_proj.")
        key = re.sub(r"layers\.(\d+)\.mlp\.fc", r"layers.\1.fc", key)
        renamed[key] = tensor
    return renamed


def test_transformers_parity_hub_file_names(small_reference, tmp_path: Path) -> None:
    state = hub_file_names(small_reference.state_dict())
    assert "model.encoder.layers.0.self_attn.out_proj.weight" in state
    assert "model.backbone.conv_encoder.model.layer1.0.conv1.weight" in state
    counter = "model.backbone.conv_encoder.model.layer1.0.downsample.1.num_batches_tracked"
    state[counter] = torch.tensor(0)  # the Hub's pickle-era files carry BatchNorm counters
    path = save(state, tmp_path / "hub.safetensors")
    model = zoo.build("detr", SMALL, weights=path, layout="transformers").eval()
    image = torch.randn(1, 3, 128, 160)
    with torch.no_grad():
        assert_parity(model(image), small_reference(pixel_values=image))


def test_transformers_parity_own_resnet_backbone(tmp_path: Path) -> None:
    """The ``no_timm`` revision's backbone: transformers' ResNet (embedder, encoder.stages)."""
    torch.manual_seed(0)
    config = DetrConfig(**SMALL)
    reference = reference_model(config, timm_backbone=False)
    assert any(".embedder.embedder.convolution." in key for key in reference.state_dict())
    path = save(reference.state_dict(), tmp_path / "detr.safetensors")
    model = zoo.build("detr", config, weights=path, layout="transformers").eval()
    image = torch.randn(1, 3, 128, 160)
    with torch.no_grad():
        assert_parity(model(image), reference(pixel_values=image))


def authors_layout(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """transformers' state dict rewritten into facebookresearch/detr's names, from their code.

    models/detr.py: ``input_proj``, ``query_embed``, ``class_embed``, ``bbox_embed.layers.N``
    (MLP), ``backbone`` = Joiner(Backbone, position) whose ``body`` is an
    IntermediateLayerGetter over torchvision's resnet: ``backbone.0.body.<resnet key>``.
    models/transformer.py: ``transformer.encoder.layers.N`` with ``self_attn``
    (nn.MultiheadAttention: ``in_proj_weight`` = [q; k; v], ``out_proj``), ``linear1``,
    ``linear2``, ``norm1``, ``norm2``; decoder layers add ``multihead_attn`` and ``norm3``;
    ``transformer.decoder.norm``.
    """
    layer_parts = {
        "encoder": {"self_attn_layer_norm": "norm1", "final_layer_norm": "norm2"},
        "decoder": {
            "self_attn_layer_norm": "norm1",
            "encoder_attn_layer_norm": "norm2",
            "final_layer_norm": "norm3",
            "encoder_attn": "multihead_attn",
        },
    }
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        key = key.replace("model.backbone.model.", "backbone.0.body.")
        key = key.replace("model.input_projection.", "input_proj.")
        key = key.replace("model.query_position_embeddings.", "query_embed.")
        key = key.replace("model.decoder.layernorm.", "transformer.decoder.norm.")
        key = key.replace("class_labels_classifier.", "class_embed.")
        key = key.replace("bbox_predictor.", "bbox_embed.")
        match = re.match(r"model\.(encoder|decoder)\.layers\.(\d+)\.(.+)$", key)
        if match:
            stack, index, part = match.groups()
            for old, new in layer_parts[stack].items():
                part = re.sub(rf"^{old}\.", f"{new}.", part)
            part = part.replace("mlp.fc1", "linear1").replace("mlp.fc2", "linear2")
            part = part.replace("o_proj", "out_proj")
            key = f"transformer.{stack}.layers.{index}.{part}"
        out[key] = tensor
    for key in [key for key in out if key.endswith("q_proj.weight")]:
        attention = key.removesuffix(".q_proj.weight")
        for kind in ("weight", "bias"):
            parts = [out.pop(f"{attention}.{which}_proj.{kind}") for which in "qkv"]
            out[f"{attention}.in_proj_{kind}"] = torch.cat(parts)
    return out


def authors_expected_keys(config: DetrConfig, backbone_keys: list[str]) -> set[str]:
    """Every key the authors' DETR(num_classes=91, aux_loss) state dict holds, from their code."""
    keys = {f"backbone.0.body.{key}" for key in backbone_keys}
    keys |= {
        f"{name}.{kind}" for name in ("input_proj", "class_embed") for kind in ("weight", "bias")
    }
    keys |= {f"bbox_embed.layers.{i}.{kind}" for i in range(3) for kind in ("weight", "bias")}
    keys |= {
        "query_embed.weight",
        "transformer.decoder.norm.weight",
        "transformer.decoder.norm.bias",
    }
    attention = ["in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"]
    common = [f"{m}.{k}" for m in ("linear1", "linear2") for k in ("weight", "bias")]
    for stack, count, attentions, norms in (
        ("encoder", config.encoder_layers, ["self_attn"], 2),
        ("decoder", config.decoder_layers, ["self_attn", "multihead_attn"], 3),
    ):
        parts = [f"{a}.{p}" for a in attentions for p in attention] + common
        parts += [f"norm{n}.{k}" for n in range(1, norms + 1) for k in ("weight", "bias")]
        keys |= {f"transformer.{stack}.layers.{i}.{part}" for i in range(count) for part in parts}
    return keys


def test_authors_layout_keys_shapes_and_outputs(small_reference, tmp_path: Path) -> None:
    """What this proves: a state dict with exactly the key set the authors' code defines
    (backbone keys from torchvision's resnet, whose FrozenBatchNorm2d drops only the
    counters; transformer keys from nn.MultiheadAttention's packing), filled from the
    transformers reference, loads through the ``authors`` converter and reproduces the
    reference's outputs. It does not run the authors' code, which is not on PyPI."""
    torchvision = pytest.importorskip("torchvision")
    config = DetrConfig(**SMALL)
    resnet = torchvision.models.resnet.ResNet(torchvision.models.resnet.Bottleneck, [2, 2, 2, 2])
    backbone_keys = [
        key
        for key in resnet.state_dict()
        if not key.startswith("fc.") and not key.endswith("num_batches_tracked")
    ]
    state = authors_layout(small_reference.state_dict())
    assert set(state) == authors_expected_keys(config, backbone_keys)
    expected_shapes = {
        "transformer.encoder.layers.0.self_attn.in_proj_weight": (3 * 64, 64),
        "transformer.decoder.layers.1.multihead_attn.in_proj_bias": (3 * 64,),
        "class_embed.weight": (92, 64),
        "bbox_embed.layers.2.weight": (4, 64),
        "query_embed.weight": (10, 64),
        "input_proj.weight": (64, 2048, 1, 1),
    }
    assert {key: tuple(state[key].shape) for key in expected_shapes} == expected_shapes
    path = save(state, tmp_path / "authors.safetensors")
    model = zoo.build("detr", config, weights=path, layout="authors").eval()
    image = torch.randn(2, 3, 128, 160)
    with torch.no_grad():
        assert_parity(model(image), small_reference(pixel_values=image))
    # Round trip: the zoo's own layout is the authors' but for the backbone prefix.
    round_trip = {
        key.replace("backbone.", "backbone.0.body.", 1): value
        for key, value in model.state_dict().items()
    }
    assert set(round_trip) == set(state)
    assert all(torch.equal(round_trip[key], state[key]) for key in state)


def test_wrong_layout_is_a_clear_error(small_reference, small_file: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a DETR state dict in the 'authors' layout"):
        zoo.build("detr", SMALL, weights=small_file, layout="authors")
    authors = save(authors_layout(small_reference.state_dict()), tmp_path / "a.safetensors")
    with pytest.raises(ValueError, match="'transformers' layout"):
        zoo.build("detr", SMALL, weights=authors, layout="transformers")
    state = dict(small_reference.state_dict())
    del state["model.encoder.layers.1.self_attn.k_proj.bias"]
    with pytest.raises(ValueError, match=r"found only \['q', 'v'\]"):
        zoo.build(
            "detr", SMALL, weights=save(state, tmp_path / "b.safetensors"), layout="transformers"
        )
    state = dict(small_reference.state_dict())
    del state["class_labels_classifier.bias"]
    with pytest.raises(WeightsError, match=r"missing keys \[class_embed.bias\]"):
        zoo.build(
            "detr", SMALL, weights=save(state, tmp_path / "c.safetensors"), layout="transformers"
        )


def test_bad_input_and_config_errors() -> None:
    model = DETR(DetrConfig(**SMALL)).eval()
    with pytest.raises(ValueError, match=r"\(batch, 3, height, width\), found \(1, 1, 64, 64\)"):
        model(torch.zeros(1, 1, 64, 64))
    with pytest.raises(ValueError, match="pixel_mask must have shape"):
        model(torch.zeros(1, 3, 64, 64), torch.ones(1, 32, 32))
    with pytest.raises(ValueError, match="divisible by num_heads"):
        DetrConfig(d_model=100, num_heads=8)


@pytest.mark.parametrize(("layers", "count"), PARAMETERS.items())
def test_parameter_counts(layers: tuple[int, ...], count: int) -> None:
    """Paper, Table 1: 41M (DETR R50) and 60M (DETR-R101); the exact counts of the built model."""
    architecture = zoo.default_registry().architecture("detr")
    from zoo.loading import count_parameters, empty_model

    assert count_parameters(empty_model(architecture, {"backbone_layers": layers})) == count
    assert zoo.card("detr-resnet50-coco").parameters == PARAMETERS[(3, 4, 6, 3)]


def test_postprocess_hand_made() -> None:
    logits = torch.full((1, 3, 92), -10.0)
    logits[0, 0, 17] = 10.0  # confident cat (COCO id 17)
    logits[0, 1, 91] = 10.0  # no-object
    logits[0, 2, 1], logits[0, 2, 2] = 1.0, 1.0  # uncertain between person and bicycle
    boxes = torch.tensor([[[0.5, 0.5, 0.2, 0.4], [0.1, 0.1, 0.1, 0.1], [0.25, 0.75, 0.5, 0.5]]])
    (detections,) = postprocess({"logits": logits, "boxes": boxes}, [(200, 100)], threshold=0.3)
    assert detections["labels"].tolist() == [17, 1]
    assert detections["scores"][0] > 0.99 and 0.4 < detections["scores"][1] < 0.5
    torch.testing.assert_close(
        detections["boxes"], torch.tensor([[40.0, 60.0, 60.0, 140.0], [0.0, 100.0, 50.0, 200.0]])
    )
    assert zoo.card("detr-resnet50-coco").label_names()[17] == "cat"
    with pytest.raises(ValueError, match=r"expected shape \(1, 2\)"):
        postprocess({"logits": logits, "boxes": boxes}, [(200, 100), (5, 5)])


def one_hot_logits(labels: list[int], num_classes: int = 4, confidence: float = 30.0):
    logits = torch.zeros(len(labels), num_classes + 1)
    logits[torch.arange(len(labels)), torch.tensor(labels)] = confidence
    return logits


def test_matcher_finds_the_optimal_not_the_greedy_assignment() -> None:
    """Prediction 0 is the closest to both targets; greedy would give it target 0 and leave
    target 1 to the far prediction 2. The optimum pairs 0-1 and 1-0."""
    boxes = torch.tensor([[0.30, 0.30, 0.2, 0.2], [0.20, 0.20, 0.2, 0.2], [0.90, 0.90, 0.1, 0.1]])[
        None
    ]
    logits = torch.zeros(1, 3, 5)
    targets = [
        {
            "labels": torch.tensor([0, 1]),
            "boxes": torch.tensor([[0.28, 0.28, 0.2, 0.2], [0.34, 0.34, 0.2, 0.2]]),
        }
    ]
    matcher = HungarianMatcher(cost_class=1, cost_bbox=5, cost_giou=2)
    cost = matcher.cost_matrix(logits[0], boxes[0], targets[0])
    assert cost[0].argmin() == 0  # greedy would take this pair first
    ((rows, cols),) = matcher({"logits": logits, "boxes": boxes}, targets)
    assert rows.tolist() == [0, 1] and cols.tolist() == [1, 0]
    best = min(cost[0, 1] + cost[1, 0], cost[0, 0] + cost[1, 1], cost[0, 0] + cost[2, 1])
    assert torch.isclose(cost[rows, cols].sum(), best)


def test_matcher_takes_the_box_with_the_higher_giou_when_classes_and_l1_tie() -> None:
    """Both predictions are 0.2 from the target in L1: one contains it (GIoU 4/9), the other
    is shifted off it (IoU 1/7, minus 2/9 of the enclosing box left uncovered)."""
    target = {"labels": torch.tensor([0]), "boxes": torch.tensor([[0.5, 0.5, 0.2, 0.2]])}
    boxes = torch.tensor([[[0.6, 0.6, 0.2, 0.2], [0.5, 0.5, 0.3, 0.3]]])
    logits = torch.zeros(1, 2, 5)
    matcher = HungarianMatcher(cost_class=1, cost_bbox=5, cost_giou=2)

    ((rows, cols),) = matcher({"logits": logits, "boxes": boxes}, [target])
    cost = matcher.cost_matrix(logits[0], boxes[0], target)

    assert rows.tolist() == [1] and cols.tolist() == [0]
    shifted_giou, containing_giou = 1 / 7 - 2 / 9, 4 / 9
    expected = 2 * (containing_giou - shifted_giou)
    assert torch.isclose(cost[0, 0] - cost[1, 0], torch.tensor(expected))


def test_matcher_uses_class_when_boxes_tie() -> None:
    boxes = torch.tensor([[0.5, 0.5, 0.2, 0.2]] * 2)[None]
    logits = one_hot_logits([2, 3])[None]
    targets = [{"labels": torch.tensor([3, 2]), "boxes": boxes[0].clone()}]
    ((rows, cols),) = HungarianMatcher()({"logits": logits, "boxes": boxes}, targets)
    assert rows.tolist() == [0, 1] and cols.tolist() == [1, 0]


def test_criterion_is_zero_for_a_perfect_prediction() -> None:
    targets = [
        {
            "labels": torch.tensor([1, 3]),
            "boxes": torch.tensor([[0.3, 0.3, 0.2, 0.2], [0.7, 0.6, 0.3, 0.4]]),
        },
        {"labels": torch.zeros(0, dtype=torch.int64), "boxes": torch.zeros(0, 4)},
    ]
    logits = torch.stack([one_hot_logits([3, 4, 1]), one_hot_logits([4, 4, 4])])
    boxes = torch.stack(
        [
            torch.tensor([[0.7, 0.6, 0.3, 0.4], [0.5, 0.5, 0.1, 0.1], [0.3, 0.3, 0.2, 0.2]]),
            torch.full((3, 4), 0.5),
        ]
    )
    criterion = SetCriterion(num_classes=4)
    losses = criterion({"logits": logits, "boxes": boxes}, targets)
    assert losses["loss"] < 1e-6
    shifted = criterion({"logits": logits, "boxes": boxes + 0.1}, targets)
    assert torch.isclose(shifted["loss_bbox"], torch.tensor(0.4))  # 4 x 0.1 per box
    assert shifted["loss_giou"] > 0.1 and shifted["loss_ce"] < 1e-6
    swapped = logits[:, [2, 1, 0]]
    assert criterion({"logits": swapped, "boxes": boxes}, targets)["loss_ce"] > 1


def test_criterion_gradient_step_reduces_the_loss() -> None:
    torch.manual_seed(0)
    config = DetrConfig(**{**SMALL, "backbone_layers": (1, 1, 1, 1), "aux_outputs": True})
    model = DETR(config).train()
    criterion = SetCriterion(num_classes=config.num_classes)
    image = torch.randn(2, 3, 64, 64)
    targets = [
        {
            "labels": torch.tensor([17, 1]),
            "boxes": torch.tensor([[0.3, 0.3, 0.2, 0.2], [0.7, 0.6, 0.3, 0.4]]),
        },
        {"labels": torch.tensor([3]), "boxes": torch.tensor([[0.5, 0.5, 0.5, 0.5]])},
    ]
    trainable = [p for name, p in model.named_parameters() if not name.startswith("backbone.")]
    optimizer = torch.optim.SGD(trainable, lr=1e-3)
    model.eval()  # same function before and after the step: dropout off, the loss is exact
    before = criterion(model(image), targets)
    assert {"loss_ce_0", "loss_bbox_0", "loss_giou_0"} <= set(before)
    before["loss"].backward()
    optimizer.step()
    with torch.no_grad():
        after = criterion(model(image), targets)
    assert after["loss"] < before["loss"]


@pytest.mark.heavy
@pytest.mark.parametrize("layers", [(3, 4, 6, 3), (3, 4, 23, 3)], ids=["r50", "r101"])
def test_transformers_parity_full_size(layers: tuple[int, ...], tmp_path: Path) -> None:
    config = DetrConfig(backbone_layers=layers)
    reference = reference_model(config)
    assert sum(p.numel() for p in reference.parameters()) == PARAMETERS[layers]
    torch.manual_seed(0)
    path = save(reference.state_dict(), tmp_path / "detr.safetensors")
    model = zoo.build("detr", config, weights=path, layout="transformers").eval()
    image = torch.randn(1, 3, 256, 320)
    with torch.no_grad():
        ours, theirs = model(image), reference(pixel_values=image)
    assert_parity(ours, theirs)
    assert_same_detections(ours, theirs, [(480, 640)])


@pytest.mark.heavy
def test_card_loads_transformers_file(tmp_path: Path) -> None:
    """The card's config and layout take a file shaped like facebook/detr-resnet-50's."""
    reference = reference_model(DetrConfig())
    path = save(hub_file_names(reference.state_dict()), tmp_path / "model.safetensors")
    model = zoo.load("detr-resnet50-coco", weights=path, layout="transformers")
    image = torch.randn(1, 3, 224, 288)
    with torch.no_grad():
        assert_parity(model(image), reference(pixel_values=image))
