"""int8 that proves its accuracy: a model trained here on synthetic classes, quantized by NNCF
on inputs the test writes, and the gate against float32 that keeps or refuses it.

The trained model keeps 100% top-1 agreement calibrated on its own kind of input, and
(measured while writing this test) 99-100% even calibrated on black frames: NNCF's ranges
survived that for every synthetic task tried. The refusal is proved on the same network
untrained, whose classes are near ties: calibrated on black frames it agrees on 84-87%.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from safetensors.torch import save_file

import zoo
from zoo.cli import main
from zoo.cli.export import summary
from zoo.errors import AccuracyDropError, QuantizationError
from zoo.exporters.report import ExportReport
from zoo.inference.decode import as_media
from zoo.inference.exported import cache_folder
from zoo.inference.preprocess import Preprocessor
from zoo.quantize.gate import measure
from zoo.quantize.inputs import input_files, prepared_rows, split
from zoo.quantize.int8 import quantize, quantize_graph
from zoo.registry import Registry
from zoo.small import small_card

pytest.importorskip("nncf")

ZOO = str(Path(sys.executable).with_name("zoo"))
CLASSES = 4
#: Rounds of 10 training steps at most (5 were needed on one thread and on two).
MAX_TRAINING_ROUNDS = 30
#: Training stops when the top class leads the next by this many logits on every held-out
#: image: a model only just sure of some (trained until its training images were right)
#: flipped 2 in 100 under int8 on one thread and none on two, failing the 99% gate.
HELD_OUT_MARGIN = 1.5


def class_image(label: int, rng: np.random.Generator) -> np.ndarray:
    """Faint stripes (horizontal, vertical, diagonal) or a faint checkerboard on mid-grey:
    classes told apart by a texture of small amplitude, learnt in a few steps."""
    rows, columns = np.mgrid[0:72, 0:80]
    half = int(rng.integers(3, 6))
    pattern = (rows, columns, rows + columns, rows // half + columns // half)[label]
    stripes = (pattern // half if label < 3 else pattern) % 2 * 2 - 1
    level = 128 + rng.normal(0, 10)
    pixels = level + 28 * stripes[..., None] + rng.normal(0, 4, (72, 80, 3))
    return np.clip(pixels, 0, 255).astype(np.uint8)


def write_images(folder: Path, count: int, seed: int, black: bool = False) -> Path:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for index in range(count):
        label = index % CLASSES
        pixels = np.zeros((72, 80, 3), np.uint8) if black else class_image(label, rng)
        Image.fromarray(pixels).save(folder / f"{index:03d}-class{label}.png")
    return folder


def trained_weights(card, folder: Path, held_out: Path) -> Path:
    """A small ResNeXt taught the four texture classes on inputs pre-processed as predict
    does, until it is sure of every image in ``held_out`` (what the gate will measure)."""
    architecture = Registry.from_entry_points().architecture(card.architecture)
    preprocess = Preprocessor(card, architecture.inference)
    rng = np.random.default_rng(0)
    labels = torch.arange(64) % CLASSES
    images = torch.cat(
        [preprocess(as_media(class_image(int(label), rng))).tensor for label in labels]
    )
    checked = torch.cat([preprocess(as_media(path)).tensor for path in sorted(held_out.iterdir())])
    torch.manual_seed(0)
    model = zoo.load(card, pretrained=False)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(MAX_TRAINING_ROUNDS):  # however the thread count rounds the steps
        model.train()
        for _ in range(10):
            batch = torch.randperm(len(labels))[:32]
            loss = torch.nn.functional.cross_entropy(model(images[batch]), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            learnt = (model(images).argmax(1) == labels).all()
            first, second = model(checked).topk(2, dim=1).values.unbind(1)
        if learnt and (first - second).min() >= HELD_OUT_MARGIN:
            break
    else:
        pytest.fail("the test model did not learn the four classes with a margin")
    path = folder / "trained.safetensors"
    save_file({key: value.contiguous() for key, value in model.state_dict().items()}, path)
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The card, the trained weights, and folders of calibration, held-out and black inputs."""
    folder = tmp_path_factory.mktemp("int8")
    card = small_card("resnext50_32x4d.tv_in1k")
    validate = write_images(folder / "validate", 100, seed=2)
    return {
        "card": card,
        "weights": trained_weights(card, folder, held_out=validate),
        "calibrate": write_images(folder / "calibrate", 24, seed=1),
        "validate": validate,
        "black": write_images(folder / "black", 8, seed=3, black=True),
        "folder": folder,
    }


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    """``zoo.export(precision="int8")`` on good calibration inputs (the one export here)."""
    out = tmp_path_factory.mktemp("export") / "out"
    report = zoo.export(
        trained["card"],
        out,
        weights=trained["weights"],
        precision="int8",
        calibrate=trained["calibrate"],
        validate=trained["validate"],
    )
    return report, out


