"""Checks that build models: meta builds, parameter counts, converters, forward, round trips.

Every model here is the small one (``test_config``) except for the parameter
count, which builds the card's own config on the meta device: that costs no
memory and proves the number the card publishes.
"""

from __future__ import annotations

import tempfile
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from zoo.architecture import Architecture, import_string
from zoo.cards import Card
from zoo.conformance import ContractError
from zoo.conformance.examples import (
    SEED,
    example_inputs,
    output_problems,
    small_config,
    synthetic_media,
    wrong_inputs,
)
from zoo.errors import ConfigError
from zoo.small import small_card

if TYPE_CHECKING:
    import torch
    from torch import nn

    from zoo.exporters.report import ExportReport
    from zoo.testing import ArchitectureItem, CardItem


def builds_on_meta(item: ArchitectureItem) -> None:
    """The default and the test config build on the meta device, leaving nothing real behind."""
    from zoo.loading import empty_model

    architecture = item.architecture
    base_label, base = base_config(item)
    for label, config in (
        (base_label, architecture.validate_config(base)),
        ("test_config", small_config(architecture, base)),
    ):
        model = empty_model(architecture, config)
        real = [name for name, tensor in _tensors(model) if not tensor.is_meta]
        if real:
            raise ContractError(
                f"architecture {architecture.name!r} ({label}) built on the meta device has real "
                f"tensors {real[:5]}: __init__ creates them on a fixed device; create them on "
                "the current device, or compute them in forward"
            )
        _check_classifier(architecture, config, model, label)


def _check_classifier(
    architecture: Architecture, config: BaseModel, model: Any, label: str
) -> None:
    """A declared classifier exists and has one output per class of ``classes_field``."""
    from zoo.architecture import submodule

    hints = architecture.features
    if hints.classifier is None:
        return
    where = f"architecture {architecture.name!r} ({label}): FeatureHints"
    classes = getattr(config, hints.classes_field, None)
    if hints.classes_field not in type(config).model_fields:
        raise ContractError(
            f"{where}.classes_field {hints.classes_field!r} is not a field of its config"
        )
    try:
        weight = getattr(submodule(model, hints.classifier), "weight", None)
    except ValueError as error:
        raise ContractError(f"{where}.classifier: {error}") from None
    if weight is None or (classes is not None and weight.shape[0] != classes):
        found = "no weight" if weight is None else f"weight {tuple(weight.shape)}"
        raise ContractError(
            f"{where}.classifier {hints.classifier!r} has {found}; expected one row per class "
            f"({hints.classes_field} = {classes})"
        )


def base_config(item: ArchitectureItem) -> tuple[str, Mapping[str, Any]]:
    """What an architecture is checked at: its defaults, or, where its config has fields
    without one (a video model names the image model it is built around), the config of
    the plugin's first card of it."""
    architecture = item.architecture
    try:
        architecture.validate_config({})
    except ConfigError as error:
        cards = [card for card in item.own_cards() if card.architecture == architecture.name]
        if not cards:
            raise ContractError(
                f"{error}: the architecture has no default config and the plugin no card "
                "of it to take one from"
            ) from None
        return f"card {cards[0].name!r}'s config", cards[0].config
    return "default config", {}


def converters_load_strictly(item: ArchitectureItem) -> None:
    """Each converter maps its example upstream state dict to one that loads strictly."""
    from zoo.loading import assign_state_dict, empty_model
    from zoo.weights import convert_state_dict

    architecture = item.architecture
    config = small_config(architecture, base_config(item)[1])
    problems = []
    for layout in sorted(architecture.converters):
        example = architecture.converter_examples.get(layout)
        if example is None:
            problems.append(f"{layout!r}: no converter_examples entry to prove it with")
            continue
        origin = f"{example}(test_config) in layout {layout!r}"
        try:
            made_for, state = _example(import_string(example)(config), config)
            converted = convert_state_dict(architecture, made_for, dict(state), layout, origin)
            assign_state_dict(empty_model(architecture, made_for), converted, origin)
        except Exception as error:
            problems.append(f"{layout!r}: {type(error).__name__}: {error}")
    if problems:
        raise ContractError(
            f"architecture {architecture.name!r}: converters fail: " + "; ".join(problems)
        )


def parameters_match_card(item: CardItem) -> None:
    """The card's config, built on the meta device, has exactly the card's ``parameters``."""
    from zoo.loading import count_parameters, empty_model

    card = item.card
    found = count_parameters(empty_model(item.architecture, card.config))
    if found != card.parameters:
        raise ContractError(
            f"card {card.name!r} says {card.parameters:,} parameters, its config builds "
            f"{found:,} ({found - card.parameters:+,})"
        )


