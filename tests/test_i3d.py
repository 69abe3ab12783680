"""I3D and two-stream I3D: parity with the authors' PyTorch port, shapes, counts, cards, flow.

The reference is the port (piergiaj/pytorch-i3d) as shipped in ``cd-fvd``
(``cdfvd.third_party.i3d.pytorch_i3d.InceptionI3d``). That copy sets BatchNorm eps
to 1e-5; the authors' (and the zoo's) is 1e-3, so the reference's eps is set back
before comparing. Like the authors' graph, it averages the per-time logits.

Parity measure everywhere: ``(a - b).abs().max() / b.abs().max()`` in float32, eval mode.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from cdfvd.third_party.i3d import pytorch_i3d as port
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image, ImageSequence
from pydantic import ValidationError
from safetensors.torch import save_file
from torch import Tensor, nn

import zoo
from zoo.errors import WeightsError
from zoo.loading import count_parameters, empty_model
from zoo_plugins.i3d import I3DConfig, TwoStreamI3DConfig
from zoo_plugins.i3d.convert import from_authors, inflate_conv_weight, stream_from_authors
from zoo_plugins.i3d.flow import tvl1_flow
from zoo_plugins.i3d.model import (
    I3D,
    InceptionBlock,
    MaxPool3dSame,
    SamePad3d,
    Unit3D,
    same_padding,
)

TOLERANCE = 1e-5
DATA = Path(__file__).parent / "data"
RGB_CLIP = DATA / "v_CricketShot_g04_c01_rgb.gif"
FLOW_CLIP = DATA / "v_CricketShot_g04_c01_flow.gif"
# The smallest clip the network takes (9 frames, 193x193) keeps full-network parity fast.
SMALL_CLIP = (9, 193, 193)
SMALL = {"frames": 9, "size": (193, 193)}

# Parameter counts with 400 classes. The paper (Table 1) gives 12M for one I3D stream
# and 25M for two-stream I3D. The port's BatchNorm is affine (its checkpoints fill the
# scale with the authors' implicit ones), so the port and the zoo count 7,280 BatchNorm
# scales per stream that the authors' TF graph does not have (12,689,984 for RGB there).
RGB_PARAMETERS = 12_697_264
FLOW_PARAMETERS = 12_675_312
TWO_STREAM_PARAMETERS = 25_372_576
BATCHNORM_SCALES = 7_280


def relative_difference(ours: Tensor, theirs: Tensor) -> float:
    return ((ours - theirs).abs().max() / theirs.abs().max()).item()


def randomise_batchnorm(module: nn.Module, seed: int) -> None:
    """Random BatchNorm statistics and affine terms (so a wrong eps or key would show)."""
    generator = torch.Generator().manual_seed(seed)
    for bn in module.modules():
        if isinstance(bn, nn.BatchNorm3d):
            bn.eps = 1e-3
            size = bn.num_features
            bn.running_mean.copy_(torch.randn(size, generator=generator) * 0.2)
            bn.running_var.copy_(torch.rand(size, generator=generator) + 0.5)
            bn.weight.data.copy_(torch.rand(size, generator=generator) + 0.5)
            bn.bias.data.copy_(torch.randn(size, generator=generator) * 0.2)


def reference(in_channels: int, num_classes: int = 400, seed: int = 0) -> nn.Module:
    """The port's network with random weights and BatchNorm statistics, eps fixed to 1e-3."""
    torch.manual_seed(seed)
    model = port.InceptionI3d(num_classes=num_classes, in_channels=in_channels)
    randomise_batchnorm(model, seed)
    return model.eval()


def save_state(state: dict[str, Tensor], path: Path) -> Path:
    save_file({key: tensor.contiguous() for key, tensor in state.items()}, path)
    return path


def read_gif(path: Path) -> np.ndarray:
    """All frames of a GIF as uint8 RGB (T, H, W, 3)."""
    with Image.open(path) as image:
        return np.stack(
            [np.asarray(frame.convert("RGB")) for frame in ImageSequence.all_frames(image)]
        )


