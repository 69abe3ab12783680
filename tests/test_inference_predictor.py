"""The predictor end to end: real inputs through every task, batching, devices and dtypes.

Random weights are enough to prove the plumbing: each test checks the predictor's result
against the model's own forward on an input prepared step by step, so a wrong resize,
a lost clip, a box in the wrong frame of reference or a batch split wrongly would show.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from inference_cards import small_card
from media import SAMPLE_CLIP, numbered_frames, sample_frames, write_image

import zoo
from zoo.errors import InputError, ZooError
from zoo.inference import Classification, Detections, Features, Forecast
from zoo.inference.factory import choose_backend
from zoo.inference.preprocess import Prepared
from zoo_plugins.detr.postprocess import postprocess as detr_postprocess

IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)


@pytest.fixture(autouse=True)
def seeded():
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def picture() -> np.ndarray:
    """A real photograph-like frame, 200 x 224 (not square), uint8 RGB."""
    return sample_frames()[0, :200].copy()


def probabilities(model, inputs: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return model(inputs).softmax(-1).mean(0)


def test_an_image_through_resnext_matches_its_forward_on_the_steps_written_out(picture):
    predictor = zoo.predictor(small_card("resnext50_32x4d.tv_in1k"), pretrained=False)

    result = predictor(picture, topk=3)

    pixels = torch.from_numpy(picture).permute(2, 0, 1).float()[None] / 255
    resized = F.interpolate(pixels, size=(256, 286), mode="bilinear", antialias=True)
    cropped = resized[..., 16:240, 31:255]  # the centre 224 x 224
    expected = probabilities(predictor.model, (cropped - IMAGENET_MEAN) / IMAGENET_STD)
    scores, indices = expected.topk(3)
    assert isinstance(result, Classification)
    assert [label.index for label in result.labels] == indices.tolist()
    np.testing.assert_allclose([label.score for label in result.labels], scores, rtol=1e-4)
    assert result.labels[0].label == zoo.card("resnext50_32x4d").label_names()[indices[0]]


def test_an_image_through_vit_matches_its_forward_on_the_steps_written_out(picture):
    predictor = zoo.predictor(small_card("vit-b16-in1k"), pretrained=False)

    result = predictor(picture, topk=5)

    pixels = torch.from_numpy(picture).permute(2, 0, 1).float()[None] / 255
    resized = F.interpolate(pixels, size=(36, 40), mode="bicubic", antialias=True).clamp(0, 1)
    cropped = resized[..., 2:34, 4:36]  # bicubic, shorter side 36, centre 32 x 32
    expected = probabilities(predictor.model, (cropped - 0.5) / 0.5)
    assert [label.index for label in result.labels] == expected.topk(5).indices.tolist()


def test_detr_boxes_come_back_in_pixels_of_the_original_image(picture):
    predictor = zoo.predictor(small_card("detr-resnet50-coco"), pretrained=False)

    result = predictor(picture, threshold=0.0)

    pixels = torch.from_numpy(picture).permute(2, 0, 1).float()[None] / 255
    resized = F.interpolate(pixels, size=(160, 179), mode="bilinear", antialias=True)
    with torch.inference_mode():
        outputs = predictor.model((resized - IMAGENET_MEAN) / IMAGENET_STD)
    # relative (cx, cy, w, h) boxes scale straight to the original 200 x 224 image
    expected = detr_postprocess(outputs, [(200, 224)], threshold=0.0)[0]
    order = expected["scores"].argsort(descending=True)
    assert isinstance(result, Detections) and result.image_size == (200, 224)
    assert len(result.detections) == 10
    inside = torch.minimum(expected["boxes"][order].clamp(min=0), torch.tensor([224, 200] * 2))
    np.testing.assert_allclose(result.boxes, inside, atol=1e-3)
    np.testing.assert_allclose(result.scores, expected["scores"][order], rtol=1e-5)
    assert result.label_names[0] == zoo.card("detr").label_names()[result.labels[0]]


def test_faster_rcnn_gets_the_image_as_it_is_and_its_boxes_stay_in_its_pixels(picture):
    predictor = zoo.predictor(small_card("fpn-resnet50-coco"), pretrained=False)

    result = predictor(picture, threshold=0.0)

    with torch.inference_mode():
        (expected,) = predictor.model(torch.from_numpy(picture).permute(2, 0, 1)[None] / 255)
    order = expected["scores"].argsort(descending=True, stable=True)
    assert len(result.detections) == len(expected["scores"]) > 0
    np.testing.assert_allclose(result.boxes, expected["boxes"][order], atol=1e-4)
    assert result.labels == expected["labels"][order].tolist()


def test_the_score_threshold_drops_weaker_detections(picture):
    predictor = zoo.predictor(small_card("fpn-resnet50-coco"), pretrained=False)

    every = predictor(picture, threshold=0.0)
    threshold = float(np.median(every.scores))
    kept = predictor(picture, threshold=threshold)

    assert kept.scores == [score for score in every.scores if score > threshold]


def test_a_video_classifier_averages_the_softmax_of_its_clips():
    predictor = zoo.predictor(small_card("c3d-sports1m"), pretrained=False, clips=3)
    frames = np.random.default_rng(0).integers(0, 256, (60, 112, 112, 3), dtype=np.uint8)

    result = predictor(frames, topk=4)

    prepared = predictor.preprocess(frames)
    per_clip = predictor.model(prepared.tensor).softmax(-1).detach()
    expected = per_clip.mean(0)
    assert prepared.rows == result.clips == 3
    assert [label.index for label in result.labels] == expected.topk(4).indices.tolist()
    np.testing.assert_allclose(result.labels[0].score, expected.max(), rtol=1e-5)
    assert not torch.allclose(per_clip[0], per_clip[1])  # the clips differ; the mean matters


def test_an_image_classifier_on_a_video_averages_its_frames_and_says_so():
    card = small_card("resnext50_32x4d.tv_in1k")
    predictor = zoo.predictor(card, pretrained=False, clips=8)

    result = predictor(SAMPLE_CLIP)

    frames = predictor.preprocess(SAMPLE_CLIP)
    expected = probabilities(predictor.model, frames.tensor)
    assert result.framewise and result.clips == frames.rows == 8
    assert "frame-wise" in result.note and "averaged over time" in result.note
    np.testing.assert_allclose(result.labels[0].score, expected.max(), rtol=1e-5)


def test_the_moving_digits_forecast_beats_persistence_with_the_shipped_weights():
    from zoo_plugins.convlstm.data import moving_digits

    clips = moving_digits(4, 20, "held-out", seed=7)
    predictor = zoo.predictor("convlstm-moving-digits", backend="torch")  # CLI test: default

    results = predictor([np.rint(clip[:10, 0] * 255).astype(np.uint8) for clip in clips])

    forecast = np.stack([result.frames for result in results])
    truth = clips[:, 10:]
    persistence = np.repeat(clips[:, 9:10], 10, axis=1)
    assert isinstance(results[0], Forecast) and results[0].shape == [10, 1, 32, 32]
    assert ((forecast - truth) ** 2).mean() < 0.8 * ((persistence - truth) ** 2).mean()


def test_a_feature_extractor_returns_its_named_maps():
    predictor = zoo.predictor("resnet50-fpn", pretrained=False)

    result = predictor(numbered_frames(1, 64, 96)[0])

    assert isinstance(result, Features)
    assert result.shapes == {
        "p2": [256, 16, 24],
        "p3": [256, 8, 12],
        "p4": [256, 4, 6],
        "p5": [256, 2, 3],
        "pool": [256, 1, 2],
    }
    assert result.arrays["p3"].shape == (256, 8, 12)


# --- the halves, one by one ------------------------------------------------------------------


def test_preprocess_forward_and_postprocess_one_by_one_give_the_calls_result(picture):
    predictor = zoo.predictor(small_card("resnext50_32x4d.tv_in1k"), pretrained=False)

    prepared = predictor.preprocess(picture)
    by_halves = predictor.postprocess(predictor.forward(prepared.inputs), prepared, topk=3)

    assert by_halves == predictor(picture, topk=3)


def test_unnormalised_pixels_normalise_to_the_model_input(picture):
    predictor = zoo.predictor(small_card("vit-b16-in1k"), pretrained=False)

    pixels = predictor.preprocess(picture, normalize=False)
    inputs = predictor.preprocess(picture)

    assert pixels.tensor.min() >= 0 and pixels.tensor.max() <= 1
    torch.testing.assert_close(predictor.normalize(pixels.inputs)["image"], inputs.tensor)


def test_a_two_input_model_has_no_single_tensor():
    prepared = Prepared(
        source="x",
        inputs={"rgb": torch.zeros(1), "flow": torch.zeros(1)},
        geometry=None,
        rows=1,
        frames_used=1,
    )

    with pytest.raises(ValueError, match=r"takes 2 inputs \(rgb, flow\)"):
        _ = prepared.tensor


# --- many inputs: batches, order, errors, overlap -----------------------------------------


def test_results_do_not_depend_on_the_batch_size_and_keep_the_input_order(tmp_path, picture):
    predictor = zoo.predictor(small_card("resnext50_32x4d.tv_in1k"), pretrained=False)
    image = write_image(tmp_path / "picture.png", picture)
    inputs = [image, tmp_path / "missing.jpg", SAMPLE_CLIP, picture[:100], image]

    one = list(predictor.stream(inputs, batch_size=1))
    seven = list(predictor.stream(inputs, batch_size=7))

    assert isinstance(one[1], InputError) and "missing.jpg" in str(one[1])
    assert [r.input for r in one if not isinstance(r, InputError)] == [
        str(image),
        str(SAMPLE_CLIP),
        "<array 100x224x3>",
        str(image),
    ]
    for a, b in zip(one, seven, strict=True):
        if isinstance(a, InputError):
            assert str(a) == str(b)
            continue
        assert [label.index for label in a.labels] == [label.index for label in b.labels]
        np.testing.assert_allclose(
            [label.score for label in a.labels], [label.score for label in b.labels], rtol=1e-4
        )


def test_a_list_of_inputs_raises_the_first_bad_one_when_called(tmp_path, picture):
    predictor = zoo.predictor(small_card("resnext50_32x4d.tv_in1k"), pretrained=False)

    with pytest.raises(InputError, match=r"missing\.png: no such file"):
        predictor([picture, tmp_path / "missing.png"])


def test_inputs_are_decoded_on_a_background_thread_while_the_model_runs(picture):
    predictor = zoo.predictor(small_card("resnext50_32x4d.tv_in1k"), pretrained=False)
    decoded_on, ran_on = [], []
    preprocess, forward = predictor.preprocess, predictor.forward
    predictor.preprocess = lambda item: decoded_on.append(_thread()) or preprocess(item)
    predictor.forward = lambda inputs: ran_on.append(_thread()) or forward(inputs)

    predictor([picture] * 4, batch_size=1)

    assert len(decoded_on) == 4 and all(name.startswith("zoo-decode") for name in decoded_on)
    assert set(ran_on) == {threading.main_thread().name}


def _thread() -> str:
    return threading.current_thread().name


# --- devices and precisions -----------------------------------------------------------------------


def test_bfloat16_autocast_runs_on_cpu_and_agrees_with_float32(picture):
    card = small_card("resnext50_32x4d.tv_in1k")
    full = zoo.predictor(card, pretrained=False)
    torch.manual_seed(0)
    half = zoo.predictor(card, pretrained=False, precision="bf16")
    inputs = full.preprocess(picture).inputs

    low, high = half.forward(inputs), full.forward(inputs)

    assert half.backend.describe()["precision"] == "bf16"
    assert low.dtype == torch.bfloat16 and high.dtype == torch.float32
    assert ((low.float() - high).abs().max() / high.abs().max()).item() < 0.05
    assert half(picture).labels[0].label


def test_float16_on_cpu_is_refused_clearly():
    with pytest.raises(ZooError, match=r"precision fp16 needs a GPU.*use bf16 on a CPU"):
        zoo.predictor(
            small_card("resnext50_32x4d.tv_in1k"), pretrained=False, device="cpu", precision="fp16"
        )


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_asking_for_cuda_without_it_is_a_clear_error():
    with pytest.raises(ZooError, match="no CUDA device is available"):
        zoo.predictor(small_card("resnext50_32x4d.tv_in1k"), pretrained=False, device="cuda")


def test_channels_last_gives_the_same_result(picture):
    card = small_card("resnext50_32x4d.tv_in1k")
    plain = zoo.predictor(card, pretrained=False, memory_format="contiguous")
    torch.manual_seed(0)
    fast = zoo.predictor(card, pretrained=False, memory_format="channels_last")

    a, b = plain(picture), fast(picture)

    assert fast.backend.describe()["memory_format"] == "channels_last"
    assert [x.index for x in a.labels] == [x.index for x in b.labels]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize(("precision", "dtype"), [("fp16", "float16"), ("bf16", "bfloat16")])
def test_cuda_autocast_agrees_with_float32_on_cpu(picture, precision, dtype):
    card = small_card("resnext50_32x4d.tv_in1k")
    cpu = zoo.predictor(card, pretrained=False, device="cpu")
    torch.manual_seed(0)
    gpu = zoo.predictor(card, pretrained=False, device="cuda", precision=precision)
    inputs = cpu.preprocess(picture).inputs

    low, high = gpu.forward(inputs), cpu.forward(inputs)

    assert low.device.type == "cuda" and low.dtype == getattr(torch, dtype)
    assert ((low.float().cpu() - high).abs().max() / high.abs().max()).item() < 0.05
    assert [x.index for x in gpu([picture] * 3, batch_size=2)[0].labels]


def test_channels_last_holds_for_a_video_model_too():
    card = small_card("c3d-sports1m")
    plain = zoo.predictor(card, pretrained=False)
    torch.manual_seed(0)
    fast = zoo.predictor(card, pretrained=False, memory_format="channels_last")
    clip = {"video": torch.rand(2, 3, 16, 112, 112)}

    assert fast.model.conv1.weight.is_contiguous(memory_format=torch.channels_last_3d)
    torch.testing.assert_close(fast.forward(clip), plain.forward(clip), rtol=1e-5, atol=1e-6)


# --- which backend runs by default --------------------------------------------------------------

ORT_HINTS = zoo.InferenceHints(backend="onnxruntime")


def test_the_measured_backend_runs_a_model_with_real_weights_in_float32():
    assert choose_backend(None, ORT_HINTS, True, "fp32", None, None) == "onnxruntime"
    assert choose_backend(None, zoo.InferenceHints(), True, "fp32", None, None) == "torch"


@pytest.mark.parametrize(
    ("real_weights", "precision", "compile"),
    [(False, "fp32", None), (False, "bf16", None), (True, "fp16", None), (True, "fp32", True)],
    ids=["random weights", "random weights in bf16", "fp16 autocast", "compiled"],
)
def test_random_weights_fp16_or_compile_keep_the_default_on_torch(real_weights, precision, compile):
    assert choose_backend(None, ORT_HINTS, real_weights, precision, compile, None) == "torch"


def test_reduced_precisions_go_where_they_run_fastest():
    ov_hints = zoo.InferenceHints(backend="openvino")
    assert choose_backend(None, ORT_HINTS, True, "bf16", None, None) == "openvino"
    assert choose_backend(None, zoo.InferenceHints(), True, "bf16", None, None) == "torch"
    assert choose_backend(None, ORT_HINTS, False, "int8", None, None) == "onnxruntime"
    assert choose_backend(None, ov_hints, True, "int8", None, None) == "openvino"
    assert choose_backend(None, zoo.InferenceHints(), True, "int8", None, None) == "openvino"


def test_an_asked_backend_wins_and_an_onnx_file_means_an_onnx_backend():
    assert choose_backend("torch", ORT_HINTS, True, "fp32", None, None) == "torch"
    assert choose_backend(None, zoo.InferenceHints(), False, "fp32", None, "m.onnx") == (
        "onnxruntime"
    )
    assert choose_backend(None, ORT_HINTS, True, "bf16", None, "m.onnx") == "openvino"
    with pytest.raises(ZooError, match="unknown backend 'tensorrt'"):
        choose_backend("tensorrt", ORT_HINTS, True, "fp32", None, None)


def test_an_onnx_file_with_the_torch_backend_is_a_contradiction():
    with pytest.raises(ZooError, match="onnx= names a file for an ONNX backend= "):
        zoo.predictor(small_card("c3d-sports1m"), pretrained=False, backend="torch", onnx="x.onnx")
