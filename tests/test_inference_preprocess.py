"""Pre-processing from the card alone: decoding, frame sampling, resize, crop, normalisation.

The reference for each rule is written out in the test itself, step by step, as the
authors or the upstream library do it; the predictor's tensor must equal it.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import EXAMPLE_PLUGIN
from media import SAMPLE_CLIP, numbered_frames, sample_frames, write_image, write_video
from PIL import Image

import zoo
from zoo.cards import Card
from zoo.errors import CardError, InputError
from zoo.inference.decode import as_media, decode_frames, read_media
from zoo.inference.preprocess import Preprocessor
from zoo.inference.transforms import Normalization, gather_rows, plan_geometry

EXAMPLE_CARD = EXAMPLE_PLUGIN / "zoo_example_plugin" / "cards" / "r2plus1d-18-kinetics400.yaml"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def preprocessor(card: Card | str, clips: int | None = None) -> Preprocessor:
    card = card if isinstance(card, Card) else zoo.card(card)
    architecture = zoo.default_registry().architecture(card.architecture)
    return Preprocessor(card, architecture.inference, clips=clips)


def card_with_input(name: str = "i3d-kinetics400-rgb", **changes) -> Card:
    """A built-in card whose first input has ``changes`` (and a new name)."""
    data = zoo.card(name).to_data()
    data["inputs"][0].update(changes)
    data["name"] = f"{data['name']}-changed"
    data["aliases"] = []
    return Card.from_data(data)


def values_seen(pixels: torch.Tensor) -> np.ndarray:
    """The frame numbers in a numbered clip's pixels ``(rows, T, C, H, W)`` (pixel = 2 * n)."""
    return np.rint(pixels[:, :, 0, 0, 0].numpy() * 255 / 2).astype(int)


# --- the authors' preprocessing, step by step -------------------------------------------


def test_the_sample_clip_reaches_i3d_as_the_authors_preprocess_it_step_by_step():
    predictor = zoo.predictor("i3d-kinetics", pretrained=False)

    ours = predictor.preprocess(SAMPLE_CLIP).tensor

    frames = torch.from_numpy(sample_frames()).float()  # Pillow's decoder, values 0..255
    frames = frames.permute(0, 3, 1, 2)  # (T, C, H, W); the clip is already at 25 fps
    assert frames.shape == (79, 3, 224, 224)
    resized = F.interpolate(frames, size=(256, 256), mode="bilinear", align_corners=False)
    cropped = resized[..., 16:240, 16:240]  # the centre 224x224 of 256x256
    scaled = cropped / 255 * 2 - 1  # [0, 255] -> [-1, 1]
    authors = scaled.permute(1, 0, 2, 3)[None]  # (N, C, T, H, W), the whole video as one clip
    assert ours.shape == (1, 3, 79, 224, 224)
    torch.testing.assert_close(ours, authors, atol=2e-6, rtol=0)


def test_pyav_decodes_the_sample_gif_to_the_same_pixels_as_pillow_with_its_frame_times():
    media = read_media(SAMPLE_CLIP)

    assert media.frames is None and media.count == 79  # probed: nothing decoded yet
    assert np.array_equal(media.read(np.arange(79)), sample_frames())
    assert media.fps == 25
    np.testing.assert_allclose(media.times, np.arange(79) / 25)


