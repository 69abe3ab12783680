"""FPN plugin: the pyramid and Faster R-CNN R50-FPN against torchvision, converters, inputs.

Parity is measured as ``(ours - theirs).abs().max() / theirs.abs().max()`` in float32,
eval mode, same weights (saved as safetensors in torchvision's layout and loaded
through the zoo). Detections must also agree in count and labels exactly.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import Tensor, nn
from torchvision.models import ResNet
from torchvision.models.detection import FasterRCNN, fasterrcnn_resnet50_fpn
from torchvision.models.detection.backbone_utils import BackboneWithFPN, resnet_fpn_backbone
from torchvision.models.resnet import Bottleneck
from torchvision.ops.misc import FrozenBatchNorm2d

import zoo
from zoo.errors import WeightsError
from zoo.loading import count_parameters, empty_model

TOLERANCE = 1e-5
SMALL_LAYERS = (1, 1, 1, 1)
SMALL_SIZES = {"min_size": 224, "max_size": 320}
FEW_PROPOSALS = {"rpn_pre_nms_top_n": 300, "rpn_post_nms_top_n": 100}
"""Fewer RoIs than the default 1000 per image keep the fast tests fast: same code path."""
RETURN_LAYERS = {"layer1": "0", "layer2": "1", "layer3": "2", "layer4": "3"}
STAGE_CHANNELS = [256, 512, 1024, 2048]
FASTER_RCNN_R50_FPN_PARAMETERS = 41_755_286
"""torchvision's FasterRCNN_ResNet50_FPN_Weights.COCO_V1.meta['num_params']."""
RESNET50_FPN_PARAMETERS = 26_799_296
"""ResNet-50 without fc (23,454,912 with BatchNorm frozen to buffers) + FPN (3,344,384)."""
DETECTED_CLASSES = [1, 3, 18]


def relative_difference(ours: Tensor, theirs: Tensor) -> float:
    return ((ours - theirs).abs().max() / theirs.abs().max()).item()


def randomize_frozen_batchnorm(model: nn.Module, generator: torch.Generator) -> None:
    """Random affine and statistics, so a converter that dropped or mixed them would show."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, FrozenBatchNorm2d | nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5, generator=generator)
                module.bias.uniform_(-0.2, 0.2, generator=generator)
                module.running_mean.uniform_(-0.2, 0.2, generator=generator)
                module.running_var.uniform_(0.5, 2.0, generator=generator)


def well_conditioned(detector: FasterRCNN, batch: list[Tensor], generator: torch.Generator) -> None:
    """Random weights under which the heads see O(1) inputs, so detections look like detections.

    Every conv and linear layer gets unit-gain noise; BatchNorm gets the statistics of
    the test batch itself (then a random affine), and each pyramid output is scaled to
    unit deviation. Default init instead lets activations reach ~1e4 and saturates every
    softmax, which makes detections degenerate (whole-image boxes, scores of 1.0).
    """
    with torch.no_grad():
        for module in detector.modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                module.weight.normal_(0, module.weight[0].numel() ** -0.5, generator=generator)
                if module.bias is not None:
                    module.bias.uniform_(-0.1, 0.1, generator=generator)
        pixels = detector.transform(batch)[0].tensors
        norms = [module for module in detector.modules() if isinstance(module, nn.BatchNorm2d)]
        for norm in norms:
            norm.reset_running_stats()
            norm.momentum = None
        detector.backbone.train()
        detector.backbone.body(pixels)
        detector.eval()
        for norm in norms:
            norm.weight.uniform_(0.5, 1.5, generator=generator)
            norm.bias.uniform_(-0.2, 0.2, generator=generator)
        pyramid = detector.backbone(pixels)
        for level, block in zip(pyramid.values(), detector.backbone.fpn.layer_blocks, strict=False):
            block[0].weight /= level.std()
            block[0].bias /= level.std()


def frozen_copy(detector: FasterRCNN) -> FasterRCNN:
    """The detector with torchvision's FrozenBatchNorm2d, as it builds the COCO checkpoint's."""
    frozen = copy.deepcopy(detector)
    for name, module in list(frozen.named_modules()):
        if isinstance(module, nn.BatchNorm2d):
            replacement = FrozenBatchNorm2d(module.num_features, eps=module.eps)
            for buffer in ("weight", "bias", "running_mean", "running_var"):
                getattr(replacement, buffer).copy_(getattr(module, buffer).detach())
            parent, _, child = name.rpartition(".")
            setattr(frozen.get_submodule(parent), child, replacement)
    return frozen.eval()


def make_heads_detect(detector: FasterRCNN) -> None:
    """Push a few classes' logits up so that random weights still yield detections > 0.05."""
    with torch.no_grad():
        detector.roi_heads.box_predictor.cls_score.bias[DETECTED_CLASSES] += 3.0