def as_clip(frames: np.ndarray) -> Tensor:
    """uint8 (T, H, W, 3) -> a (1, 3, T, H, W) clip in [-1, 1], as the authors scale RGB."""
    video = torch.from_numpy(frames).permute(3, 0, 1, 2).float() / 127.5 - 1.0
    return video.unsqueeze(0)


@pytest.fixture(scope="module")
def rgb_reference() -> nn.Module:
    return reference(in_channels=3, seed=0)


@pytest.fixture(scope="module")
def flow_reference() -> nn.Module:
    return reference(in_channels=2, seed=1)


@pytest.fixture(scope="module")
def small_rgb() -> Tensor:
    return torch.randn(1, 3, *SMALL_CLIP, generator=torch.Generator().manual_seed(2))


@pytest.fixture(scope="module")
def small_rgb_logits(rgb_reference, small_rgb) -> Tensor:
    """The reference's logits on the small clip, computed once for the tests that need them."""
    with torch.no_grad():
        return rgb_reference(small_rgb)


# --- TF "SAME" padding ---------------------------------------------------------------


@given(
    length=st.integers(1, 40),
    kernel=st.integers(1, 7),
    stride=st.integers(1, 3),
)
def test_same_padding_follows_tensorflows_rule(length, kernel, stride):
    """TF: out = ceil(n / s), total = max((out - 1) * s + k - n, 0), the smaller half first."""
    out = math.ceil(length / stride)
    total = max((out - 1) * stride + kernel - length, 0)

    pads = same_padding((length, 1, 1), (kernel, 1, 1), (stride, 1, 1))

    assert pads[4:] == (total // 2, total - total // 2)
    assert pads[:4] == (0, 0, 0, 0)


@pytest.mark.parametrize(
    "size",
    [(8, 16, 16), (9, 17, 15), (10, 18, 14)],
    ids=["configured", "other-odd-sizes", "other-even-sizes"],
)
def test_a_strided_unit_matches_the_ports_at_its_configured_size_and_at_others(size):
    """The stem (7x7x7, stride 2): static pads for (8, 16, 16), worked out for other sizes.
    An even size needs an odd total padding (5: 2 in front, 3 behind), an odd one an even."""
    torch.manual_seed(0)
    theirs = port.Unit3D(3, 8, kernel_shape=[7, 7, 7], stride=(2, 2, 2), name="stem")
    randomise_batchnorm(theirs, seed=0)
    ours = Unit3D(3, 8, (7, 7, 7), (2, 2, 2), input_size=(8, 16, 16))
    ours.load_state_dict(theirs.state_dict())
    video = torch.randn(2, 3, *size)

    with torch.no_grad():
        assert relative_difference(ours.eval()(video), theirs.eval()(video)) <= TOLERANCE


@pytest.mark.parametrize("size", [8, 6], ids=["configured", "other"])
def test_same_max_pooling_puts_the_odd_padding_row_at_the_end(size):
    """TF's SAME 3-wide, stride-2 max pool of 0, 1, ..., 7 pads one -inf at the end and gives
    [2, 4, 6, 7] (of 0..5: [2, 4, 5]); one in front would give [1, 3, 5, 7]. The clip grows
    along T, H and W at once, so each axis's windows show in the result."""
    pool = MaxPool3dSame((3, 3, 3), (2, 2, 2), input_size=(8, 8, 8))
    axis = torch.arange(size, dtype=torch.float32)
    clip = 10_000 * axis[:, None, None] + 100 * axis[None, :, None] + axis[None, None, :]
    maxima = torch.tensor([2.0, 4.0, 6.0, 7.0] if size == 8 else [2.0, 4.0, 5.0])
    expected = 10_000 * maxima[:, None, None] + 100 * maxima[None, :, None] + maxima

    pooled = pool(clip[None, None])

    torch.testing.assert_close(pooled[0, 0], expected, rtol=0, atol=0)


@pytest.mark.parametrize("frames", [1, 2, 5, 8, 9, 12])
@pytest.mark.parametrize(
    "layer",
    [
        Unit3D(3, 4, (7, 7, 7), (2, 2, 2), input_size=(8, 16, 16)),
        MaxPool3dSame((3, 3, 3), (2, 2, 2), input_size=(8, 16, 16)),
        MaxPool3dSame((2, 2, 2), (2, 2, 2), input_size=(8, 16, 16)),
    ],
    ids=["conv-7x7x7", "pool-3x3x3", "pool-2x2x2"],
)
def test_the_constant_pads_of_a_symbolic_clip_length_give_tensorflows_windows(
    layer, frames, monkeypatch
):
    """While exporting with a dynamic clip length the time pads are constants (the clip and
    kernel reversed where needed); at every length and parity that is TF's "SAME" layer."""
    torch.manual_seed(frames)
    layer = layer.eval()
    video = torch.randn(2, 3, frames, 16, 15)
    with torch.no_grad():
        expected = layer(video)
        monkeypatch.setattr(SamePad3d, "reverses_time", lambda self, x: self.stride[0] != 1)
        found = layer(video)

    assert found.shape == expected.shape
    assert relative_difference(found, expected) <= TOLERANCE


def test_an_inception_block_matches_the_ports():
    torch.manual_seed(0)
    channels = [4, 5, 6, 3, 7, 2]
    theirs = port.InceptionModule(8, channels, name="Mixed")
    randomise_batchnorm(theirs, seed=0)
    ours = InceptionBlock(8, tuple(channels))
    ours.load_state_dict(theirs.state_dict())
    features = torch.relu(torch.randn(2, 8, 5, 9, 8))

    with torch.no_grad():
        ours_out, theirs_out = ours.eval()(features), theirs.eval()(features)

    assert ours_out.shape == (2, 4 + 6 + 7 + 2, 5, 9, 8)
    assert relative_difference(ours_out, theirs_out) <= TOLERANCE


# --- The whole network against the port ----------------------------------------------


def test_i3d_loads_the_ports_layout_and_matches_its_logits(
    rgb_reference, small_rgb, small_rgb_logits, tmp_path
):
    weights = save_state(rgb_reference.state_dict(), tmp_path / "rgb.safetensors")
    model = zoo.build("i3d", SMALL, weights=weights, layout="authors").eval()

    with torch.no_grad():
        ours = model(small_rgb)

    assert ours.shape == (1, 400)
    assert small_rgb_logits.abs().max() > 0
    assert relative_difference(ours, small_rgb_logits) <= TOLERANCE


def test_two_stream_logits_are_the_sum_of_the_ports_streams(
    rgb_reference, flow_reference, small_rgb, small_rgb_logits, tmp_path
):
    """Each stream loads its own port checkpoint; the flow clip may be longer (10 fields)."""
    config = TwoStreamI3DConfig(**SMALL)
    parts = {"rgb.": rgb_reference.state_dict(), "flow.": flow_reference.state_dict()}
    combined = {
        prefix + key: tensor
        for prefix, state in parts.items()
        for key, tensor in stream_from_authors(state, config).items()
    }
    weights = save_state(combined, tmp_path / "two-stream.safetensors")
    model = zoo.build("i3d-two-stream", config, weights=weights).eval()
    flow = torch.randn(1, 2, 10, *SMALL_CLIP[1:])

    with torch.no_grad():
        summed = model(small_rgb, flow)
        expected = small_rgb_logits + flow_reference(flow)

    assert summed.shape == (1, 400)
    assert relative_difference(summed, expected) <= TOLERANCE


def test_two_stream_converts_both_streams_from_one_prefixed_port_file(
    rgb_reference, flow_reference
):
    config = TwoStreamI3DConfig()
    both = {f"rgb.{k}": v for k, v in rgb_reference.state_dict().items()}
    both |= {f"flow.{k}": v for k, v in flow_reference.state_dict().items()}

    converted = stream_from_authors(both, config)

    expected = empty_model(zoo.default_registry().architecture("i3d-two-stream"), config)
    assert converted.keys() == expected.state_dict().keys()
    assert converted["flow.Conv3d_1a_7x7.conv3d.weight"].shape[1] == 2


def test_the_two_stream_cards_weight_parts_load_the_ports_pickles(
    rgb_reference, flow_reference, tmp_path, monkeypatch
):
    """The card's parts as the loader reads them: each port pickle (here bundled in a package
    instead of downloaded) unpickled safely, converted, and put under its prefix."""
    package = tmp_path / "i3d_port_files"
    package.mkdir()
    (package / "__init__.py").write_text("")
    torch.save(rgb_reference.state_dict(), package / "rgb_imagenet.pt")
    torch.save(flow_reference.state_dict(), package / "flow_imagenet.pt")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "cache"))
    card = zoo.card("i3d-kinetics400-two-stream")
    parts = [
        part.model_copy(update={"url": None, "bundled": f"i3d_port_files:{stream}_imagenet.pt"})
        for part, stream in zip(card.weights, ("rgb", "flow"), strict=True)
    ]

    loaded = zoo.load(card.model_copy(update={"weights": parts})).state_dict()

    for prefix, stream in (("rgb.", rgb_reference), ("flow.", flow_reference)):
        for key, tensor in stream.state_dict().items():
            assert torch.equal(loaded[prefix + key], tensor), prefix + key


