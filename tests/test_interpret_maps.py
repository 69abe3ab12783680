"""Grad-CAM and occlusion: planted signals they must find, a sanity check, real architectures.

The planted models (tests/interpret_models.py) see only one quadrant or one time span, or
were trained here to detect a square at a known place; an attribution that is uniform,
transposed, flipped in time or blind to the weights fails these tests.
"""

from __future__ import annotations

import pytest
import torch
from interpret_models import (
    QuadrantNet,
    SpanNet,
    SquareNet,
    square_images,
    trained_square_net,
)
from test_features import SMALL
from torch import nn

import zoo
from zoo.interpret import InterpretError, grad_cam, occlusion, output_change
from zoo.interpret.gradcam import TokenGrid
from zoo.registry import default_registry


def share(heat: torch.Tensor, region: tuple) -> float:
    """The fraction of the map's total (absolute) mass inside ``region`` (an index tuple)."""
    return float(heat.abs()[region].sum() / heat.abs().sum())


def test_grad_cam_puts_a_quadrant_models_mass_in_that_quadrant():
    heat = grad_cam(QuadrantNet().eval(), torch.rand(4, 3, 32, 32), 0, layer="features")

    assert heat.shape == (4, 32, 32)
    assert share(heat, (slice(None), slice(0, 16), slice(16, 32))) > 0.9  # uniform: 0.25


def test_occlusion_credits_only_the_quadrant_the_model_sees():
    heat = occlusion(QuadrantNet().eval(), torch.rand(4, 3, 32, 32), 0, window=8, stride=4)

    assert heat.shape == (4, 32, 32)
    # Windows straddling the border credit a 4-pixel fringe; farther out nothing changes but
    # float rounding (the convolution sums a batch of occluded copies in another order).
    rounding = 1e-5 * heat.abs().max()
    assert heat[:, 20:, :].abs().max() <= rounding and heat[:, :, :12].abs().max() <= rounding
    assert share(heat, (slice(None), slice(0, 16), slice(16, 32))) > 0.8


def test_occlusion_of_a_non_classifier_maps_where_hiding_the_input_changes_its_output():
    class TopRightEcho(nn.Module):
        def forward(self, image: torch.Tensor) -> torch.Tensor:
            return image[..., :16, 16:] * 2

    images = torch.rand(2, 3, 32, 32)
    score = output_change(TopRightEcho(), images)

    heat = occlusion(score, images, 0, window=8, stride=4, batch=5)
    one_at_a_time = occlusion(score, images, 0, window=8, stride=4, batch=1)

    torch.testing.assert_close(heat, one_at_a_time)
    assert heat.min() >= 0 and heat[:, 20:, :].max() == 0 and heat[:, :, :12].max() == 0
    assert share(heat, (slice(None), slice(0, 16), slice(16, 32))) > 0.8


def test_grad_cam_of_a_clip_model_gives_a_map_per_frame_inside_its_time_span():
    heat = grad_cam(SpanNet().eval(), torch.rand(2, 3, 16, 16, 16), 0, layer="features")
    per_frame = heat.sum(dim=(0, 2, 3))

    assert heat.shape == (2, 16, 16, 16)
    # The model sees frames 8 to 11; its 3x3x3 convolution reaches one frame beyond each end.
    assert per_frame[:7].max() == 0 and per_frame[13:].max() == 0
    assert share(heat, (slice(None), slice(8, 12))) > 0.6


def test_occlusion_of_a_clip_finds_the_frames_the_model_sees():
    heat = occlusion(
        SpanNet().eval(), torch.rand(2, 3, 16, 16, 16), 0, window=(4, 8, 8), stride=(2, 4, 4)
    )

    assert heat.shape == (2, 16, 16, 16)
    rounding = 1e-5 * heat.abs().max()  # as for the quadrant model
    assert heat[:, :6].abs().max() <= rounding and heat[:, 14:].abs().max() <= rounding
    assert share(heat, (slice(None), slice(8, 12))) > 0.6


def test_grad_cam_of_a_trained_detector_peaks_on_the_square_it_found():
    model = trained_square_net()
    pixels, labels, corners = square_images(64, seed=7)
    with torch.no_grad():
        assert (model(pixels).argmax(dim=1) == labels).float().mean() > 0.95

    heat = grad_cam(model, pixels[labels == 1], 1, layer="body")
    peaks = [divmod(int(sample.argmax()), sample.shape[1]) for sample in heat]
    inside = [
        top - 1 <= row <= top + 5 and left - 1 <= column <= left + 5
        for (row, column), (top, left) in zip(peaks, corners[labels == 1].tolist(), strict=True)
    ]
    assert sum(inside) >= 0.9 * len(inside)