def test_int8_with_good_calibration_keeps_99_percent_agreement_and_is_written(exported):
    written, out = exported

    report = ExportReport.model_validate_json((out / "export.json").read_text())
    quantization = report.quantization
    assert report.precision == "int8" and (out / "model.int8.onnx").is_file()
    assert "model.int8.onnx" in report.files
    assert quantization.calibration_inputs == 24 and quantization.validation_rows == 100
    assert {accuracy.runtime for accuracy in quantization.accuracy} == {"onnxruntime", "openvino"}
    for accuracy in quantization.accuracy:
        assert accuracy.passed and accuracy.top1_agreement >= 0.99
        assert accuracy.top5_overlap > 0.5 and accuracy.max_logit_error > 0
    assert not quantization.accepted_drop and report == written
    lines = summary(report)
    assert any("top-1 agreement 100.00% on 100 held-out rows" in line for line in lines)


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_precision_int8_runs_the_quantized_file_on_both_runtimes(trained, exported, backend):
    _, out = exported
    full = zoo.predictor(trained["card"], weights=trained["weights"], backend="torch")

    int8 = zoo.predictor(
        trained["card"], onnx=out / "model.int8.onnx", precision="int8", backend=backend
    )

    images = sorted(trained["validate"].iterdir())[:8]
    assert int8.backend.describe()["precision"] == "int8"
    assert [r.labels[0].index for r in int8(images)] == [r.labels[0].index for r in full(images)]


@pytest.fixture(scope="module")
def untrained(trained, tmp_path_factory):
    """The same network untrained: its classes are near ties, so int8 error flips them."""
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("untrained") / "out"
    zoo.export(trained["card"], out, pretrained=False)
    return out / "model.onnx"


def test_black_frame_calibration_of_a_fragile_model_is_refused_with_the_numbers(
    trained, untrained, tmp_path
):
    float32 = Path(shutil.copy(untrained, tmp_path / "model.onnx"))
    architecture = Registry.from_entry_points().architecture(trained["card"].architecture)

    with pytest.raises(AccuracyDropError, match=r"top-1 agreement \d+\.\d+% on 100 held-out rows"):
        quantize(
            float32,
            trained["card"],
            architecture,
            calibrate=trained["black"],
            validate=trained["validate"],
        )

    assert not (tmp_path / "model.int8.onnx").exists(), "a refused model must not be left"


def test_a_refused_drop_can_be_accepted_and_says_so(trained, untrained, tmp_path):
    float32 = Path(shutil.copy(untrained, tmp_path / "model.onnx"))
    architecture = Registry.from_entry_points().architecture(trained["card"].architecture)

    report = quantize(
        float32,
        trained["card"],
        architecture,
        calibrate=trained["black"],
        validate=trained["validate"],
        accept_drop=True,
    )

    assert report.accepted_drop and not report.passed
    assert min(accuracy.agreement for accuracy in report.accuracy) < 0.99