def forward_matches_card(item: CardItem) -> None:
    """The forward returns the card's outputs and shapes, and refuses mis-shaped input clearly."""
    import torch

    run = small_run(item)
    problems = output_problems(run.outputs, run.card)
    with torch.inference_mode():
        for label, bad in wrong_inputs(run.card, run.inputs).items():
            problems += _refusal_problems(run.model, label, bad)
    if problems:
        raise ContractError(
            f"card {item.card.name!r} (small model, input shapes "
            f"{[tuple(x.shape) for x in run.inputs]}): " + "; ".join(problems)
        )


def state_dict_round_trip(item: CardItem) -> None:
    """A saved state dict loads back strictly (meta build + assign) and gives the same outputs."""
    import torch

    from zoo.loading import build
    from zoo.weights import save_safetensors

    run = small_run(item)
    with tempfile.TemporaryDirectory(prefix="zoo-kit-") as folder:
        path = Path(folder) / "model.safetensors"
        save_safetensors(run.model.state_dict(), path)
        loaded = build(item.architecture, run.card.config, weights=path).eval()
        with torch.inference_mode():  # inside: the loaded tensors map the file
            found = _flat(loaded(*run.inputs))
        reloaded = loaded.state_dict()
        changed = [
            key
            for key, tensor in run.model.state_dict().items()
            if not torch.equal(tensor, reloaded[key])
        ]
        del loaded, reloaded
    if changed:
        raise ContractError(
            f"card {item.card.name!r}: tensors changed on the way back: {changed[:5]}"
        )
    for index, (want, got) in enumerate(zip(_flat(run.outputs), found, strict=True)):
        try:
            torch.testing.assert_close(got, want)
        except AssertionError as error:
            raise ContractError(
                f"card {item.card.name!r}: output {index} differs after loading the saved state "
                f"dict: {str(error).splitlines()[0]}; is a tensor the forward uses missing "
                "from the state dict?"
            ) from None


def exports_to_onnx(item: CardItem) -> None:
    """``zoo.export`` writes an ONNX file that onnxruntime runs as PyTorch does, at two batches,
    whose inputs and outputs are the card's and the hints' names, the declared axes open."""
    report, graph_problems = _small_export(item)
    if graph_problems:
        raise ContractError(f"card {item.card.name!r}: the exported graph {graph_problems[0]}")
    first = small_card(item.card, item.registry).inputs[0]
    batches = sorted(
        {check.input_shapes[first.name][first.layout.index("N")] for check in report.checks}
    )
    if not report.passed or len(batches) < 2:
        raise ContractError(
            f"card {item.card.name!r}: the ONNX export was checked against PyTorch at batch "
            f"size(s) {batches} ({'passed' if report.passed else 'failed'}); the contract is "
            "two batch sizes, so declare the batch axis dynamic in ExportHints"
        )


def runs_on_openvino(item: CardItem) -> None:
    """OpenVINO (float32) runs the exported file as PyTorch does: checked when it is installed."""
    report = small_export(item)
    if not report.openvino_checks:
        raise ContractError(
            f"card {item.card.name!r}: OpenVINO could not compile the exported graph; the "
            "predictor runs onnxruntime instead of it"
        )
    failed = [
        f"{check.name}: {output.describe()}"
        for check in report.openvino_checks
        for output in check.outputs
        if not output.passed
    ]
    if failed:
        raise ContractError(
            f"card {item.card.name!r}: OpenVINO runs the export differently from PyTorch "
            f"(tolerance {report.tolerance:g}): {'; '.join(failed)}"
        )


_EXPORTS: OrderedDict[tuple[int, str], tuple[ExportReport, list[str]]] = OrderedDict()


def small_export(item: CardItem) -> ExportReport:
    """The card's small model exported and checked once for the checks that read the report."""
    return _small_export(item)[0]


def _small_export(item: CardItem) -> tuple[ExportReport, list[str]]:
    """The export's report, and what its written graph breaks of the card and hints (read
    before the temporary folder goes)."""
    from zoo.exporters.pipeline import export

    card = small_card(item.card, item.registry)
    key = (id(item.architecture), card.model_dump_json())
    if key not in _EXPORTS:
        with tempfile.TemporaryDirectory(prefix="zoo-kit-") as folder:
            report = export(card, Path(folder) / "onnx", pretrained=False, registry=item.registry)
            problems = _graph_problems(Path(folder) / "onnx" / "model.onnx", card, item)
            _EXPORTS[key] = (report, problems)
    _EXPORTS.move_to_end(key)
    while len(_EXPORTS) > KEPT_RUNS:
        _EXPORTS.popitem(last=False)
    return _EXPORTS[key]


