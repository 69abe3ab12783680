"""``zoo finetune`` on images: a small ResNeXt learns colours, and its folder is a model like
any other (it loads, predicts, exports to ONNX and publishes to the Hub)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from finetune_zoo import colour_images, finetune_registry, parent_folder
from media import write_image
from test_weights import hub  # noqa: F401  (fixture)

import zoo
from zoo.cards import Card
from zoo.cli import main
from zoo.finetuning import finetune
from zoo.weights import sha256_of

EPOCHS = 5
RECIPE = {"epochs": EPOCHS, "lr": 1e-3, "batch_size": 8, "workers": 0, "val_split": 0.25}


@pytest.fixture(scope="session")
def colours(tmp_path_factory) -> Path:
    """28 images per colour: 21 held out for validation, so one mistake still passes 95%."""
    return colour_images(tmp_path_factory.mktemp("colours") / "colours", per_class=28)


@pytest.fixture(scope="session")
def parent(tmp_path_factory, colours) -> Path:
    """A small ResNeXt folder: random weights, BatchNorm statistics of images like these
    (what a pretrained parent brings)."""
    from zoo.inference.decode import read_image

    files = sorted(colours.rglob("*.png"))[::4]
    pixels = torch.stack([torch.from_numpy(read_image(f).frames[0]) for f in files])
    images = pixels.permute(0, 3, 1, 2).float() / 255
    folder = tmp_path_factory.mktemp("parent") / "tiny-resnext"
    return parent_folder(finetune_registry(), "tiny-resnext", folder, images=images)


@pytest.fixture(scope="session")
def linear(tmp_path_factory, colours, parent):
    out = tmp_path_factory.mktemp("linear") / "colours-linear"
    return finetune(f"{parent}/", colours, out, mode="linear", **RECIPE)


@pytest.fixture(scope="session")
def full(tmp_path_factory, colours, parent):
    out = tmp_path_factory.mktemp("full") / "colours-full"
    return finetune(f"{parent}/", colours, out, mode="full", **RECIPE)


@pytest.mark.parametrize("run", ["linear", "full"])
def test_a_small_resnext_learns_the_colours(run, request):
    report = request.getfixturevalue(run)

    assert report.classes == ["blue", "green", "red"]
    assert report.val_files == 21 and report.train_files == 63
    assert report.metrics["top1"] >= 95
    assert len(report.history) == EPOCHS
    assert report.history[report.best_epoch - 1].val_top1 >= 95


@pytest.mark.parametrize("run", ["linear", "full"])
def test_the_written_card_names_parent_classes_metrics_and_recipe(run, request, parent):
    report = request.getfixturevalue(run)
    card = Card.from_yaml(Path(report.output) / "card.yaml")

    assert card.name == f"colours-{run}"
    assert card.labels == ["blue", "green", "red"]
    assert card.config["num_classes"] == 3 and card.outputs[0].shape == [3]
    assert card.inputs == Card.from_yaml(parent / "card.yaml").inputs
    assert card.parent.model == f"{parent}/"
    assert card.parent.sha256 == sha256_of(parent / "model.safetensors")
    top1 = next(metric for metric in card.metrics if metric.name == "top1")
    assert top1.value == pytest.approx(report.metrics["top1"], abs=0.01)
    assert top1.dataset == "colours" and "25%" in top1.split and top1.source == "measured"
    assert card.training["mode"] == run and card.training["learning_rate"] == 1e-3
    history = json.loads((Path(report.output) / "history.json").read_text())
    assert [entry["epoch"] for entry in history] == list(range(1, EPOCHS + 1))


def test_linear_mode_trains_only_the_classifier(linear, parent):
    parent_state = zoo.load(f"{parent}/").state_dict()
    tuned = zoo.load(f"{linear.output}/").state_dict()

    outside = [key for key in tuned if not key.startswith("fc.")]
    assert all(torch.equal(tuned[key], parent_state[key]) for key in outside)
    assert tuned["fc.weight"].shape == (3, parent_state["fc.weight"].shape[1])


def test_linear_mode_caches_the_features_it_computed(linear):
    assert {"features-train.safetensors", "features-val.safetensors"} <= {
        Path(file).name for file in linear.files
    }


def test_the_folder_predicts_the_right_colour_through_zoo_predict(full, tmp_path):
    picture = write_image(tmp_path / "reddish.png", _field((205, 45, 50)))

    result = CliRunner().invoke(
        main, ["predict", f"{full.output}/", str(picture), "--json", "--backend", "torch"]
    )

    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["predictions"][0]["label"] == "red"


def test_the_folder_gives_features_through_zoo_features(linear, colours, tmp_path):
    pictures = sorted(colours.rglob("*.png"))[:3]
    out = tmp_path / "features"

    result = CliRunner().invoke(
        main,
        ["features", f"{linear.output}/", *map(str, pictures), "-o", str(out), "--json"],
    )

    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["done"], report["failed"]) == (3, 0)
    predictor = zoo.predictor(f"{linear.output}/", backend="torch")
    model = zoo.load(f"{linear.output}/")
    pooled = zoo.default_registry().architecture(predictor.card.architecture)
    for picture in pictures:
        rows = np.load(out / f"{picture.name}.npy")
        with torch.no_grad():
            expected = pooled.features.resolve_pooled()(model, predictor.preprocess(picture).tensor)
        np.testing.assert_allclose(rows, expected.numpy(), rtol=1e-5, atol=1e-6)


def test_the_folder_exports_to_onnx_and_passes_the_export_checks(linear, tmp_path):
    result = CliRunner().invoke(
        main, ["export", f"{linear.output}/", "--onnx", "-o", str(tmp_path / "onnx"), "--json"]
    )

    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["passed"] and report["checks"]
    assert report["model"] == "colours-linear"


def test_the_folder_publishes_to_the_hub_and_loads_back(linear, hub, tmp_path):  # noqa: F811
    pushed = CliRunner().invoke(main, ["push", f"{linear.output}/", "--repo", "me/colours"])
    assert pushed.exit_code == 0, pushed.output

    model = zoo.load("hf-hub:me/colours")
    local = zoo.load(f"{linear.output}/")
    image = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(model(image), local(image))
    assert zoo.predictor("hf-hub:me/colours", backend="torch").card.labels == linear.classes


def _field(colour: tuple[int, int, int]):
    import numpy as np

    return np.broadcast_to(np.asarray(colour, dtype=np.uint8), (16, 16, 3)).copy()