@pytest.mark.heavy
@pytest.mark.parametrize("in_channels", [3, 2], ids=["rgb", "flow"])
def test_i3d_matches_the_port_on_a_full_size_clip(in_channels, tmp_path):
    theirs = reference(in_channels)
    weights = save_state(theirs.state_dict(), tmp_path / "stream.safetensors")
    model = zoo.build("i3d", {"in_channels": in_channels}, weights=weights, layout="authors")
    video = torch.randn(1, in_channels, 16, 224, 224)

    with torch.no_grad():
        assert relative_difference(model.eval()(video), theirs(video)) <= TOLERANCE


# --- The authors' sample clip --------------------------------------------------------


def test_a_crop_of_the_sample_clip_gives_the_ports_logits_through_the_card(rgb_reference, tmp_path):
    """Real frames, not noise, through the card's model (pads fixed for 64x224x224): the
    authors' clip cropped to 10x194x194, a size whose even sides need odd paddings that the
    strided layers must work out themselves."""
    frames = read_gif(RGB_CLIP)
    spec = zoo.card("i3d-kinetics").input()
    assert frames.shape == (79, *spec.size, spec.channels)
    clip = as_clip(frames)[:, :, :10, 15:209, 15:209]
    assert clip.min() < -0.9 and clip.max() > 0.9  # real contrast, scaled to [-1, 1]
    weights = save_state(rgb_reference.state_dict(), tmp_path / "rgb.safetensors")
    model = zoo.load("i3d-kinetics", weights=weights, layout="authors")

    with torch.no_grad():
        ours, theirs = model(clip), rgb_reference(clip)

    assert relative_difference(ours, theirs) <= TOLERANCE