def _graph_problems(path: Path, card: Card, item: CardItem) -> list[str]:
    """The names and open axes a runtime user relies on, read back from the file."""
    import onnx

    hints = item.architecture.export
    graph = onnx.load(path, load_external_data=False).graph
    inputs = [value.name for value in graph.input]
    outputs = [value.name for value in graph.output]
    problems = []
    if inputs != [spec.name for spec in card.inputs]:
        problems.append(f"takes inputs {inputs}, the card names {[s.name for s in card.inputs]}")
    if outputs != hints.output_names:
        problems.append(f"gives outputs {outputs}, ExportHints names {hints.output_names}")
    for value in graph.input:
        dims = value.type.tensor_type.shape.dim
        if value.type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
            problems.append(f"takes {value.name} in another type than float32")
        fixed_batch = {0} if hints.batch else set()  # the one batch size ExportHints.batch
        for index in set(hints.dynamic_axes.get(value.name, {})) - fixed_batch:
            if index < len(dims) and not dims[index].dim_param:
                problems.append(
                    f"fixes axis {index} of {value.name} that ExportHints.dynamic_axes opens"
                )
    return problems


def predicts(item: CardItem) -> None:
    """The predictor takes a synthetic image or clip of the card's kind to the task's result."""
    from zoo.inference import predictor

    card = small_card(item.card, item.registry)
    predict = predictor(card, pretrained=False, device="cpu", registry=item.registry)
    result = predict(synthetic_media(card))
    expected = _task_result(card.task)
    if not isinstance(result, expected):
        raise ContractError(
            f"card {item.card.name!r}: the predictor returned {type(result).__name__} for a "
            f"{card.task} card, expected {expected.__name__}"
        )


def hf_model_card_round_trip(item: CardItem) -> None:
    """The card renders to a Hugging Face model card (as ``zoo push`` publishes it) and back."""
    from huggingface_hub import ModelCard

    from zoo.modelcard import from_hf_model_card, to_hf_model_card

    card = item.card
    back = from_hf_model_card(ModelCard(str(to_hf_model_card(card))), origin=card.name)
    if back != card:
        fields = type(card).model_fields
        changed = [name for name in fields if getattr(back, name) != getattr(card, name)]
        raise ContractError(
            f"card {card.name!r} reads back from its Hugging Face model card with different "
            f"{changed}"
        )


@dataclass(frozen=True)
class SmallRun:
    """The small model of a card, seeded, with its example inputs and what it returned."""

    architecture: Architecture
    card: Card
    model: nn.Module
    inputs: list[torch.Tensor]
    outputs: Any


_RUNS: OrderedDict[tuple[int, str], SmallRun] = OrderedDict()
KEPT_RUNS = 2  # a card's forward and round-trip checks follow each other


def small_run(item: CardItem) -> SmallRun:
    """Build and run a card's small model once for the checks that need it, not once each.

    Kept by the architecture object's identity (held by the entry, so never reused)
    and the small card, so another plugin or a changed card never sees a stale run.
    """
    import torch

    card = small_card(item.card, item.registry)
    key = (id(item.architecture), card.model_dump_json())
    run = _RUNS.get(key)
    if run is None or run.architecture is not item.architecture:
        torch.manual_seed(SEED)
        config = item.architecture.validate_config(card.config)
        model = item.architecture.resolve_builder()(config).eval()
        inputs = example_inputs(card)
        with torch.inference_mode():
            outputs = model(*inputs)
        run = SmallRun(item.architecture, card, model, inputs, outputs)
    _RUNS[key] = run
    _RUNS.move_to_end(key)
    while len(_RUNS) > KEPT_RUNS:
        _RUNS.popitem(last=False)
    return run


def _task_result(task: str) -> type:
    """The result type the predictor returns for a task: what the inference layer promises."""
    from zoo.inference import Classification, Detections, Features, Forecast

    return {
        "image-classification": Classification,
        "video-classification": Classification,
        "object-detection": Detections,
        "feature-extraction": Features,
        "video-forecasting": Forecast,
    }[task]


def _refusal_problems(model: nn.Module, label: str, inputs: list[torch.Tensor]) -> list[str]:
    try:
        model(*inputs)
    except ValueError:
        return []
    except Exception as error:
        return [
            f"{label} raised {type(error).__name__} ({str(error).strip()[:120]}) instead of a "
            "ValueError that names the shape the model expects"
        ]
    return [f"{label} (shape {tuple(inputs[0].shape)}) was accepted; expected a ValueError"]


def _example(example: Any, config: BaseModel) -> tuple[BaseModel, Mapping[str, Any]]:
    """A converter example is a state dict for ``config``, or (the config it fits, state dict)."""
    if isinstance(example, tuple):
        return example
    return config, example


def _flat(result: Any) -> list[torch.Tensor]:
    """Every tensor in a forward's result, in a fixed order."""
    import torch

    if isinstance(result, torch.Tensor):
        return [result]
    if isinstance(result, Mapping):
        return [t for key in sorted(result) for t in _flat(result[key])]
    if isinstance(result, tuple | list):
        return [t for value in result for t in _flat(value)]
    return []


def _tensors(model: nn.Module) -> list[tuple[str, torch.Tensor]]:
    return [*model.named_parameters(), *model.named_buffers()]
