"""A whole video too long to run at once gives the whole-video answer, run in windows.

I3D's structure (kernels, strides, TF "SAME" padding, pools) decides which frames each
per-time logit sees, not its widths: the network is built here with a few channels per
layer so that a video longer than a window runs whole in seconds, and the windowed
logits are compared with the whole-video logits of the same network.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from media import write_video

import zoo
from zoo.architecture import TimeReduction
from zoo.errors import InputError, ZooError
from zoo.inference import sampling
from zoo.inference.decode import read_media
from zoo.inference.longvideo import LongVideo, run_in_windows, too_long
from zoo.small import small_card
from zoo_plugins.i3d import model as i3d

#: 180 frames at 25 fps: 22 per-time logits, run in two windows of at most 160 frames.
FRAMES, WINDOW = 180, 160


@pytest.fixture(scope="module")
def narrow_i3d():
    """A predictor of I3D with 2 to 8 channels per layer (same kernels, strides, pads)."""
    saved = i3d.STEM_CHANNELS, dict(i3d.INCEPTION_CHANNELS)
    i3d.STEM_CHANNELS = (4, 4, 8)
    i3d.INCEPTION_CHANNELS.update({name: (2,) * 6 for name in i3d.INCEPTION_CHANNELS})
    try:
        predictor = zoo.predictor(
            small_card("i3d-kinetics400-rgb"), pretrained=False, backend="torch"
        )
        keep_signal(predictor.model)
        yield predictor
    finally:
        i3d.STEM_CHANNELS = saved[0]
        i3d.INCEPTION_CHANNELS.update(saved[1])


def keep_signal(model: torch.nn.Module) -> None:
    """He-initialised convolutions and no classifier bias: PyTorch's default init shrinks a
    narrow network's activations to nothing by Mixed_5c, and a logit that is only its bias
    would match anything."""
    torch.manual_seed(0)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.Conv3d):
                torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
        model.logits.conv3d.bias.zero_()


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    frames = np.random.default_rng(0).integers(0, 256, (FRAMES, 36, 48, 3), dtype=np.uint8)
    return write_video(tmp_path_factory.mktemp("long") / "long.mkv", frames, fps=25)


@pytest.fixture(scope="module")
def whole(narrow_i3d, video) -> torch.Tensor:
    """The network's logits for the whole video run as one clip."""
    with torch.no_grad():
        return narrow_i3d.model(narrow_i3d.preprocessor(read_media(video)).tensor)


def windowed(predictor, video, hints: TimeReduction):
    long = too_long(predictor.preprocessor, read_media(video), WINDOW)
    return run_in_windows(long, predictor.preprocessor, predictor.backend, hints, WINDOW)


def test_i3d_run_in_windows_gives_the_whole_video_logits(narrow_i3d, video, whole):
    hints = narrow_i3d.architecture.inference.time_reduction

    logits, summary = windowed(narrow_i3d, video, hints)

    # Every kept logit sees the frames and padding it sees in the whole video; only the
    # order of float additions differs (a convolution over 156 frames blocks its sums
    # differently from one over 180), hence a float32 rounding tolerance.
    torch.testing.assert_close(logits, whole, rtol=1e-5, atol=1e-5 * whole.abs().max().item())
    assert "run in 2 overlapping windows of at most 160 frames" in summary.note
    assert "mean of 22 steps" in summary.note


def test_too_little_context_would_not_give_the_whole_video_logits(narrow_i3d, video, whole):
    hints = narrow_i3d.architecture.inference.time_reduction
    short_sighted = hints.model_copy(update={"context": 0})

    logits, _ = windowed(narrow_i3d, video, short_sighted)

    assert (logits - whole).abs().max() > 1e-3 * whole.abs().max()


def test_predict_on_a_long_video_answers_as_on_the_whole_video(narrow_i3d, video, whole):
    narrow_i3d.max_frames = WINDOW

    result = narrow_i3d(str(video), topk=5)

    top = whole[0].softmax(-1).topk(5)
    assert [label.index for label in result.labels] == top.indices.tolist()
    np.testing.assert_allclose([label.score for label in result.labels], top.values, rtol=1e-5)
    assert "overlapping windows" in result.note and result.clips == 1


def test_windows_tile_every_output_step_once_and_align_with_the_video():
    for count in (200, 203, 1000, 1001, 5000):
        for limit in (136, 256, 512):
            plan = sampling.plan_time_windows(count, 8, 56, limit)
            steps = []
            for window in plan:
                length = window.stop - window.start
                assert window.start % 8 == 0 and length <= limit
                assert (length - count) % 8 == 0
                local = -(-length // 8) - 1  # I3D's per-time logits of a clip: ceil(T/8) - 1
                stop = local if window.last is None else window.last
                steps += range(window.start // 8 + window.first, window.start // 8 + stop)
            assert steps == list(range(-(-count // 8) - 1))


def test_windows_too_short_for_the_context_are_refused():
    with pytest.raises(ZooError, match=r"windows of 100 frames are too short.*at least 135"):
        sampling.plan_time_windows(1000, 8, 56, 100)


def test_a_long_video_of_a_model_that_declares_no_time_reduction_is_refused(narrow_i3d, video):
    long = LongVideo(read_media(video), np.arange(FRAMES))

    with pytest.raises(InputError, match=r"180 frames.*declares no InferenceHints.time_reduction"):
        run_in_windows(long, narrow_i3d.preprocessor, narrow_i3d.backend, None, WINDOW)
