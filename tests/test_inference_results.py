"""Results, their JSON, box geometry, output naming and pictures of the model input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from zoo.errors import ZooError
from zoo.inference import Classification, Detection, Detections, Forecast, LabelScore
from zoo.inference.decode import Media
from zoo.inference.postprocess import named_outputs
from zoo.inference.render import contact_sheet, write_picture
from zoo.inference.sampling import plan_framewise, resample
from zoo.inference.transforms import Geometry


def test_boxes_in_a_crop_of_a_resize_map_back_to_the_original_pixels():
    # a 100 x 200 image resized 2x to 200 x 400, then the centre 200 x 200 (left 100)
    geometry = Geometry(original=(100, 200), resized=(200, 400), top=0, left=100, size=(200, 200))

    mapped = geometry.boxes_to_original(
        torch.tensor([[0.0, 0.0, 100.0, 50.0], [150, 150, 250, 260]])
    )

    expected = torch.tensor([[50.0, 0.0, 100.0, 25.0], [125.0, 75.0, 175.0, 100.0]])  # clipped
    torch.testing.assert_close(mapped, expected)


def test_a_classification_prints_the_issues_json_shape_and_reads_back():
    result = Classification(
        input="clip.mp4",
        model="m",
        task="video-classification",
        labels=[LabelScore(label="cricket", index=3, score=0.9)],
    )

    data = json.loads(json.dumps(result.to_json_data()))

    assert {"input", "model", "task", "predictions"} <= set(data)
    assert data["predictions"] == [{"label": "cricket", "index": 3, "score": 0.9}]
    assert Classification.model_validate(data) == result
    assert result.top.label == "cricket"


def test_detections_expose_parallel_lists_and_print_one_object_per_box():
    result = Detections(
        input="a.jpg",
        model="m",
        task="object-detection",
        detections=[
            Detection(box=(1, 2, 3, 4), label="person", index=1, score=0.9),
            Detection(box=(5, 6, 7, 8), label="car", index=3, score=0.6),
        ],
        image_size=(10, 10),
        threshold=0.5,
    )

    assert result.boxes == [(1, 2, 3, 4), (5, 6, 7, 8)]
    assert result.labels == [1, 3] and result.label_names == ["person", "car"]
    assert result.scores == [0.9, 0.6]
    assert result.to_json_data()["detections"][1] == {
        "box": [5.0, 6.0, 7.0, 8.0],
        "label": "car",
        "index": 3,
        "score": 0.6,
    }


def test_a_forecast_writes_its_frames_as_a_gif_in_the_value_range(tmp_path):
    frames = np.linspace(0, 1, 3 * 8 * 8, dtype=np.float32).reshape(3, 1, 8, 8)
    result = Forecast(
        input="x",
        model="m",
        task="video-forecasting",
        frames=frames,
        value_range=(0, 1),
        shape=[3, 1, 8, 8],
        fps=10,
    )

    written = result.write_gif(tmp_path / "out" / "f.gif")

    assert written.forecast == str(tmp_path / "out" / "f.gif")
    assert "frames" not in written.to_json_data()
    with Image.open(written.forecast) as gif:
        assert gif.n_frames == 3 and gif.info["duration"] == 100
        gif.seek(2)
        last = np.asarray(gif.convert("L"), dtype=np.float32) / 255
    np.testing.assert_allclose(last, frames[2, 0], atol=1 / 255)
    assert [path.name for path in (tmp_path / "out").iterdir()] == ["f.gif"]


def test_raw_outputs_are_named_as_the_export_hints_name_them():
    logits, boxes = torch.zeros(1, 5), torch.ones(1, 3, 4)

    assert named_outputs(logits, ["logits"]) == {"logits": logits}
    assert named_outputs((logits, boxes), ["logits", "boxes"]) == {"logits": logits, "boxes": boxes}
    by_order = named_outputs({"0": logits, "pool": boxes}, ["p2", "pool"])
    assert list(by_order) == ["p2", "pool"] and by_order["p2"] is logits
    onnxruntime = named_outputs([np.zeros((1, 5), np.float32)], ["logits"])
    assert isinstance(onnxruntime["logits"], torch.Tensor)
    detections = [{"boxes": boxes[0], "scores": torch.ones(3), "labels": torch.ones(3)}]
    assert named_outputs(detections, ["boxes", "scores", "labels"]) == detections


def test_a_contact_sheet_puts_each_clip_on_its_own_lines_wrapped_at_16_frames():
    rows = np.zeros((2, 20, 4, 6, 3), np.uint8)
    rows[1, 17] = 255

    sheet = contact_sheet(rows)

    assert sheet.shape == (4 * 6 - 2, 16 * 8 - 2, 3)  # 2 lines per clip, 16 columns, 2 px gaps
    assert (sheet[18:22, 8:14] == 255).all()  # clip 1, frame 17: its second line, column 1
    assert sheet[4, 0, 0] == 128  # the gap


def test_an_unknown_picture_format_is_refused_naming_the_formats(tmp_path):
    with pytest.raises(
        ZooError, match=r"unknown picture format '\.xyz' \(use \.png, \.jpg or \.gif\)"
    ):
        write_picture(np.zeros((1, 1, 2, 2, 3), np.uint8), tmp_path / "x.xyz")


def test_resampling_follows_timestamps_of_a_variable_frame_rate_video():
    times = np.array([0.0, 0.01, 0.02, 0.1, 0.2, 0.21])  # bursts and a gap
    media = Media(source="x", count=6, size=(2, 2), times=times)

    indices = resample(media, fps=10)

    assert indices.tolist() == [0, 3, 4]  # the frame on screen at 0.0, 0.1 and 0.2 s


def test_an_image_classifier_sees_25_evenly_spaced_frames_of_a_video_by_default():
    assert plan_framewise(100)[:, 0].tolist() == [2 + 4 * n for n in range(25)]
    assert plan_framewise(10)[:, 0].tolist() == list(range(10))  # never a frame twice
