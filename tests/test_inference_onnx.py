"""The onnxruntime backend: the file zoo export writes, the same inputs, the same results."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from inference_cards import small_card
from media import sample_frames, write_image
from safetensors.torch import save_file

import zoo
from zoo.errors import ExportError, ZooError, ZooWarning
from zoo.inference.bench import compare
from zoo.inference.exported import cache_folder
from zoo.registry import Registry

ZOO = str(Path(sys.executable).with_name("zoo"))
TOLERANCE = 1e-4  # the export checks' default: max |onnx - torch| / max |torch|


def weights_file(card, folder: Path) -> Path:
    torch.manual_seed(0)
    model = zoo.load(card, pretrained=False)
    path = folder / "weights.safetensors"
    save_file({key: value.contiguous() for key, value in model.state_dict().items()}, path)
    return path


def relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


def test_both_backends_take_the_same_inputs_and_agree_within_the_export_tolerance(tmp_path):
    card = small_card("resnext50_32x4d.tv_in1k")
    weights = weights_file(card, tmp_path)
    pictures = [sample_frames()[0], sample_frames()[50, :180]]
    eager = zoo.predictor(card, weights=weights, backend="torch")

    exported = zoo.predictor(card, weights=weights, backend="onnxruntime")
    inputs = exported.preprocess(pictures[1]).inputs

    assert exported.backend.describe()["provider"] == "CPUExecutionProvider"
    assert relative(exported.forward(inputs)["logits"].numpy(), eager.forward(inputs).numpy()) < (
        TOLERANCE
    )
    for ours, theirs in zip(exported(pictures), eager(pictures), strict=True):
        assert [x.index for x in ours.labels] == [x.index for x in theirs.labels]
        np.testing.assert_allclose(
            [x.score for x in ours.labels], [x.score for x in theirs.labels], rtol=1e-3
        )


def test_the_export_is_made_once_per_weights_and_then_reused(tmp_path, monkeypatch):
    card = small_card("resnext50_32x4d.tv_in1k")
    weights = weights_file(card, tmp_path)
    zoo.predictor(card, weights=weights, backend="onnxruntime")
    folder = cache_folder(card, weights, None)
    assert (folder / "model.onnx").is_file() and (folder / "export.json").is_file()

    monkeypatch.setattr(zoo, "export", lambda *args, **kwargs: pytest.fail("exported twice"))
    again = zoo.predictor(card, weights=weights, backend="onnxruntime")

    assert again.backend.describe()["file"] == str(folder / "model.onnx")
    weights.touch()  # new weights (a new mtime) are a new export
    assert cache_folder(card, weights, None) != folder


def test_new_export_hints_of_a_plugin_are_a_new_export(tmp_path, monkeypatch):
    card = small_card("resnext50_32x4d.tv_in1k")
    weights = weights_file(card, tmp_path)
    registry = Registry.from_entry_points()
    before = cache_folder(card, weights, None, registry)
    architecture = registry.architecture(card.architecture)
    changed = architecture.model_copy(
        update={"export": architecture.export.model_copy(update={"tolerance": 1e-3})}
    )
    version = registry.plugin_version(architecture)
    monkeypatch.setattr(registry, "architecture", lambda name: changed)
    monkeypatch.setattr(registry, "plugin_version", lambda architecture: version)

    assert cache_folder(card, weights, None, registry) != before


def test_a_video_model_runs_its_clips_as_one_onnxruntime_batch(tmp_path):
    card = small_card("c3d-sports1m")
    weights = weights_file(card, tmp_path)
    frames = np.random.default_rng(0).integers(0, 256, (40, 112, 112, 3), dtype=np.uint8)

    ours = zoo.predictor(card, weights=weights, backend="onnxruntime", clips=3)(frames)
    theirs = zoo.predictor(card, weights=weights, backend="torch", clips=3)(frames)

    assert ours.clips == 3
    assert [x.index for x in ours.labels] == [x.index for x in theirs.labels]


def test_a_graph_with_fixed_axes_refuses_other_sizes_clearly(tmp_path):
    card = small_card("vit-b16-in1k")
    predictor = zoo.predictor(card, weights=weights_file(card, tmp_path), backend="onnxruntime")

    with pytest.raises(
        ZooError, match=r"takes image of shape \['batch', 3, 32, 32\].*found \[1, 3, 40, 40\]"
    ):
        predictor.forward({"image": torch.zeros(1, 3, 40, 40)})


def test_random_weights_export_to_a_temporary_folder_not_the_cache(tmp_path):
    card = small_card("c3d-sports1m")

    predictor = zoo.predictor(card, pretrained=False, backend="onnxruntime")

    file = Path(predictor.backend.describe()["file"])
    assert file.is_file() and "zoo-onnx-" in str(file)
    assert not (zoo_cache() / "onnx").exists()


def zoo_cache() -> Path:
    from zoo.weights import zoo_cache_dir

    return zoo_cache_dir()


def test_bf16_is_refused_for_onnxruntime_naming_where_it_runs():
    with pytest.raises(ZooError, match=r"precision bf16 is not an onnxruntime precision.*openvino"):
        zoo.predictor(
            small_card("c3d-sports1m"), pretrained=False, backend="onnxruntime", precision="bf16"
        )


def test_bench_compare_runs_every_variant_on_the_same_input_against_eager(tmp_path):
    card = small_card("c3d-sports1m")
    variants = ["eager", "channels_last", "onnxruntime"]

    reports, failures = compare(
        card, variants, batch=2, warmup=1, steps=2, weights=weights_file(card, tmp_path)
    )

    assert failures == {}
    assert [report.variant for report in reports] == variants
    assert reports[0].speedup == 1.0 and all(report.speedup > 0 for report in reports)
    assert reports[2].settings["backend"] == "onnxruntime"
    assert {tuple(report.input_shapes["video"]) for report in reports} == {(2, 3, 16, 112, 112)}


@pytest.mark.heavy
def test_zoo_predict_gives_the_same_answer_on_both_backends(tmp_path):
    import timm

    torch.manual_seed(0)
    model = timm.create_model("resnet50", pretrained=False)
    weights = tmp_path / "timm.safetensors"
    save_file(model.state_dict(), weights)
    image = write_image(tmp_path / "image.png", sample_frames()[20])
    common = [ZOO, "predict", "resnet50.tv_in1k", image, "--weights", weights, "--layout", "timm"]

    answers = [
        subprocess.run(
            [*map(str, common), "--backend", backend, "--json"], capture_output=True, text=True
        )
        for backend in ("torch", "onnxruntime")
    ]

    for answer in answers:
        assert answer.returncode == 0, answer.stderr
    torch_result, onnx_result = (json.loads(answer.stdout) for answer in answers)
    assert [p["index"] for p in onnx_result["predictions"]] == [
        p["index"] for p in torch_result["predictions"]
    ]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_onnxruntime_uses_the_cuda_provider_on_a_gpu(tmp_path):
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has no CUDA provider (install onnxruntime-gpu)")
    card = small_card("resnext50_32x4d.tv_in1k")
    weights = weights_file(card, tmp_path)

    predictor = zoo.predictor(card, weights=weights, backend="onnxruntime", device="cuda")

    assert predictor.backend.describe()["provider"] == "CUDAExecutionProvider"
    cpu = zoo.predictor(card, weights=weights, backend="torch", device="cpu")
    picture = sample_frames()[0]
    assert [x.index for x in predictor(picture).labels] == [x.index for x in cpu(picture).labels]


def test_a_default_onnxruntime_export_that_fails_falls_back_to_torch_with_a_warning(
    tmp_path, monkeypatch
):
    card = small_card("c3d-sports1m")
    weights = weights_file(card, tmp_path)

    def failing_export(*args, **kwargs):
        raise ExportError("c3d: the exporter gave up")

    monkeypatch.setattr(zoo, "export", failing_export)
    with pytest.warns(ZooWarning, match="running on torch.*the exporter gave up"):
        predictor = zoo.predictor(card, weights=weights)

    assert predictor.backend.describe()["backend"] == "torch"
    with pytest.raises(ExportError, match="the exporter gave up"):
        zoo.predictor(card, weights=weights, backend="onnxruntime")


def test_without_the_export_extra_the_onnxruntime_default_runs_on_torch_and_says_how_to_get_it(
    tmp_path, monkeypatch
):
    import zoo.inference.factory as factory

    card = small_card("c3d-sports1m")
    weights = weights_file(card, tmp_path)
    installed = factory.find_spec
    monkeypatch.setattr(
        factory, "find_spec", lambda name: None if name == "onnxruntime" else installed(name)
    )

    with pytest.warns(ZooWarning, match=r"needs onnxruntime: pip install 'zoo-models\[export\]'"):
        predictor = zoo.predictor(card, weights=weights)

    assert predictor.backend.describe()["backend"] == "torch"
