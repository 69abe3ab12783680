"""A fusion model over a third-party backbone with its pretrained weights, through zoo.export.

The export suite (test_export.py) exports every built-in fusion card at its small size
with random weights; this adds what it cannot: a backbone from another plugin, its
weights fetched through its own card, and a bidirectional LSTM, exported (by the layer
behind ``zoo.export``, which takes a registry) with the batch and clip length left open.
"""

from __future__ import annotations

import onnxruntime
import torch
from fusion_zoo import FusionZoo
from test_weights import hub  # noqa: F401  (fixture)

from zoo.exporters.pipeline import export


def test_a_cnn_lstm_over_a_third_party_backbone_exports_with_open_batch_and_time(
    hub,  # noqa: F811
    tmp_path,
):
    fusion_zoo = FusionZoo(hub)
    card = fusion_zoo.fusion_card("cnn-lstm", "tiny-image", hidden_size=6, bidirectional=True)

    report = export(card, tmp_path / "out", registry=fusion_zoo.registry)

    assert report.passed and report.weights == "pretrained"
    assert report.inputs[0].shape == ["batch", 3, "frames", 32, 32]
    exported, other = (check.input_shapes for check in report.checks)
    assert exported != other  # onnxruntime was checked at another batch and clip length too
    session = onnxruntime.InferenceSession(tmp_path / "out" / "model.onnx")
    clip = torch.randn(3, 3, 7, 32, 32)
    (logits,) = session.run(None, {"video": clip.numpy()})
    with torch.inference_mode():
        expected = fusion_zoo.load(card)(clip)
    torch.testing.assert_close(torch.from_numpy(logits), expected, rtol=1e-4, atol=1e-5)