def test_a_resnext_image_is_resized_cropped_and_normalised_as_torchvision_does():
    from torchvision.transforms import v2

    image = sample_frames()[0, :200]  # a real 200x224 picture, not square
    ours = preprocessor("resnext50_32x4d.tv_in1k")(as_media(image)).tensor

    transform = v2.Compose(
        [
            v2.Resize(256, interpolation=v2.InterpolationMode.BILINEAR, antialias=True),
            v2.CenterCrop(224),
            v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )
    reference = transform(torch.from_numpy(image).permute(2, 0, 1).float() / 255)
    torch.testing.assert_close(ours, reference[None], atol=1e-5, rtol=0)


def test_detr_resizes_the_shorter_side_to_800_with_the_longer_capped_at_1333():
    spec = zoo.card("detr").inputs[0]

    assert plan_geometry(spec, 480, 640, "x").size == (800, 1066)
    assert plan_geometry(spec, 640, 480, "x").size == (1066, 800)
    assert plan_geometry(spec, 300, 1000, "x").size == (400, 1333)  # 800 would make 2666


def test_the_google_vit_resizes_the_whole_image_to_224_without_keeping_its_aspect():
    image = sample_frames()[0, :100]  # 100x224
    pixels = preprocessor("vit-b16-in1k.google")(as_media(image), normalize=False).tensor

    reference = F.interpolate(
        torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255,
        size=(224, 224),
        mode="bilinear",
        antialias=True,
    )
    torch.testing.assert_close(pixels, reference, atol=1e-6, rtol=0)


def test_the_detector_that_normalises_itself_gets_the_image_as_it_is():
    image = sample_frames()[0, :150, :200]

    inputs = preprocessor("fpn-resnet50-coco")(as_media(image)).tensor

    reference = torch.from_numpy(image).permute(2, 0, 1).float() / 255
    torch.testing.assert_close(inputs, reference[None], atol=0, rtol=0)


# --- frame sampling ---------------------------------------------------------------------


def test_a_video_is_decoded_once_keeping_only_the_frames_asked_for(tmp_path):
    video = write_video(tmp_path / "clip.mkv", numbered_frames(30), fps=25)

    frames = read_media(video).read(np.array([20, 3, 3, 29]))

    assert frames.shape == (4, 32, 32, 3)
    assert frames[:, 0, 0, 0].tolist() == [40, 6, 6, 58]


def test_a_video_with_fewer_decodable_frames_than_needed_is_refused_as_damaged(tmp_path):
    video = write_video(tmp_path / "clip.mkv", numbered_frames(30), fps=25)

    with pytest.raises(InputError, match=r"stops after 30 decodable frames.*frame 35 was needed"):
        decode_frames(video, np.array([3, 35]), str(video))


def test_a_50_fps_video_is_resampled_to_the_cards_25_fps(tmp_path):
    video = write_video(tmp_path / "fast.mkv", numbered_frames(40, 224, 224), fps=50)

    prepared = preprocessor("i3d-kinetics")(read_media(video), normalize=False)

    seen = values_seen(prepared.tensor.transpose(1, 2))
    assert seen.tolist() == [list(range(0, 40, 2))]


def test_a_12_fps_video_is_resampled_to_25_fps_by_showing_frames_twice(tmp_path):
    video = write_video(tmp_path / "slow.avi", numbered_frames(10, 224, 224), fps=12)

    prepared = preprocessor("i3d-kinetics")(read_media(video), normalize=False)

    seen = values_seen(prepared.tensor.transpose(1, 2))[0]
    assert len(seen) == 21  # 10 frames at 12 fps last 0.83 s: ticks at 0, 0.04, ... 0.8 s
    assert sorted(set(seen)) == list(range(10)) and list(seen) == sorted(seen)


def test_c3d_classifies_a_video_by_ten_evenly_spaced_clips_as_mmaction2_samples_them():
    prepared = preprocessor("c3d")(as_media(numbered_frames(100, 112, 112)), normalize=False)

    seen = values_seen(prepared.tensor.transpose(1, 2))
    # mmaction2 SampleFrames(clip_len=16, num_clips=10, test_mode=True):
    interval = (100 - 16 + 1) / 10
    starts = (np.arange(10) * interval + interval / 2).astype(int)
    assert prepared.rows == 10
    assert seen.tolist() == (starts[:, None] + np.arange(16)).tolist()
    assert "10 evenly spaced clips of 16 frames" in prepared.note


def test_clips_overrides_the_cards_clip_count():
    prepared = preprocessor("c3d", clips=3)(as_media(numbered_frames(100, 112, 112)))

    assert prepared.rows == 3


def test_a_video_shorter_than_a_c3d_clip_is_looped_as_the_card_says():
    prepared = preprocessor("c3d", clips=1)(as_media(numbered_frames(5, 112, 112)), normalize=False)

    assert values_seen(prepared.tensor.transpose(1, 2)).tolist() == [[0, 1, 2, 3, 4] * 3 + [0]]


def test_padding_repeats_the_last_frame_when_a_card_asks_for_it():
    card = card_with_input(
        "c3d-sports1m", temporal={"protocol": "clips", "clips": 1, "too_short": "pad"}
    )
    prepared = preprocessor(card)(as_media(numbered_frames(5, 112, 112)), normalize=False)

    assert values_seen(prepared.tensor.transpose(1, 2)).tolist() == [[0, 1, 2, 3] + [4] * 12]


def test_a_forecaster_sees_the_last_frames_of_a_video_the_most_recent_last():
    prepared = preprocessor("convlstm-moving-digits")(
        as_media(numbered_frames(25)), normalize=False
    )

    assert values_seen(prepared.tensor).tolist() == [list(range(15, 25))]


def test_a_forecaster_uses_a_shorter_video_whole():
    prepared = preprocessor("convlstm-moving-digits")(as_media(numbered_frames(4)), normalize=False)

    assert values_seen(prepared.tensor).tolist() == [[0, 1, 2, 3]]


def test_a_4_frame_clip_to_i3d_is_refused_naming_the_minimum():
    with pytest.raises(
        InputError, match=r"has 4 frames at 25 fps; i3d-kinetics400-rgb needs at least 9"
    ):
        preprocessor("i3d-kinetics")(as_media(numbered_frames(4, 224, 224)))


# --- channels, value range, layout ----------------------------------------------------------


def test_a_gray_image_given_to_a_colour_model_is_converted_to_three_equal_channels(tmp_path):
    gray = sample_frames()[0, ..., 1]
    path = write_image(tmp_path / "gray.png", gray)
    assert Image.open(path).mode == "L"

    pixels = preprocessor("resnet50.tv_in1k")(read_media(path), normalize=False).tensor

    assert pixels.shape == (1, 3, 224, 224)
    assert torch.equal(pixels[:, 0], pixels[:, 1]) and torch.equal(pixels[:, 1], pixels[:, 2])


def test_a_gray_model_gets_the_luma_of_colour_frames():
    frames = np.zeros((10, 32, 32, 3), np.uint8)
    frames[..., 0] = 200  # pure red: luma 0.299 * 200

    pixels = preprocessor("convlstm-moving-digits")(as_media(frames), normalize=False).tensor

    assert pixels.shape == (1, 10, 1, 32, 32)  # NTCHW
    torch.testing.assert_close(pixels, torch.full_like(pixels, 0.299 * 200 / 255))


def test_a_bgr_model_gets_its_channels_reversed_before_its_mean_and_std():
    card = card_with_input(
        "resnet50.tv_in1k",
        channel_order="BGR",
        mean=[100.0, 110.0, 120.0],
        std=[2.0, 3.0, 4.0],
        value_range=[0, 255],
    )
    image = np.zeros((224, 224, 3), np.uint8)
    image[..., 0], image[..., 2] = 10, 250  # red 10, blue 250

    inputs = preprocessor(card)(as_media(image)).tensor

    blue_first = torch.tensor([(250 - 100) / 2.0, (0 - 110) / 3.0, (10 - 120) / 4.0])
    torch.testing.assert_close(inputs[0, :, 0, 0], blue_first)


def test_normalisation_is_undone_exactly_by_its_inverse():
    spec = zoo.card("vit-b16-in1k").inputs[0]
    pixels = torch.rand(2, 3, 8, 8)
    normalization = Normalization(spec)

    torch.testing.assert_close(normalization.inverse(normalization(pixels)), pixels)
    torch.testing.assert_close(normalization(pixels), (pixels - 0.5) / 0.5)


def test_temporal_sampling_is_refused_on_an_image_layout():
    data = zoo.card("resnet50.tv_in1k").to_data()
    data["inputs"][0]["temporal"] = {"protocol": "whole"}

    with pytest.raises(CardError, match="temporal sampling needs a T axis"):
        Card.from_data(data)


def test_a_minimum_longer_than_the_clip_is_refused():
    data = zoo.card("c3d").to_data()
    data["inputs"][0]["temporal"] = {"protocol": "whole", "min_frames": 17}

    with pytest.raises(CardError, match=r"min_frames \(17\) exceeds the clip length frames \(16\)"):
        Card.from_data(data)


def test_a_third_party_card_without_temporal_sampling_takes_one_centre_clip_looped_if_short():
    data = Card.from_yaml(EXAMPLE_CARD).to_data()
    del data["inputs"][0]["temporal"]  # as a card written before the field existed
    card = Card.from_data(data)

    assert card.inputs[0].temporal is None and card.inputs[0].frames == 16
    prepared = Preprocessor(card, zoo.InferenceHints())(
        as_media(numbered_frames(20)), normalize=False
    )
    assert values_seen(prepared.tensor.transpose(1, 2)).tolist() == [list(range(2, 18))]


@pytest.mark.parametrize(
    "index",
    [[[0, 1, 2, 3, 4]], [[2, 3, 4]], [[0, 2, 4]], [[0, 1, 2], [2, 3, 4]], [[4, 3, 2]], [0, 3]],
    ids=["whole", "run", "strided", "two-clips", "reversed", "frames"],
)
def test_gathered_rows_are_the_indexed_frames_and_a_view_only_for_one_run(index):
    frames = torch.arange(5 * 2.0).view(5, 2)
    rows = torch.tensor(index)

    gathered = gather_rows(frames, rows)

    torch.testing.assert_close(gathered, frames[rows], atol=0, rtol=0)
    one_run = rows.dim() == 2 and len(rows) == 1 and bool((rows[0].diff() == 1).all())
    shares = gathered.untyped_storage().data_ptr() == frames.untyped_storage().data_ptr()
    assert shares == one_run
