"""Fusion models through ``torch.onnx.export(dynamo=True)``, with batch and time left open.

Late fusion and CNN+LSTM take clips of any length, so their graphs must too: exported at
one batch size and clip length, onnxruntime must match PyTorch at others. Early fusion
fixes the clip length (its first convolution reads K frames) and leaves the batch open.
"""

from __future__ import annotations

import pytest
import torch
from fusion_zoo import FusionZoo
from test_weights import hub  # noqa: F401  (fixture)

ort = pytest.importorskip("onnxruntime")

CASES = [
    ("late-fusion", "tiny-resnext", {}, True),
    ("cnn-lstm", "tiny-vit", {"bidirectional": True, "layers": 2, "hidden_size": 8}, True),
    ("early-fusion", "tiny-image", {}, False),
]


def exported(model: torch.nn.Module, clip: torch.Tensor, dynamic_time: bool, path) -> str:
    batch = torch.export.Dim("batch", min=1, max=64)
    axes = {0: batch, 2: torch.export.Dim("frames", min=1, max=256)} if dynamic_time else {0: batch}
    program = torch.onnx.export(
        model,
        (clip,),
        dynamo=True,
        input_names=["video"],
        output_names=["logits"],
        dynamic_shapes=(axes,),
        verbose=False,
    )
    program.save(str(path), external_data=False)
    return str(path)


@pytest.mark.parametrize(("architecture", "backbone", "config", "dynamic_time"), CASES)
def test_an_exported_fusion_model_matches_pytorch_at_other_batch_sizes_and_clip_lengths(
    hub,  # noqa: F811
    tmp_path,
    architecture,
    backbone,
    config,
    dynamic_time,
):
    fusion_zoo = FusionZoo(hub)
    model = fusion_zoo.load(fusion_zoo.fusion_card(architecture, backbone, frames=4, **config))
    session = ort.InferenceSession(
        exported(model, torch.randn(2, 3, 4, 32, 32), dynamic_time, tmp_path / "model.onnx")
    )

    for shape in [(3, 3, 7, 32, 32), (1, 3, 1, 32, 32)] if dynamic_time else [(3, 3, 4, 32, 32)]:
        clip = torch.randn(shape)
        (logits,) = session.run(None, {"video": clip.numpy()})
        with torch.inference_mode():
            expected = model(clip)
        torch.testing.assert_close(torch.from_numpy(logits), expected, rtol=1e-4, atol=1e-5)