@pytest.mark.heavy
def test_the_sample_clip_runs_end_to_end_and_matches_the_port(rgb_reference, tmp_path):
    """All 79 frames through the card's model (pads fixed for 64 frames, so 79 is worked out)."""
    weights = save_state(rgb_reference.state_dict(), tmp_path / "rgb.safetensors")
    model = zoo.load("i3d-kinetics", weights=weights, layout="authors")
    clip = as_clip(read_gif(RGB_CLIP))

    with torch.no_grad():
        features = model.features(clip)
        ours, theirs = model.classify(features), rgb_reference(clip)

    assert features.shape == (1, 1024, 10, 7, 7)
    assert ours.shape == (1, 400)
    assert torch.isfinite(ours).all()
    assert relative_difference(ours, theirs) <= TOLERANCE


# --- Shapes, parameter counts, cards ------------------------------------------------


@pytest.mark.parametrize(("frames", "time_steps"), [(64, 8), (79, 10), (9, 2), (16, 2)])
def test_features_keep_ceil_t_over_8_time_steps_and_logits_are_per_clip(frames, time_steps):
    with torch.device("meta"):
        model = I3D(I3DConfig(num_classes=7))
        video = torch.empty(3, 3, frames, 224, 224)
        features = model.features(video)
        logits = model(video)

    assert features.shape == (3, 1024, time_steps, 7, 7)
    assert logits.shape == (3, 7)


def batchnorm_scales(model: nn.Module) -> int:
    return sum(m.num_features for m in model.modules() if isinstance(m, nn.BatchNorm3d))


