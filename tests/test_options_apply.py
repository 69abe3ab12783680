"""An option that cannot apply is refused in one line, never ignored, in Python and the CLI.

The checks live in the library (the predictor factory, the pre-processing, the export
pipeline, the interpretation pipeline, :func:`zoo.load`), so a Python caller and a
command-line user meet the same refusal; :class:`zoo.errors.OptionError` spells the option
``name=`` for the one and ``--name`` for the other. Every refusal here comes before a
model is built.
"""

from __future__ import annotations

import logging
import math
import sys

import numpy as np
import onnx
import pytest
import torch
from onnx import helper

import zoo
from zoo.errors import ArgumentError, InterpretError, OptionError, UnknownNameError
from zoo.exporters.pipeline import _check_written_opset, _collected_warnings
from zoo.inference.factory import choose_backend
from zoo.interpret.pipeline import attack_file, explain_file
from zoo.interpret.subject import check_request
from zoo.small import small_card
from zoo.testing import plugin_checks


def test_an_option_error_spells_the_option_as_python_and_as_the_command_line_do():
    error = OptionError("{memory_format} sets how {backend} torch runs", "memory_format", "backend")

    assert str(error) == "memory_format= sets how backend= torch runs"
    assert error.for_command_line() == "--memory-format sets how --backend torch runs"


# --- the predictor -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "options", "message"),
    [
        ("convlstm-moving-digits", {"clips": 3},
         "clips= sets how many clips (or frames) are averaged, and convlstm-moving-digits is a "
         "video model that sees the last 10 frames"),
        ("i3d-kinetics400-rgb", {"clips": 3}, "video model that sees the whole video as one clip"),
        ("detr-resnet50-coco", {"clips": 2}, "takes still images (object-detection)"),
        ("c3d-sports1m", {"clips": 0}, "clips= must be a whole number of at least 1, found 0"),
        ("c3d-sports1m", {"memory_format": "nhwc"},
         "memory_format= 'nhwc' is not one of contiguous, channels_last"),
        ("c3d-sports1m", {"backend": "tensorrt"},
         "backend= 'tensorrt' is not one of torch, onnxruntime, openvino"),
        ("c3d-sports1m", {"backend": "onnxruntime", "memory_format": "channels_last"},
         "memory_format= sets how PyTorch runs the model; onnxruntime runs the exported graph"),
        ("c3d-sports1m", {"backend": "openvino", "compile": True, "memory_format": "contiguous"},
         "memory_format= and compile= set how PyTorch runs the model; openvino runs"),
        ("c3d-sports1m", {"calibrate": "images/"},
         "calibrate= are inputs for precision= int8, which was not asked"),
        ("c3d-sports1m", {"backend": "torch", "onnx": "model.onnx"},
         "onnx= names a file for an ONNX backend= (onnxruntime, openvino), not torch"),
    ],
)  # fmt: skip
def test_a_predictor_option_that_cannot_apply_is_refused_before_anything_loads(
    model, options, message, monkeypatch
):
    monkeypatch.setattr("zoo.loading.load", pytest.fail)

    with pytest.raises(OptionError) as refused:
        zoo.predictor(model, pretrained=False, **options)

    assert message in str(refused.value)


def test_a_pytorch_only_setting_chooses_pytorch_where_onnxruntime_is_the_default():
    hints = zoo.InferenceHints(backend="onnxruntime")

    assert choose_backend(None, hints, True, "fp32", None, None) == "onnxruntime"
    assert choose_backend(None, hints, True, "fp32", None, None, "channels_last") == "torch"


@pytest.fixture(scope="module")
def small_predictor():
    return zoo.predictor(small_card("resnet50.tv_in1k"), pretrained=False, backend="torch")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"topk": 0}, "topk= must be a whole number of at least 1, found 0"),
        ({"batch_size": 0}, "batch_size= must be a whole number of at least 1, found 0"),
        ({"threshold": math.nan}, "threshold= must be a score between 0 and 1, found nan"),
        ({"threshold": 1.5}, "threshold= must be a score between 0 and 1, found 1.5"),
    ],
)
def test_a_predictor_call_checks_its_options_as_the_cli_does(small_predictor, options, message):
    image = np.zeros((32, 32, 3), dtype=np.uint8)

    with pytest.raises(OptionError, match=message.replace("(", r"\(")):
        small_predictor(image, **options)


