"""The OpenVINO backend: the file zoo export writes, in float32 unless bf16 is asked, and a
fallback (with a warning) wherever it cannot run, never a wrong answer.

Every card's small model is run by OpenVINO inside the export checks (tests/test_export.py
asserts them for every card, and the conformance kit's ``runs_on_openvino`` for any plugin).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
import torch
from media import sample_frames
from safetensors.torch import save_file

import zoo
from zoo.errors import RuntimeCompileError, ZooError, ZooWarning
from zoo.exporters.report import ExportReport
from zoo.inference import predictor
from zoo.inference.bench import benchmark, compare
from zoo.inference.exported import cache_folder
from zoo.inference.precision import cpu_bf16_features
from zoo.registry import Registry
from zoo.small import small_card

pytest.importorskip("openvino")

TOLERANCE = 1e-4  # the export checks' default: max |ov - torch| / max |torch|
HAS_BF16 = bool(cpu_bf16_features())


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A small ResNeXt's random weights in a file, and its export (made once: exports are slow)."""
    card = small_card("resnext50_32x4d.tv_in1k")
    torch.manual_seed(0)
    model = zoo.load(card, pretrained=False)
    folder = tmp_path_factory.mktemp("weights")
    path = folder / "weights.safetensors"
    save_file({key: value.contiguous() for key, value in model.state_dict().items()}, path)
    zoo.export(card, folder / "export", weights=path)
    return card, path, folder / "export" / "model.onnx"


@pytest.fixture(scope="module")
def picture():
    return sample_frames()[30, :200]


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max()).item()


def hinted(backend: str) -> Registry:
    """The built-in registry with ResNeXt's measured default set to ``backend``."""
    registry = Registry.from_entry_points()
    architecture = registry.architecture("resnext")
    changed = architecture.model_copy(
        update={"inference": architecture.inference.model_copy(update={"backend": backend})}
    )
    registry.architecture = lambda name: changed
    return registry


def test_openvino_takes_the_same_inputs_and_agrees_with_pytorch(weights, picture):
    card, path, onnx = weights
    eager = zoo.predictor(card, weights=path, backend="torch")

    compiled = zoo.predictor(card, onnx=onnx, backend="openvino")
    inputs = compiled.preprocess(picture).inputs

    assert relative(compiled.forward(inputs)["logits"], eager.forward(inputs)) < TOLERANCE
    assert [x.index for x in compiled(picture).labels] == [x.index for x in eager(picture).labels]


def test_float32_is_float32_although_openvino_would_pick_bfloat16_by_itself(weights):
    card, _, onnx = weights

    compiled = zoo.predictor(card, onnx=onnx, backend="openvino")

    # What the compiled model says it computes in, not what was asked: on a CPU with
    # AVX512-BF16 or AMX, OpenVINO's own default is bf16.
    assert compiled.backend.inference_precision == "f32"
    assert compiled.backend.describe()["precision"] == "fp32"


@pytest.mark.skipif(not HAS_BF16, reason="this CPU has neither AVX512-BF16 nor AMX")
def test_bf16_runs_in_bfloat16_and_stays_close_to_float32(weights, picture):
    card, _, onnx = weights
    full = zoo.predictor(card, onnx=onnx, backend="openvino")

    half = zoo.predictor(card, onnx=onnx, precision="bf16")
    inputs = full.preprocess(picture).inputs

    assert half.backend.name == "openvino" and half.backend.inference_precision == "bf16"
    assert relative(half.forward(inputs)["logits"], full.forward(inputs)["logits"]) < 0.05


@pytest.mark.parametrize("backend", ["openvino", "torch"])
def test_bf16_is_refused_on_a_cpu_without_avx512_bf16_or_amx(weights, monkeypatch, backend):
    card, path, _ = weights
    monkeypatch.setattr("zoo.inference.precision.cpu_bf16_features", lambda: [])

    with pytest.raises(ZooError, match="bf16 needs a CPU with AVX512-BF16 or AMX; this CPU has"):
        zoo.predictor(card, weights=path, backend=backend, precision="bf16")


