"""zoo.export on every registered model: the file, its checks, its metadata, its report.

Every card's small test graph is exported and checked by the conformance kit
(tests/test_builtin_plugins.py); here every distinct graph is exported at the card's own
config in the heavy run, and an image, a video and a detector model at the small config
in the default run. Each export is checked by the exporter itself (onnx.checker, then
onnxruntime and OpenVINO against PyTorch at the export shapes and at other sizes of every
dynamic axis); these tests then check what it wrote, independently of its report.
"""

from __future__ import annotations

import importlib.util
import json
from importlib.metadata import version
from pathlib import Path

import onnx
import onnxruntime
import pytest

import zoo
from zoo.cards import Card
from zoo.exporters.plan import support_summary
from zoo.exporters.report import ExportReport
from zoo.output import RECORD
from zoo.registry import Registry
from zoo.small import small_card

BUILTIN = Registry.from_entry_points()
CARDS = BUILTIN.cards()
EXPORT_PAGE = Path(__file__).resolve().parents[1] / "docs" / "tasks" / "export.md"


#: Cards whose full-size graph is made of others' graphs, each exported at full size here
#: (their composition is exported at the small config): the two-stream I3D is its RGB and
#: flow towers and a mean, two minutes of exporting what the towers' tests export.
COMPOSED_OF_EXPORTED_PARTS = {"i3d-kinetics400-two-stream"}


def distinct_graphs(cards: list[Card]) -> list[Card]:
    """One card per (architecture, config): cards that differ only in weights share a graph."""
    seen, chosen = set(), []
    for card in cards:
        key = (card.architecture, json.dumps(card.config, sort_keys=True))
        if key not in seen:
            seen.add(key)
            chosen.append(card)
    return chosen


def assert_a_checked_self_contained_export(report: ExportReport, card: Card, folder: Path):
    """What every export must satisfy, read back from the files rather than the report."""
    hints = BUILTIN.architecture(card.architecture).export
    assert sorted(path.name for path in folder.iterdir()) == [
        RECORD,  # zoo's record of the files it wrote (zoo.output)
        "card.yaml",
        "export.json",
        "model.onnx",
    ]
    assert not list(folder.parent.glob(".*partial")), "the staging folder was left behind"
    model = onnx.load(folder / "model.onnx", load_external_data=False)
    external = [
        t.name for t in model.graph.initializer if onnx.external_data_helper.uses_external_data(t)
    ]
    assert external == [], "model.onnx must hold its weights itself"
    assert [value.name for value in model.graph.input] == [spec.name for spec in card.inputs]
    assert [value.name for value in model.graph.output] == hints.output_names
    for value in model.graph.input:
        dims = value.type.tensor_type.shape.dim
        assert value.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
        for index in hints.dynamic_axes.get(value.name, {}):
            if not (hints.batch and index == 0):
                assert dims[index].dim_param, f"{value.name} axis {index} should be dynamic"
    assert Card.from_yaml(folder / "card.yaml") == card
    assert ExportReport.model_validate_json((folder / "export.json").read_text()) == report
    assert report.passed and report.checked
    expected_checks = 2 if report.dynamic else 1
    assert len(report.checks) == expected_checks
    if report.dynamic:
        export_shapes, other_shapes = (check.input_shapes for check in report.checks)
        assert export_shapes != other_shapes, "the second check must vary the dynamic axes"
    for check in report.checks:
        assert [output.name for output in check.outputs] == hints.output_names
        assert all(output.max_rel <= report.tolerance for output in check.outputs)
    assert_openvino_agrees(report, card)


def assert_openvino_agrees(report: ExportReport, card: Card) -> None:
    """OpenVINO ran the same checks within the same tolerance, where its plugin uses it.

    A declared failure depends on the weights and input (FPN's borderline detection on its
    small random model, checked strictly by the conformance kit), so a full-size model
    may pass or fail it: nothing is asserted there.
    """
    if importlib.util.find_spec("openvino") is None:
        return  # the export checks with OpenVINO only where it is installed
    if "runs_on_openvino" in BUILTIN.architecture(card.architecture).expected_failures:
        return
    checks = report.openvino_checks
    assert len(checks) == len(report.checks), "OpenVINO did not compile the export"
    for check in checks:
        assert all(output.passed for output in check.outputs), check


@pytest.fixture(scope="module")
def small_export(tmp_path_factory: pytest.TempPathFactory):
    """Each card's small model exported once per module: (card, report, folder) by name."""
    done: dict[str, tuple[Card, ExportReport, Path]] = {}

    def export(name: str) -> tuple[Card, ExportReport, Path]:
        if name not in done:
            card = small_card(name, BUILTIN)
            folder = tmp_path_factory.mktemp("export") / "out"
            done[name] = (card, zoo.export(card, folder, pretrained=False), folder)
        return done[name]

    return export


