"""What zoo.export refuses, and that a failed export leaves nothing that looks good.

Refusals that depend only on the card and the hints (sizes, batch, folders) come
before any model is built; a check that fails removes everything it staged.
"""

from __future__ import annotations

import types

import pytest
import torch
from conftest import card_data, cards_plugin
from pydantic import BaseModel, ConfigDict, ValidationError
from torch import nn

import zoo
from zoo.errors import ExportCheckError, ExportError, WeightsError
from zoo.output import RECORD, record_files
from zoo.registry import Registry
from zoo.small import small_card

BUILTIN = Registry.from_entry_points()


class DriftConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ExportsSomethingElse(nn.Module):
    """A forward that computes one thing eagerly and another while being exported."""

    def __init__(self, config: DriftConfig) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 4)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        logits = self.linear(image.mean(dim=(2, 3)))
        return logits * 2 if torch.compiler.is_exporting() else logits


def drifting_plugin() -> types.ModuleType:
    """The ``drift`` architecture: its ONNX graph computes twice what PyTorch does."""
    module = types.ModuleType("drift_plugin")

    @zoo.hookimpl
    def zoo_architectures():
        return [
            zoo.Architecture(
                name="drift",
                builder=f"{__name__}:ExportsSomethingElse",
                config=DriftConfig,
                export=zoo.ExportHints(
                    output_names=["logits"],
                    dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
                ),
            )
        ]

    module.zoo_architectures = zoo_architectures
    return module


@pytest.fixture
def drifting_registry() -> Registry:
    card = card_data(name="drifting", aliases=[], architecture="drift", config={}, parameters=16)
    return Registry.from_plugins({"drift": drifting_plugin(), "cards": cards_plugin("c", card)})


def test_a_graph_that_differs_from_pytorch_fails_with_numbers_and_leaves_nothing(
    drifting_registry, tmp_path
):
    from zoo.exporters.pipeline import export

    with pytest.raises(ExportCheckError, match=r"logits max_abs [\d.e-]+, max_rel 1 ") as caught:
        export("drifting", tmp_path / "out", pretrained=False, registry=drifting_registry)

    assert not caught.value.report.passed
    assert [check.passed for check in caught.value.report.checks] == [False, False]
    assert list(tmp_path.iterdir()) == []


def test_a_failed_export_leaves_the_folder_it_was_to_replace_untouched(drifting_registry, tmp_path):
    from zoo.exporters.pipeline import export

    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "model.onnx").write_text("the previous good export")
    record_files(tmp_path / "out", ["model.onnx"])  # as zoo's own export would have

    with pytest.raises(ExportCheckError):
        export(
            "drifting", tmp_path / "out", pretrained=False, force=True, registry=drifting_registry
        )

    assert (tmp_path / "out" / "model.onnx").read_text() == "the previous good export"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out"]


def test_a_folder_of_the_users_is_refused_unless_forced_and_then_kept_beside_the_export(
    tmp_path,
):
    card = small_card("vit-b16-in1k", BUILTIN)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")

    with pytest.raises(
        ExportError, match=r"out is not empty and not a previous zoo output.*--force"
    ):
        zoo.export(card, tmp_path / "out", pretrained=False)
    zoo.export(card, tmp_path / "out", pretrained=False, force=True, check=False)

    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == [
        RECORD,
        "card.yaml",
        "export.json",
        "model.onnx",
        "notes.txt",
    ]
    assert (tmp_path / "out" / "notes.txt").read_text() == "mine"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out"]


def test_an_empty_existing_folder_is_used(tmp_path):
    (tmp_path / "out").mkdir()

    report = zoo.export(small_card("vit-b16-in1k", BUILTIN), tmp_path / "out", pretrained=False)

    assert (tmp_path / "out" / "model.onnx").stat().st_size == report.size_bytes


def test_an_unwritable_destination_is_refused_before_any_model_is_built(tmp_path, monkeypatch):
    (tmp_path / "a-file").write_text("")
    monkeypatch.setattr("zoo.exporters.pipeline.load", pytest.fail)

    with pytest.raises(ExportError, match=r"cannot write .*a-file/out: Not a directory"):
        zoo.export("vit-b16-in1k", tmp_path / "a-file" / "out", pretrained=False)


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("i3d-kinetics400-rgb", {"frames": 4}, "4 frames is below the 9 frames the i3d network"),
        ("vit-b16-in1k", {"frames": 16}, "frames applies to inputs with a T axis; .* NCHW"),
        ("vit-b16-in1k", {"batch": 1}, "dynamic batch axis must be exported at batch 2 or more"),
        ("fpn-resnet50-coco", {"batch": 2}, "takes batch 1 only .*found batch 2"),
        ("vit-b16-in1k", {"format": "tflite"}, "unknown export format 'tflite'"),
        ("vit-b16-in1k", {"layout": "timm"}, "layout 'timm' describes a weights file"),
    ],
)
def test_sizes_and_options_the_model_cannot_take_are_refused_before_building_it(
    name, options, message, tmp_path, monkeypatch
):
    monkeypatch.setattr("zoo.exporters.pipeline.load", pytest.fail)

    with pytest.raises(ExportError, match=message):
        zoo.export(name, tmp_path / "out", pretrained=False, **options)
    assert not (tmp_path / "out").exists()


def test_a_clip_the_model_itself_refuses_is_reported_with_its_reason(tmp_path):
    card = small_card("c3d-sports1m", BUILTIN)

    with pytest.raises(ExportError, match=r"does not take inputs of shape .*C3D expects clips"):
        zoo.export(card, tmp_path / "out", pretrained=False, frames=8)


def test_a_card_without_weights_exports_with_random_ones_and_says_how_otherwise(tmp_path):
    card = small_card("vit-b16-in1k", BUILTIN)

    with pytest.raises(WeightsError, match=r"names no pretrained weights.*--random.*--weights"):
        zoo.export(card, tmp_path / "out")
    assert zoo.export(card, tmp_path / "out", pretrained=False).passed


def test_export_hints_say_why_they_need_the_legacy_exporter():
    with pytest.raises(ValidationError, match="exporter 'legacy' needs exporter_reason"):
        zoo.ExportHints(exporter="legacy")
    with pytest.raises(ValidationError, match="min_frames 9 exceeds max_frames 8"):
        zoo.ExportHints(min_frames=9, max_frames=8)


def test_hints_written_before_the_export_fields_existed_still_validate():
    hints = zoo.ExportHints(output_names=["logits"], dynamic_axes={"image": {0: "batch"}})

    assert hints.exporter == "dynamo" and hints.tolerance == 1e-4 and hints.batch is None