def test_a_default_openvino_without_openvino_installed_runs_on_onnxruntime_with_a_warning(
    weights, monkeypatch
):
    card, _, onnx = weights
    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino now fails

    with pytest.warns(ZooWarning, match=r"running on onnxruntime.*zoo-models\[openvino\]"):
        fallback = predictor(card, onnx=onnx, registry=hinted("openvino"))

    assert fallback.backend.name == "onnxruntime"
    with pytest.raises(ZooError, match=r"backend openvino needs .*zoo-models\[openvino\]"):
        zoo.predictor(card, onnx=onnx, backend="openvino")


def test_a_graph_openvino_cannot_compile_runs_on_onnxruntime_with_a_warning(weights, monkeypatch):
    card, _, onnx = weights

    def refuse(*args, **kwargs):
        raise RuntimeCompileError("OpenVINO cannot compile model.onnx: unsupported operation")

    monkeypatch.setattr("zoo.inference.openvino_backend.OpenVinoBackend", refuse)
    with pytest.warns(ZooWarning, match="running on onnxruntime.*unsupported operation"):
        fallback = predictor(card, onnx=onnx, registry=hinted("openvino"))

    assert fallback.backend.name == "onnxruntime"
    with pytest.raises(RuntimeCompileError, match="unsupported operation"):
        zoo.predictor(card, onnx=onnx, backend="openvino")


def test_a_file_whose_openvino_check_failed_is_not_run_by_openvino(weights, tmp_path):
    card, _, onnx = weights
    exported = Path(shutil.copytree(onnx.parent, tmp_path / "export")) / "model.onnx"
    report = ExportReport.model_validate_json(exported.with_name("export.json").read_text())
    check = report.openvino_checks[0]
    wrong = check.outputs[0].model_copy(update={"max_rel": 0.3, "passed": False})
    failed = report.model_copy(
        update={"openvino_checks": [check.model_copy(update={"outputs": [wrong], "passed": False})]}
    )
    exported.with_name("export.json").write_text(failed.model_dump_json())

    with pytest.warns(ZooWarning, match="running on onnxruntime.*differs from PyTorch"):
        fallback = predictor(card, onnx=exported, registry=hinted("openvino"))

    assert fallback.backend.name == "onnxruntime"


def test_the_export_report_holds_openvinos_checks_beside_onnxruntimes(weights):
    _, _, onnx = weights

    report = ExportReport.model_validate_json(onnx.with_name("export.json").read_text())

    assert len(report.openvino_checks) == len(report.checks) == 2
    assert all(check.passed for check in report.openvino_checks)
    assert report.versions["openvino"].startswith("2026.4")


def test_an_input_of_another_channel_count_is_refused_clearly(weights):
    card, _, onnx = weights
    compiled = zoo.predictor(card, onnx=onnx, backend="openvino")

    with pytest.raises(
        ZooError, match=r"takes image of shape \[\?,3,\?,\?\].*found \[1, 4, 64, 64\]"
    ):
        compiled.forward({"image": torch.zeros(1, 4, 64, 64)})


def test_bench_reports_the_gflops_achieved_beside_the_gmacs(weights):
    card, _, onnx = weights

    report = benchmark(zoo.predictor(card, onnx=onnx, backend="openvino"), warmup=1, steps=2)

    achieved = 2 * report.gmacs / (report.latency_ms_median / 1e3)
    assert report.gmacs > 0 and report.gflops == pytest.approx(achieved, rel=0.01)


@pytest.mark.skipif(not HAS_BF16, reason="this CPU has neither AVX512-BF16 nor AMX")
def test_bench_compare_measures_each_reduced_precision_against_float32(weights):
    card, path, onnx = weights
    shutil.copytree(onnx.parent, cache_folder(card, path, None))  # the export, made already

    reports, failures = compare(
        card, ["eager", "openvino", "openvino-bf16"], batch=1, warmup=0, steps=1, weights=path
    )

    assert failures == {}
    eager, float32, bf16 = reports
    assert eager.accuracy is None and float32.accuracy is None
    assert bf16.accuracy.precision == "bf16" and bf16.accuracy.runtime == "openvino"
    assert 0 < bf16.accuracy.max_relative_error < 0.05 and bf16.accuracy.rows == 1
