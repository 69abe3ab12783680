"""Triton model repositories, validated without a server.

config.pbtxt is parsed with protobuf's text_format into tritonclient's ModelConfig
(unknown fields and enum values are errors there), and its names, types and dims
are checked against the ONNX graph the same export wrote.
"""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

import zoo
from zoo.output import RECORD
from zoo.registry import Registry
from zoo.small import small_card

BUILTIN = Registry.from_entry_points()
ONNX_TYPES = {
    onnx.TensorProto.FLOAT: model_config_pb2.TYPE_FP32,
    onnx.TensorProto.INT64: model_config_pb2.TYPE_INT64,
}


def read_config(folder: Path) -> model_config_pb2.ModelConfig:
    return text_format.Parse((folder / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())


def graph_dims(value: onnx.ValueInfoProto) -> list[int]:
    return [
        d.dim_value if d.HasField("dim_value") else -1 for d in value.type.tensor_type.shape.dim
    ]


def assert_config_matches_the_graph(config: model_config_pb2.ModelConfig, folder: Path) -> None:
    graph = onnx.load(folder / "1" / "model.onnx", load_external_data=False).graph
    batched = config.max_batch_size > 0
    for declared, values in ((config.input, graph.input), (config.output, graph.output)):
        assert [tensor.name for tensor in declared] == [value.name for value in values]
        for tensor, value in zip(declared, values, strict=True):
            dims = graph_dims(value)
            if batched:
                assert dims[0] == -1, f"{value.name}: the batch axis must be dynamic"
                dims = dims[1:]
            assert list(tensor.dims) == dims
            assert tensor.data_type == ONNX_TYPES[value.type.tensor_type.elem_type]


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A video classifier, a forecaster with a dynamic clip length and a detector, one by one."""
    repo = tmp_path_factory.mktemp("models")
    for name in ("c3d-sports1m", "convlstm-moving-digits", "fpn-resnet50-coco"):
        zoo.export(small_card(name, BUILTIN), repo, format="triton", pretrained=False)
    return repo


def test_each_model_is_added_beside_the_ones_already_there(repository):
    assert sorted(path.name for path in repository.iterdir()) == [
        "c3d-sports1m",
        "convlstm-moving-digits",
        "fpn-resnet50-coco",
    ]
    assert sorted(
        str(p.relative_to(repository / "c3d-sports1m"))
        for p in (repository / "c3d-sports1m").rglob("*")
        if p.is_file()
    ) == [
        RECORD,  # zoo's record of the files it wrote (zoo.output)
        "1/model.onnx",
        "card.yaml",
        "config.pbtxt",
        "export.json",
        "labels.txt",
    ]


def test_a_classifier_batches_dynamically_and_names_its_classes(repository):
    folder = repository / "c3d-sports1m"
    config = read_config(folder)

    assert config.name == "c3d-sports1m"
    assert config.platform == "onnxruntime_onnx"
    assert config.max_batch_size == 8
    assert list(config.input[0].dims) == [3, 16, 112, 112]
    assert list(config.output[0].dims) == [487]
    assert config.output[0].label_filename == "labels.txt"
    labels = (folder / "labels.txt").read_text().splitlines()
    assert labels == zoo.card("c3d-sports1m").label_names()
    assert config.dynamic_batching.max_queue_delay_microseconds > 0
    assert config.instance_group[0].count == 1
    assert config.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_AUTO
    assert_config_matches_the_graph(config, folder)


def test_a_dynamic_clip_length_is_minus_one(repository):
    folder = repository / "convlstm-moving-digits"
    config = read_config(folder)

    assert config.max_batch_size == 8
    assert list(config.input[0].dims) == [-1, 1, 32, 32]
    assert list(config.output[0].dims) == [10, 1, 32, 32]
    assert not (folder / "labels.txt").exists() and not config.output[0].label_filename
    assert_config_matches_the_graph(config, folder)


def test_a_fixed_batch_detector_states_every_dim_and_no_batching(repository):
    folder = repository / "fpn-resnet50-coco"
    config = read_config(folder)

    assert config.max_batch_size == 0
    assert not config.HasField("dynamic_batching")
    assert list(config.input[0].dims) == [1, 3, 48, 64]
    assert [list(output.dims) for output in config.output] == [[-1, 4], [-1], [-1]]
    assert [output.data_type for output in config.output] == [
        model_config_pb2.TYPE_FP32,
        model_config_pb2.TYPE_FP32,
        model_config_pb2.TYPE_INT64,
    ]
    assert all(not output.label_filename for output in config.output)
    assert_config_matches_the_graph(config, folder)


def test_the_model_repository_parser_rejects_what_triton_would():
    with pytest.raises(text_format.ParseError):
        text_format.Parse('name: "x"\nplatfrom: "onnxruntime_onnx"', model_config_pb2.ModelConfig())
    with pytest.raises(text_format.ParseError):
        text_format.Parse("input [{ data_type: TYPE_FLOAT32 }]", model_config_pb2.ModelConfig())
