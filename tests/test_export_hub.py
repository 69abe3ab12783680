"""Exporting pretrained weights: fetched and verified as zoo.load does, then in the graph.

The toy architecture declares no export hints at all (a plugin written before
they existed): its graph is static with one output named ``output``.
"""

from __future__ import annotations

import onnxruntime
import torch
from conftest import card_data
from test_weights import hub  # noqa: F401  (fixture)

import zoo
from zoo import publish
from zoo.cards import Card
from zoo.exporters.pipeline import export
from zoo.registry import Registry


def test_a_model_published_on_the_hub_exports_with_its_verified_weights(
    toy_plugin,
    hub,  # noqa: F811
    tmp_path,
):
    registry = Registry.from_plugins({"toy": toy_plugin})
    card = Card.from_data(card_data())
    model = zoo.build("toy", card.config, registry=registry).eval()
    with torch.no_grad():
        model[1].running_mean.uniform_(-1, 1)  # so that weights left random would show
    folder = publish.write_folder(card, model.state_dict(), tmp_path / "folder")
    publish.push(folder.path, "me/toy")

    report = export("hf-hub:me/toy", tmp_path / "out", registry=registry)

    image = torch.rand(1, 3, 8, 8)
    session = onnxruntime.InferenceSession(tmp_path / "out" / "model.onnx")
    (found,) = session.run(None, {"image": image.numpy()})
    with torch.no_grad():
        expected = model(image).numpy()
    assert report.weights == "pretrained" and report.passed
    assert [info.name for info in report.outputs] == ["output"]
    assert report.inputs[0].shape == [1, 3, 8, 8] and not report.dynamic
    assert abs(found - expected).max() <= 1e-5 * abs(expected).max()