def test_randomising_the_weights_changes_the_grad_cam_map():
    """Adebayo et al. 2018: a map that survives losing the learned weights explains nothing."""
    pixels, labels, _ = square_images(32, seed=8)
    squares = pixels[labels == 1]
    torch.manual_seed(123)
    trained = grad_cam(trained_square_net(), squares, 1, layer="body")
    randomised = grad_cam(SquareNet().eval(), squares, 1, layer="body")

    correlation = [rank_correlation(a, b) for a, b in zip(trained, randomised, strict=True)]
    assert sum(correlation) / len(correlation) < 0.5


def rank_correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman's rho of two maps (0 for a constant map, which has no ranking)."""
    ranks = [x.flatten().argsort().argsort().float() for x in (a, b)]
    if a.max() == a.min() or b.max() == b.min():
        return 0.0
    return float(torch.corrcoef(torch.stack(ranks))[0, 1])


def with_cam_layer() -> list:
    """Each architecture with a Grad-CAM layer; two-stream I3D (20 s here) runs as heavy."""
    return [
        pytest.param(a, marks=pytest.mark.heavy) if a.name == "i3d-two-stream" else a
        for a in default_registry().architectures()
        if a.features.cam_layer
    ]


@pytest.mark.parametrize("architecture", with_cam_layer(), ids=lambda a: a.name)
def test_every_architecture_gets_a_map_over_its_inputs_axes_from_its_default_layer(
    architecture,
):
    config, shapes = SMALL[architecture.name]
    torch.manual_seed(0)
    model = zoo.build(architecture, config).eval()
    inputs = tuple(torch.randn(1, *shape) for shape in shapes)

    # Signed: with random weights the class often has no positive evidence, and the layer's
    # gradients reaching the map (not the sign of this initialisation) is what is tested.
    heat = grad_cam(model, inputs if len(inputs) > 1 else inputs[0], positive=False)

    assert heat.shape == (1, *shapes[0][1:])
    assert heat.abs().max() > 0 and torch.isfinite(heat).all()


def test_a_model_with_several_inputs_gets_a_map_over_the_first():
    class TwoInputs(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.quadrant = QuadrantNet()

        def forward(self, image: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
            return self.quadrant(image) + other.mean(dim=(1, 2, 3))[:, None]

    inputs = (torch.rand(2, 3, 32, 32), torch.rand(2, 2, 8, 8))
    heat = grad_cam(TwoInputs().eval(), inputs, 0, layer="quadrant.features")
    first, second = occlusion(TwoInputs().eval(), inputs, 0, window=8, stride=8)

    assert heat.shape == first.shape == (2, 32, 32) and second.shape == (2, 8, 8)
    assert share(heat, (slice(None), slice(0, 16), slice(16, 32))) > 0.9


def test_the_token_grid_lays_patches_out_as_the_patch_embedding_cut_them():
    config, _ = SMALL["vit"]
    model = zoo.build("vit", config)
    image = torch.randn(2, 3, 32, 32)

    tokens = model.patch_embed(image)
    with_class_token = torch.cat([torch.zeros(2, 1, tokens.shape[2]), tokens], dim=1)

    torch.testing.assert_close(TokenGrid(1)(with_class_token), model.patch_embed.proj(image))


def test_a_model_without_hints_must_name_its_layer():
    with pytest.raises(InterpretError, match=r"QuadrantNet declares no Grad-CAM layer.*layer="):
        grad_cam(QuadrantNet(), torch.rand(1, 3, 32, 32))


def test_a_wrong_layer_path_names_the_modules_that_exist():
    with pytest.raises(InterpretError, match=r"no module 'body.9'.*children: 0, 1, 2, 3, 4"):
        grad_cam(SquareNet(), torch.rand(1, 3, 24, 24), layer="body.9")


def test_a_layer_without_spatial_axes_is_refused_clearly():
    with pytest.raises(InterpretError, match=r"needs a layer output with the input's 2 map axes"):
        grad_cam(SquareNet(), torch.rand(1, 3, 24, 24), 0, layer="head")


def test_a_model_that_is_not_a_classifier_is_refused_clearly():
    forecaster = nn.Conv2d(3, 3, 3, padding=1)

    with pytest.raises(InterpretError, match=r"classifier's scores \(N, classes\).*\(1, 3, 8, 8\)"):
        occlusion(forecaster, torch.rand(1, 3, 8, 8), window=4, stride=4)


def test_a_target_past_the_last_class_is_refused_clearly():
    with pytest.raises(InterpretError, match=r"target class 7 is out of range.*2 classes"):
        grad_cam(SquareNet(), torch.rand(1, 3, 24, 24), 7, layer="body")


def test_an_occlusion_window_larger_than_the_input_is_refused_clearly():
    with pytest.raises(InterpretError, match=r"window is larger than the input.*T=20 > 16"):
        occlusion(SpanNet(), torch.rand(1, 3, 16, 16, 16), 0, window=(20, 4, 4), stride=2)
    with pytest.raises(InterpretError, match=r"one positive size per axis THW"):
        occlusion(SpanNet(), torch.rand(1, 3, 16, 16, 16), 0, window=(4, 4), stride=2)