@pytest.mark.parametrize(
    ("name", "parameters", "port_streams", "papers_millions"),
    [
        ("i3d-kinetics400-rgb", RGB_PARAMETERS, [3], 12),
        ("i3d-kinetics400-flow", FLOW_PARAMETERS, [2], 12),
        ("i3d-kinetics400-two-stream", TWO_STREAM_PARAMETERS, [3, 2], 25),
    ],
    ids=["rgb", "flow", "two-stream"],
)
def test_a_cards_model_counts_as_the_card_the_port_and_the_papers_table_1(
    name, parameters, port_streams, papers_millions
):
    """Table 1 gives whole millions (12M a stream, 25M for two) counted as the authors' graph
    does, without the BatchNorm scales the port and the zoo carry (7,280 a stream)."""
    card = zoo.card(name)
    model = empty_model(zoo.default_registry().architecture(card.architecture), card.config)
    with torch.device("meta"):
        streams = [port.InceptionI3d(num_classes=400, in_channels=c) for c in port_streams]
    count = count_parameters(model)

    assert count == parameters == card.parameters
    assert count == sum(count_parameters(stream) for stream in streams)
    assert batchnorm_scales(model) == BATCHNORM_SCALES * len(port_streams)
    assert (count - batchnorm_scales(model)) // 1_000_000 == papers_millions


def test_the_cards_describe_the_authors_inputs():
    rgb, flow = zoo.card("i3d-kinetics"), zoo.card("i3d-kinetics400-flow")
    two_stream = zoo.card("i3d-kinetics400-two-stream")

    assert rgb.name == "i3d-kinetics400-rgb"
    assert [spec.name for spec in two_stream.inputs] == ["rgb", "flow"]
    assert [part.prefix for part in two_stream.weights] == ["rgb.", "flow."]
    for spec in (rgb.input(), flow.input(), *two_stream.inputs):
        assert (spec.fps, spec.size, spec.value_range) == (25, (224, 224), (-1.0, 1.0))
    assert (rgb.input().channels, flow.input().channels) == (3, 2)
    assert len(rgb.label_names()) == 400


def test_a_card_model_maps_its_example_input_to_its_output_shape():
    card = zoo.card("i3d-kinetics400-two-stream")
    with torch.device("meta"):
        model = empty_model(zoo.default_registry().architecture(card.architecture), card.config)
        output = model(*(torch.empty(spec.example_shape(batch=2)) for spec in card.inputs))

    assert output.shape == (2, *card.outputs[0].shape)


# --- Errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((1, 2, 16, 224, 224), r"\(N, 3, T, H, W\) clip, found shape \(1, 2, 16, 224, 224\)"),
        ((3, 16, 224, 224), r"found shape \(3, 16, 224, 224\)"),
        ((1, 3, 8, 224, 224), "at least 9 frames .* found T=8"),
        ((1, 3, 16, 256, 256), r"\[193, 224\], found T=16, H=256, W=256"),
    ],
)
def test_a_clip_the_network_cannot_take_is_refused_clearly(shape, message):
    with torch.device("meta"):
        model = I3D(I3DConfig())
        with pytest.raises(ValueError, match=message):
            model(torch.empty(shape))


def test_a_config_with_a_size_the_network_cannot_take_is_refused():
    with pytest.raises(ValidationError, match=r"\[193, 224\].*\(256, 256\)"):
        I3DConfig(size=(256, 256))


def test_a_flow_checkpoint_for_an_rgb_model_is_named_as_such(flow_reference):
    with pytest.raises(WeightsError, match="takes 2 input channels, the model 3"):
        from_authors(flow_reference.state_dict(), I3DConfig())


def test_a_checkpoint_with_other_classes_is_named_as_such():
    state = {"logits.conv3d.weight": torch.zeros(101, 1024, 1, 1, 1)}

    with pytest.raises(WeightsError, match="101 classes, the config num_classes=400"):
        from_authors(state, I3DConfig())


def test_a_checkpoint_missing_a_key_is_reported_by_the_loader(rgb_reference, tmp_path):
    state = dict(rgb_reference.state_dict())
    del state["Mixed_4f.b1b.bn.running_mean"]
    weights = save_state(state, tmp_path / "broken.safetensors")

    with pytest.raises(WeightsError, match=r"missing keys \[Mixed_4f\.b1b\.bn\.running_mean\]"):
        zoo.build("i3d", weights=weights, layout="authors")