@pytest.mark.parametrize("name", ["resnet50.tv_in1k", "i3d-kinetics400-rgb", "fpn-resnet50-coco"])
def test_an_export_folder_is_checked_and_self_contained(name, small_export):
    """zoo's side of every export, on an image, a video and a detector's small models (the
    other tests here export them anyway); every card's small graph is exported and checked
    by the conformance kit (tests/test_builtin_plugins.py), every card's full size below."""
    small, report, folder = small_export(name)

    assert_a_checked_self_contained_export(report, small, folder)
    assert report.weights == "random"


@pytest.mark.heavy
@pytest.mark.parametrize(
    "card",
    [card for card in distinct_graphs(CARDS) if card.name not in COMPOSED_OF_EXPORTED_PARTS],
    ids=lambda card: card.name,
)
def test_every_registered_model_exports_at_its_cards_config_and_matches_pytorch(card, tmp_path):
    report = zoo.export(card, tmp_path / "out", pretrained=False)

    assert_a_checked_self_contained_export(report, card, tmp_path / "out")


def test_the_file_carries_the_cards_preprocessing_and_labels_in_its_metadata(small_export):
    card, _, folder = small_export("resnet50.tv_in1k")

    session = onnxruntime.InferenceSession(folder / "model.onnx")
    metadata = session.get_modelmeta().custom_metadata_map
    (image,) = json.loads(metadata["zoo.inputs"])
    assert metadata["zoo.card"] == card.name
    assert metadata["zoo.task"] == "image-classification"
    assert metadata["zoo.version"] == version("zoo-models")
    assert image == {
        "name": "image",
        "layout": "NCHW",
        "channels": 3,
        "channel_order": "RGB",
        "frames": None,
        "fps": None,
        "sampling": None,
        "size": [64, 64],
        "resize": 256,
        "crop": "center",
        "interpolation": "bilinear",
        "value_range": [0.0, 1.0],
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
    }
    assert json.loads(metadata["zoo.labels"]) == card.label_names()
    assert json.loads(metadata["zoo.outputs"]) == ["logits"]


def test_fp16_keeps_float32_inputs_and_outputs_and_states_its_looser_tolerance(tmp_path):
    card = small_card("resnet50.tv_in1k", BUILTIN)
    hints = BUILTIN.architecture(card.architecture).export

    report = zoo.export(card, tmp_path / "out", pretrained=False, precision="fp16")

    model = onnx.load(tmp_path / "out" / "model.onnx")
    weights = [t for t in model.graph.initializer if len(t.dims) > 1]
    assert weights and all(t.data_type == onnx.TensorProto.FLOAT16 for t in weights)
    assert {info.dtype for info in (*report.inputs, *report.outputs)} == {"float32"}
    assert report.precision == "fp16" and report.tolerance == hints.fp16_tolerance > hints.tolerance
    largest = max(output.max_rel for check in report.checks for output in check.outputs)
    assert hints.tolerance < largest <= hints.fp16_tolerance, "float16 should differ, within bounds"


def test_a_static_export_fixes_every_axis_and_is_checked_once(tmp_path):
    card = small_card("resnet50.tv_in1k", BUILTIN)

    report = zoo.export(card, tmp_path / "out", pretrained=False, dynamic=False, batch=3)

    assert report.inputs[0].shape == [3, 3, 64, 64]
    assert report.outputs[0].shape == [3, 1000]
    assert not report.dynamic and len(report.checks) == 1


def test_the_detector_is_exported_whole_by_the_recorded_fallback_exporter(small_export):
    _, report, _ = small_export("fpn-resnet50-coco")

    assert report.exporter == "legacy"
    assert "batched_nms" in report.exporter_reason
    assert report.inputs[0].shape == [1, 3, 48, 64]
    assert [output.shape for output in report.outputs] == [
        ["detections", 4],
        ["detections"],
        ["detections"],
    ]
    assert [output.dtype for output in report.outputs] == ["float32", "float32", "int64"]


def test_a_clip_length_is_dynamic_where_the_network_allows_it(small_export):
    _, report, _ = small_export("i3d-kinetics400-rgb")

    assert [info.shape for info in report.inputs] == [["batch", 3, "video_frames", 193, 193]]
    assert report.checks[0].input_shapes == {"video": [2, 3, 18, 193, 193]}
    assert report.checks[1].input_shapes == {"video": [1, 3, 9, 193, 193]}


def test_the_fpn_backbone_exports_its_five_maps_at_any_size(small_export):
    _, report, _ = small_export("resnet50-fpn")

    assert [output.name for output in report.outputs] == ["p2", "p3", "p4", "p5", "pool"]
    assert report.outputs[0].shape == ["batch", 256, "p2_height", "p2_width"]
    shapes = {output.name: output.shape for output in report.checks[1].outputs}
    assert shapes["p2"] == [1, 256, 8, 24] and shapes["pool"] == [1, 256, 1, 2]


def test_the_export_page_says_what_every_models_graph_takes():
    readme = EXPORT_PAGE.read_text(encoding="utf-8")

    for card in CARDS:
        support = support_summary(card, BUILTIN.architecture(card.architecture).export)
        assert f"| `{card.name}` | {card.architecture} | {card.task} | {support} |" in readme