def save(model: nn.Module, path: Path) -> Path:
    save_file({key: value.contiguous() for key, value in model.state_dict().items()}, path)
    return path


def small_torchvision_backbone() -> BackboneWithFPN:
    body = ResNet(Bottleneck, list(SMALL_LAYERS), norm_layer=FrozenBatchNorm2d)
    return BackboneWithFPN(body, RETURN_LAYERS, STAGE_CHANNELS, 256)


def images(generator: torch.Generator, *sizes: tuple[int, int]) -> list[Tensor]:
    return [torch.rand(3, height, width, generator=generator) for height, width in sizes]


def assert_same_detections(ours: list[dict], theirs: list[dict]) -> None:
    assert len(ours) == len(theirs)
    for mine, reference in zip(ours, theirs, strict=True):
        assert len(reference["boxes"]) > 0, "the reference found nothing: the test would be void"
        assert mine["boxes"].shape == reference["boxes"].shape
        assert torch.equal(mine["labels"], reference["labels"])
        boxes = relative_difference(mine["boxes"], reference["boxes"])
        scores = relative_difference(mine["scores"], reference["scores"])
        count = len(mine["boxes"])
        print(f"{count} detections, relative difference boxes {boxes:.2e}, scores {scores:.2e}")
        assert boxes <= TOLERANCE
        assert scores <= TOLERANCE


@pytest.fixture(scope="module")
def small_detector(tmp_path_factory) -> tuple[FasterRCNN, Path]:
    """A torchvision Faster R-CNN on a one-block-per-stage ResNet, random weights, saved."""
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    detector = FasterRCNN(
        small_torchvision_backbone(),
        num_classes=91,
        rpn_pre_nms_top_n_test=FEW_PROPOSALS["rpn_pre_nms_top_n"],
        rpn_post_nms_top_n_test=FEW_PROPOSALS["rpn_post_nms_top_n"],
        **SMALL_SIZES,
    )
    randomize_frozen_batchnorm(detector, generator)
    make_heads_detect(detector)
    path = save(detector, tmp_path_factory.mktemp("fpn") / "detector.safetensors")
    return detector.eval(), path


def load_small_detector(path: Path, **config) -> nn.Module:
    config = {"backbone": {"layers": SMALL_LAYERS}, **SMALL_SIZES, **FEW_PROPOSALS, **config}
    return zoo.build("faster-rcnn-fpn", config, weights=path, layout="torchvision").eval()


def test_small_detector_gives_torchvisions_detections(small_detector):
    reference, path = small_detector
    model = load_small_detector(path)
    batch = images(torch.Generator().manual_seed(1), (300, 400), (360, 270))

    with torch.no_grad():
        assert_same_detections(model(batch), reference(batch))


def test_a_batch_tensor_gives_the_same_detections_as_a_list(small_detector):
    _, path = small_detector
    model = load_small_detector(path)
    batch = torch.rand(2, 3, 240, 320, generator=torch.Generator().manual_seed(2))

    with torch.no_grad():
        from_tensor, from_list = model(batch), model(list(batch))

    for one, other in zip(from_tensor, from_list, strict=True):
        assert len(one["boxes"]) > 0
        for key in ("boxes", "scores", "labels"):
            assert torch.equal(one[key], other[key])


def test_boxes_lie_in_the_original_image(small_detector):
    _, path = small_detector
    model = load_small_detector(path)
    height, width = 500, 200

    with torch.no_grad():
        (detection,) = model(images(torch.Generator().manual_seed(3), (height, width)))

    boxes = detection["boxes"]
    assert len(boxes) > 0
    assert boxes[:, 0::2].min() >= 0 and boxes[:, 0::2].max() <= width
    assert boxes[:, 1::2].min() >= 0 and boxes[:, 1::2].max() <= height
    assert detection["scores"].min() > 0.05
    assert len(boxes) <= 100


def test_nothing_above_the_score_threshold_gives_empty_detections(small_detector):
    _, path = small_detector
    model = load_small_detector(path, box_score_thresh=1.0)

    with torch.no_grad():
        (detection,) = model(images(torch.Generator().manual_seed(4), (256, 256)))

    assert detection["boxes"].shape == (0, 4)
    assert detection["scores"].shape == detection["labels"].shape == (0,)