# --- explain and attack --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("run", "options", "message"),
    [
        (explain_file, {"method": "gradcam", "baseline": 0.2},
         "baseline= belongs to method= occlusion, not gradcam"),
        (explain_file, {"method": "gradcam", "window": (8, 8), "stride": (4, 4)},
         "window= and stride= belong to method= occlusion, not gradcam"),
        (explain_file, {"method": "occlusion", "layer": "layer4"},
         "layer= belongs to method= gradcam, not occlusion"),
        (explain_file, {"method": "occlusion", "baseline": math.nan},
         "baseline= must be between 0 and 1, found nan"),
        (explain_file, {"target": 5000}, "target class 5000 is out of range (0 to 999)"),
        (attack_file, {"method": "fgsm", "step_size": 0.1},
         "step_size= belongs to method= pgd, not fgsm"),
        (attack_file, {"method": "fgsm", "steps": 5}, "steps= belongs to method= pgd, not fgsm"),
        (attack_file, {"eps": math.inf}, "eps= must be a finite number of at least 0, found inf"),
        (attack_file, {"method": "pgd", "step_size": math.nan},
         "step_size= must be a finite number of at least 0, found nan"),
        (attack_file, {"target": -1}, "target class -1 is out of range (0 to 999)"),
    ],
)  # fmt: skip
def test_an_interpretation_option_for_another_method_or_out_of_range_is_refused(
    run, options, message, tmp_path, monkeypatch
):
    monkeypatch.setattr("zoo.interpret.subject.seeded_predictor", pytest.fail)

    with pytest.raises((OptionError, InterpretError)) as refused:
        run("resnet50.tv_in1k", "photo.png", tmp_path / "out", pretrained=False, **options)

    assert message in str(refused.value)
    assert list(tmp_path.iterdir()) == []


def test_a_target_past_the_last_class_is_refused_from_the_card():
    card = zoo.card("c3d-sports1m")

    assert check_request(card, "gradcam", 486) == 486
    with pytest.raises(InterpretError, match=r"out of range \(0 to 486\): c3d-sports1m scores 487"):
        check_request(card, "occlusion", "487")


# --- export --------------------------------------------------------------------------------------


@pytest.mark.parametrize("opset", [99, 0, 6])
def test_an_opset_that_does_not_exist_is_refused_before_the_model_is_built(
    opset, tmp_path, monkeypatch
):
    monkeypatch.setattr("zoo.exporters.pipeline.load", pytest.fail)

    with pytest.raises(OptionError, match=f"opset= {opset} is not an opset zoo can export to"):
        zoo.export("c3d", tmp_path / "out", pretrained=False, opset=opset)

    assert list(tmp_path.iterdir()) == []


def test_an_opset_the_exporter_silently_replaced_is_refused():
    graph = helper.make_graph([], "g", [], [])
    written = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    hints = zoo.ExportHints(output_names=["logits"])

    _check_written_opset(written, 18, hints)
    with pytest.raises(OptionError, match=r"at opset= 9 \(it wrote opset 18 instead\)"):
        _check_written_opset(written, 9, hints)
    assert onnx.defs.onnx_opset_version() >= 18


def test_what_torch_onnx_logs_during_an_export_goes_to_the_report_not_the_terminal(capfd):
    with _collected_warnings() as caught:
        logging.getLogger("torch.onnx._internal.exporter._compat").warning("Setting opset 18")
        print("printed by an exporter", file=sys.stderr)

    assert capfd.readouterr().err == ""
    assert any("Setting opset 18" in line for line in caught.lines())
    assert "printed by an exporter" in caught.lines()


# --- the public API checks its arguments ---------------------------------------------------------


def test_load_takes_a_dtype_by_name_and_refuses_what_is_not_a_float_dtype():
    model = zoo.load("convlstm-moving-digits", dtype="float16")

    assert {parameter.dtype for parameter in model.parameters()} == {torch.float16}
    for dtype in ("float", "int8", torch.int8):
        with pytest.raises(OptionError, match=r"dtype= is a floating-point torch\.dtype or one of"):
            zoo.load("convlstm-moving-digits", dtype=dtype)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_load_refuses_a_device_that_is_not_here_or_not_a_device():
    with pytest.raises(zoo.ZooError, match="device 'cuda' asked for, but no CUDA device"):
        zoo.load("convlstm-moving-digits", device="cuda")
    with pytest.raises(OptionError, match="device= is a device name such as 'cpu'"):
        zoo.build("convlstm", device=3)
    with pytest.raises(zoo.ZooError, match="unknown device 'gpu0'"):
        zoo.load("convlstm-moving-digits", device="gpu0")


def test_plugin_checks_refuses_what_is_not_a_plugin_name():
    with pytest.raises(ArgumentError, match=r"expects a plugin's entry-point name .* found 5"):
        plugin_checks(5)


def test_a_plugin_that_is_not_installed_says_so_and_how_to_install_it():
    with pytest.raises(UnknownNameError) as unknown:
        plugin_checks("my-net")

    message = str(unknown.value)
    assert message.startswith("unknown plugin 'my-net' (not installed:")
    assert "pip install -e ." in message and "`zoo plugins` lists it" in message