def test_a_two_stream_file_without_either_layout_is_refused():
    with pytest.raises(WeightsError, match=r"no key starting with 'rgb\.'"):
        stream_from_authors({"Mixed_3b.b0.conv3d.weight": torch.zeros(1)}, TwoStreamI3DConfig())


def test_old_and_data_parallel_port_files_convert(rgb_reference):
    """Files from before PyTorch 0.4.1 lack num_batches_tracked; DataParallel adds 'module.'."""
    state = {
        f"module.{key}": tensor
        for key, tensor in rgb_reference.state_dict().items()
        if not key.endswith("num_batches_tracked")
    }

    converted = from_authors(state, I3DConfig())

    assert converted.keys() == rgb_reference.state_dict().keys()
    assert converted["Mixed_4f.b1b.bn.num_batches_tracked"] == 0


# --- Inflation -----------------------------------------------------------------------


def test_an_inflated_kernel_answers_a_boring_video_as_the_2d_kernel_answers_its_image():
    """The paper's argument: a video repeating one image gives the 2D response."""
    torch.manual_seed(0)
    kernel_2d, image = torch.randn(4, 3, 3, 3), torch.randn(1, 3, 10, 12)
    kernel_3d = inflate_conv_weight(kernel_2d, frames=5)
    boring = image.unsqueeze(2).repeat(1, 1, 5, 1, 1)

    response = F.conv3d(boring, kernel_3d)

    assert kernel_3d.shape == (4, 3, 5, 3, 3)
    assert torch.allclose(response[:, :, 0], F.conv2d(image, kernel_2d), atol=1e-5)


def test_inflation_refuses_what_is_not_a_2d_kernel():
    with pytest.raises(ValueError, match=r"\(out, in, kh, kw\), found \(4, 3, 3\)"):
        inflate_conv_weight(torch.zeros(4, 3, 3), frames=3)


# --- Optical flow --------------------------------------------------------------------


def test_flow_of_a_shifted_texture_points_the_way_it_moved():
    """A texture moved 3 pixels right: x flow 3 / 20 = 0.15, y flow 0, T frames give T - 1."""
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (72, 72), dtype=np.uint8)
    smooth = np.asarray(Image.fromarray(texture).resize((288, 288), Image.BILINEAR))
    frames = np.stack([smooth[100:164, 100 - 3 * t : 164 - 3 * t] for t in range(3)])
    frames = np.repeat(frames[..., None], 3, axis=-1)

    flow = tvl1_flow(frames)

    assert flow.shape == (2, 2, 64, 64)
    assert flow.dtype == np.float32
    centre = flow[:, :, 16:48, 16:48]
    assert np.median(centre[0]) == pytest.approx(0.15, abs=0.02)
    assert np.median(centre[1]) == pytest.approx(0.0, abs=0.02)


def test_flow_of_the_sample_clip_follows_the_authors_flow():
    """Four frames of a 96x96 crop; the authors' GIF stores flow + 0.5 as 0..255."""
    crop = np.s_[10:14, 64:160, 64:160]
    ours = tvl1_flow(read_gif(RGB_CLIP)[crop])
    authors = read_gif(FLOW_CLIP)[crop][:3, ..., :2].astype(np.float32) / 255 - 0.5

    assert ours.shape == (2, 3, 96, 96)
    assert ours.min() >= -1.0 and ours.max() <= 1.0
    for channel in range(2):
        correlation = np.corrcoef(ours[channel].ravel(), authors[..., channel].ravel())[0, 1]
        assert correlation > 0.7


def test_flow_refuses_frames_that_are_not_uint8_rgb():
    with pytest.raises(ValueError, match=r"uint8 RGB frames \(T, H, W, 3\), found float64"):
        tvl1_flow(np.zeros((3, 8, 8, 3)))
    with pytest.raises(ValueError, match="at least 2 frames, found 1"):
        tvl1_flow(np.zeros((1, 8, 8, 3), dtype=np.uint8))