def test_no_proposals_give_empty_detections(small_detector):
    _, path = small_detector
    model = load_small_detector(path)
    pyramid = [torch.rand(1, 256, 64 // stride, 64 // stride) for stride in (4, 8, 16, 32)]

    with torch.no_grad():
        (detection,) = model.roi_heads(pyramid, [torch.zeros(0, 4)], [(64, 64)])

    assert detection["boxes"].shape == (0, 4)
    assert detection["scores"].shape == detection["labels"].shape == (0,)


def test_small_pyramid_matches_torchvisions_backbone_with_fpn(tmp_path):
    generator = torch.Generator().manual_seed(5)
    reference = small_torchvision_backbone().eval()
    randomize_frozen_batchnorm(reference, generator)
    path = save(reference, tmp_path / "backbone.safetensors")
    model = zoo.build(
        "resnet-fpn", {"layers": SMALL_LAYERS}, weights=path, layout="torchvision"
    ).eval()
    # 200 is not a multiple of 32: the top-down path must upsample to odd sizes too.
    batch = torch.randn(2, 3, 200, 264, generator=generator)

    with torch.no_grad():
        ours, theirs = model(batch), reference(batch)

    assert list(ours) == list(theirs) == ["0", "1", "2", "3", "pool"]
    for level in theirs:
        assert ours[level].shape == theirs[level].shape
        assert relative_difference(ours[level], theirs[level]) <= TOLERANCE


def test_the_pyramid_loads_from_a_detector_checkpoint(small_detector):
    reference, path = small_detector
    model = zoo.build(
        "resnet-fpn", {"layers": SMALL_LAYERS}, weights=path, layout="torchvision-detector"
    ).eval()
    batch = torch.randn(1, 3, 256, 320, generator=torch.Generator().manual_seed(6))

    with torch.no_grad():
        ours, theirs = model(batch), reference.backbone(batch)

    for level in theirs:
        assert relative_difference(ours[level], theirs[level]) <= TOLERANCE


def test_parameter_counts_are_torchvisions():
    registry = zoo.default_registry()
    detector = empty_model(registry.architecture("faster-rcnn-fpn"), {})
    pyramid = empty_model(registry.architecture("resnet-fpn"), {})
    with torch.device("meta"):
        reference = resnet_fpn_backbone(
            backbone_name="resnet50", weights=None, norm_layer=FrozenBatchNorm2d, trainable_layers=5
        )

    assert count_parameters(detector) == FASTER_RCNN_R50_FPN_PARAMETERS
    assert count_parameters(pyramid) == RESNET50_FPN_PARAMETERS == count_parameters(reference)


def test_state_dict_keys_are_torchvisions():
    detector = empty_model(zoo.default_registry().architecture("faster-rcnn-fpn"), {})
    with torch.device("meta"):
        reference = fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None).eval()
    expected = {key for key in reference.state_dict() if not key.endswith("num_batches_tracked")}

    assert set(detector.state_dict()) == expected


def test_a_backbone_checkpoint_is_not_taken_for_a_detector(tmp_path):
    path = save(small_torchvision_backbone(), tmp_path / "backbone.safetensors")

    with pytest.raises(WeightsError, match="BackboneWithFPN: use the resnet-fpn architecture"):
        load_small_detector(path)


def test_a_detector_checkpoint_needs_the_detector_layout_for_the_pyramid(small_detector):
    _, path = small_detector

    with pytest.raises(WeightsError, match="layout 'torchvision-detector'"):
        zoo.build("resnet-fpn", {"layers": SMALL_LAYERS}, weights=path, layout="torchvision")


def test_a_different_class_count_is_named(small_detector):
    _, path = small_detector

    with pytest.raises(WeightsError, match=r"has 91 classes .* config num_classes is 21"):
        load_small_detector(path, num_classes=21)


def test_a_different_depth_is_named(small_detector):
    _, path = small_detector

    with pytest.raises(WeightsError, match="layer3 has 1 blocks, config layers expects 6"):
        zoo.build("faster-rcnn-fpn", SMALL_SIZES, weights=path, layout="torchvision")


def test_a_missing_tensor_is_reported(small_detector, tmp_path):
    reference, _ = small_detector
    state = {key: value.contiguous() for key, value in reference.state_dict().items()}
    del state["rpn.head.bbox_pred.weight"]
    save_file(state, tmp_path / "incomplete.safetensors")

    with pytest.raises(WeightsError, match=r"missing keys \[rpn\.head\.bbox_pred\.weight\]"):
        load_small_detector(tmp_path / "incomplete.safetensors")


@pytest.mark.parametrize(
    ("bad_input", "error", "message"),
    [
        (torch.rand(1, 1, 64, 64), ValueError, r"expected shape \(3, H, W\), found \(1, 64, 64\)"),
        (torch.rand(3, 64, 64), ValueError, r"found shape \(3, 64, 64\)"),
        ([torch.rand(64, 64)], ValueError, r"image 0: expected shape \(3, H, W\)"),
        ([torch.zeros(3, 64, 64, dtype=torch.uint8)], TypeError, r"found torch.uint8"),
        ([], ValueError, "at least one image"),
    ],
)
def test_bad_images_are_rejected_clearly(bad_input, error, message):
    model = zoo.build("faster-rcnn-fpn", {"backbone": {"layers": SMALL_LAYERS}, **SMALL_SIZES})

    with pytest.raises(error, match=message):
        model.eval()(bad_input)


def test_the_pyramid_rejects_unnormalised_shapes():
    model = zoo.build("resnet-fpn", {"layers": SMALL_LAYERS})

    with pytest.raises(ValueError, match=r"expected images of shape \(N, 3, H, W\)"):
        model(torch.rand(3, 64, 64))


def test_the_detector_card_describes_torchvisions_checkpoint():
    card = zoo.card("fpn-resnet50-coco")

    assert card.weights[0].url.endswith("fasterrcnn_resnet50_fpn_coco-258fb6c6.pth")
    assert (card.weights[0].format, card.weights[0].layout) == ("pickle", "torchvision")
    assert [(metric.name, metric.value) for metric in card.metrics] == [("box_ap", 37.0)]
    assert card.label_names()[1] == "person"
    assert zoo.card("resnet50-fpn").weights[0].layout == "torchvision-detector"


@pytest.mark.heavy
def test_resnet50_detector_at_800_pixels_gives_torchvisions_detections(tmp_path):
    """fasterrcnn_resnet50_fpn(weights=None) at the card's sizes, loaded through the card.

    Without weights torchvision builds plain BatchNorm2d; the COCO checkpoint's model
    (and the zoo's) has FrozenBatchNorm2d. Detections are compared with the frozen form,
    which the zoo matches bit for bit. Against the plain form only the pyramid is
    compared: BatchNorm2d and FrozenBatchNorm2d round differently (~3e-6 relative in
    the pyramid), and ranking and NMS turn that into swapped near-tied detections in
    torchvision's own two forms alike.
    """
    generator = torch.Generator().manual_seed(7)
    torch.manual_seed(7)
    batch = images(generator, (427, 640))
    reference = fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None).eval()
    well_conditioned(reference, batch, generator)
    make_heads_detect(reference)
    path = save(reference, tmp_path / "fasterrcnn_resnet50_fpn.safetensors")
    model = zoo.load("fpn-resnet50-coco", weights=path, layout="torchvision")
    pixels = reference.transform(batch)[0].tensors

    with torch.no_grad():
        ours, frozen = model(batch), frozen_copy(reference)(batch)
        our_pyramid, plain_pyramid = model.backbone(pixels), reference.backbone(pixels)

    assert_same_detections(ours, frozen)
    for level, theirs in plain_pyramid.items():
        difference = relative_difference(our_pyramid[level], theirs)
        print(f"pyramid level {level}: relative difference to plain BatchNorm {difference:.2e}")
        assert difference <= TOLERANCE


@pytest.mark.parametrize(
    ("backbone_name", "config"),
    [
        ("resnet50", {}),
        ("resnext50_32x4d", {"groups": 32, "width_per_group": 4}),
    ],
)
def test_full_pyramids_match_torchvisions_resnet_fpn_backbone(tmp_path, backbone_name, config):
    generator = torch.Generator().manual_seed(8)
    reference = resnet_fpn_backbone(
        backbone_name=backbone_name, weights=None, norm_layer=FrozenBatchNorm2d, trainable_layers=5
    ).eval()
    randomize_frozen_batchnorm(reference, generator)
    path = save(reference, tmp_path / "backbone.safetensors")
    model = zoo.build("resnet-fpn", config, weights=path, layout="torchvision").eval()
    batch = torch.randn(1, 3, 320, 416, generator=generator)

    with torch.no_grad():
        ours, theirs = model(batch), reference(batch)

    for level in theirs:
        assert relative_difference(ours[level], theirs[level]) <= TOLERANCE