def test_calibration_inputs_are_pre_processed_exactly_as_the_predictor_does(trained):
    card = trained["card"]
    file = sorted(trained["validate"].iterdir())[0]
    architecture = Registry.from_entry_points().architecture(card.architecture)

    (row,) = prepared_rows([file], card, architecture)

    predictor = zoo.predictor(card, pretrained=False, backend="torch")
    np.testing.assert_array_equal(row["image"], predictor.preprocess(file).inputs["image"])


def test_a_manifest_lists_inputs_relative_to_itself_and_every_fifth_is_held_out(trained):
    folder = trained["calibrate"]
    names = sorted(path.name for path in folder.iterdir())
    manifest = folder.parent / "inputs.txt"
    manifest.write_text("# calibration\n" + "\n".join(f"calibrate/{n}" for n in names) + "\n")

    files = split(manifest, None)

    assert input_files(manifest) == sorted(folder.iterdir())
    assert len(files.validation) == len(names) // 5 and files.held_out
    assert not set(files.validation) & set(files.calibration)
    manifest.write_text("calibrate/missing.png\n")
    with pytest.raises(QuantizationError, match="lists 1 missing files"):
        input_files(manifest)


def test_int8_is_refused_clearly_without_nncf(trained, exported, monkeypatch, tmp_path):
    _, out = exported
    monkeypatch.setitem(sys.modules, "nncf", None)

    with pytest.raises(QuantizationError, match=r"needs NNCF.*zoo-models\[int8\]"):
        quantize_graph(out / "model.onnx", tmp_path / "model.int8.onnx", [])


def test_int8_without_calibration_inputs_says_what_it_needs(trained):
    with pytest.raises(zoo.ZooError, match="precision int8 needs a quantized graph"):
        zoo.predictor(trained["card"], weights=trained["weights"], precision="int8")
    result = CliRunner().invoke(
        main, ["export", "resnext50_32x4d.tv_in1k", "--random", "--precision", "int8", "-o", "x"]
    )
    assert result.exit_code == 1
    assert "precision int8 needs calibration inputs: --calibrate DIR" in result.output


def test_the_gate_counts_a_detector_box_only_when_label_and_iou_match():
    card = zoo.card("fpn-resnet50-coco")
    architecture = Registry.from_entry_points().architecture(card.architecture)
    box = torch.tensor([[10.0, 10.0, 50.0, 50.0], [60.0, 60.0, 90.0, 90.0]])

    def reference(inputs):
        return {"boxes": box, "scores": torch.tensor([0.9, 0.8]), "labels": torch.tensor([1, 2])}

    def candidate(inputs):  # the first box moved by a pixel (IoU 0.95), the second relabelled
        return {
            "boxes": box + torch.tensor([[1.0, 0, 1.0, 0], [0, 0, 0, 0]]),
            "scores": torch.tensor([0.9, 0.8]),
            "labels": torch.tensor([1, 3]),
        }

    accuracy = measure(
        card,
        architecture,
        reference,
        candidate,
        [{"image": np.zeros((1, 3, 8, 8), np.float32)}],
        precision="int8",
        runtime="test",
    )

    assert accuracy.float32_boxes == 2 and accuracy.agreement == 0.5 and not accuracy.passed


def test_zoo_cache_lists_and_clears_what_int8_made(trained, exported):
    _, out = exported
    card, weights = trained["card"], trained["weights"]
    shutil.copytree(out, cache_folder(card, weights, None))  # the float32 export, made already
    int8 = zoo.predictor(card, weights=weights, precision="int8", calibrate=trained["calibrate"])
    file = Path(int8.backend.describe()["file"])

    listing = subprocess.run([ZOO, "cache", "--json"], capture_output=True, text=True, check=True)
    made = json.loads(listing.stdout)["made"]
    subprocess.run([ZOO, "cache", "--clear"], capture_output=True, check=True)

    assert file.is_file() is False and file.name == "model.int8.onnx"
    assert {entry["area"] for entry in made} == {"onnx", "int8", "openvino"}
    assert str(file.parent) in {entry["path"] for entry in made}
