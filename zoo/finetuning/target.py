"""The model being fine-tuned: the parent's weights with a new classifier for the data's classes.

Only the plugin knows where its classifier is (:class:`zoo.FeatureHints` ``classifier``) and
which config field sizes it (``classes_field``): the model is built from the parent's config
with that field set to the number of classes (the builder's own initialisation, from the
run's seed), then every parent weight outside the classifier is loaded into it, and a
parent key that finds no place is an error rather than a silently new weight.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import torch
from pydantic import BaseModel
from torch import Tensor, nn

from zoo.architecture import Architecture, submodule
from zoo.cards import Card, Parent
from zoo.errors import FinetuneError, WeightsError
from zoo.registry import Registry, using_registry

CLASSIFICATION = ("image-classification", "video-classification")


@dataclass(frozen=True)
class Source:
    """Where the parent comes from: what :func:`zoo.load` is given."""

    name: str | Card
    weights: str | PathLike[str] | None = None
    layout: str | None = None
    pretrained: bool = True


def check_supported(card: Card, architecture: Architecture, registry: Registry) -> None:
    """Refuse, in one line naming what is supported, a model fine-tuning cannot train."""
    hints = architecture.features
    if card.task not in CLASSIFICATION or hints.classifier is None:
        supported = sorted(a.name for a in registry.architectures() if a.features.classifier)
        why = "" if hints.classifier else ", whose plugin declares no FeatureHints.classifier"
        raise FinetuneError(
            f"{card.name} is {card.task} (architecture {architecture.name!r}{why}); zoo finetune "
            "trains image and video classifiers whose plugin says where the classifier is "
            f"(FeatureHints.classifier): architectures {', '.join(supported) or 'none'}"
        )
    derived = [
        spec.channel_order
        for spec in card.inputs
        if spec.channel_order in architecture.inference.derived_inputs
    ]
    if len(card.inputs) != 1 or derived:
        names = ", ".join(f"{spec.name} ({spec.channel_order})" for spec in card.inputs)
        why = f"{', '.join(derived)} computed from the frames" if derived else "several inputs"
        raise FinetuneError(
            f"{card.name} takes {names}: {why}; fine-tuning trains models of one input of "
            "decoded pixels (fine-tune an RGB stream on its own)"
        )


def new_config(card: Card, architecture: Architecture, classes: int) -> BaseModel:
    return architecture.validate_config(
        {**card.config, architecture.features.classes_field: classes}
    )


def build_model(
    architecture: Architecture,
    config: BaseModel,
    parent_state: Mapping[str, Tensor] | None,
    seed: int,
    registry: Registry | None,
) -> nn.Module:
    """The new model on the CPU: the builder's init from ``seed``, then the parent's weights."""
    from zoo.loading import run_builder

    with torch.random.fork_rng(devices=[]), using_registry(registry) if registry else nullcontext():
        torch.manual_seed(seed)
        model = run_builder(architecture, config)
    if parent_state is not None:
        load_all_but_classifier(model, parent_state, classifier_prefix(model, architecture))
    return model


def classifier_module(model: nn.Module, architecture: Architecture) -> nn.Module:
    return submodule(model, architecture.features.classifier or "")


def classifier_prefix(model: nn.Module, architecture: Architecture) -> str:
    """The state-dict prefix of the classifier (``blocks.-1`` style paths made literal)."""
    target = classifier_module(model, architecture)
    for name, module in model.named_modules():
        if module is target:
            return f"{name}."
    raise FinetuneError(f"{architecture.features.classifier} is not a module of the model")


def load_all_but_classifier(model: nn.Module, state: Mapping[str, Tensor], prefix: str) -> None:
    kept = {key: value for key, value in state.items() if not key.startswith(prefix)}
    expected = model.state_dict()
    mismatched = [
        f"{key}: {tuple(value.shape)} in the parent, {tuple(expected[key].shape)} here"
        for key, value in kept.items()
        if key in expected and value.shape != expected[key].shape
    ]
    missing = [key for key in expected if key not in kept and not key.startswith(prefix)]
    unexpected = [key for key in kept if key not in expected]
    if mismatched or missing or unexpected:
        problems = mismatched + [f"missing {key}" for key in missing]
        problems += [f"unexpected {key}" for key in unexpected]
        raise WeightsError(
            "the parent's weights do not fit the model with a new classifier: "
            + "; ".join(problems[:6])
        )
    model.load_state_dict(kept, strict=False)


def freeze_until(model: nn.Module, path: str) -> list[str]:
    """Freeze every parameter up to and including those of module ``path``, in registration
    order (the stem and the first stages); return their names."""
    try:
        module = submodule(model, path)
    except ValueError as error:
        raise FinetuneError(f"freeze_until: {error}") from None
    own = {id(parameter) for parameter in module.parameters()}
    named = list(model.named_parameters())
    last = max((i for i, (_, parameter) in enumerate(named) if id(parameter) in own), default=None)
    if last is None:
        raise FinetuneError(f"freeze_until: module {path!r} has no parameters to freeze")
    if last == len(named) - 1:
        raise FinetuneError(
            f"freeze_until {path!r} freezes every parameter; name an earlier module, or use "
            "mode linear to train the classifier alone"
        )
    for _, parameter in named[: last + 1]:
        parameter.requires_grad_(False)
    return [name for name, _ in named[: last + 1]]


def frozen_modules_to_eval(model: nn.Module) -> None:
    """Modules whose every parameter is frozen keep their running statistics (BatchNorm)."""
    for module in model.modules():
        parameters = list(module.parameters())
        if parameters and not any(parameter.requires_grad for parameter in parameters):
            module.eval()


def linear_head(classifier: nn.Module, width: int, classes: int) -> nn.Linear:
    """A Linear (width -> classes) holding the classifier's weights, for linear mode."""
    weight = getattr(classifier, "weight", None)
    if not isinstance(weight, Tensor) or weight.numel() != width * classes:
        found = "no weight" if weight is None else f"a weight of shape {tuple(weight.shape)}"
        raise FinetuneError(
            f"linear mode trains a linear classifier on the pooled features ({width} wide, "
            f"{classes} classes), but the classifier has {found}; use mode full"
        )
    bias = getattr(classifier, "bias", None)
    head = nn.Linear(width, classes, bias=bias is not None)
    with torch.no_grad():
        head.weight.copy_(weight.reshape(classes, width))
        if bias is not None:
            head.bias.copy_(bias)
    return head


def fold_standardization(head: nn.Linear, mean: Tensor, std: Tensor) -> nn.Linear:
    """``head((x - mean) / std)`` as one Linear on ``x``."""
    folded = nn.Linear(head.in_features, head.out_features, bias=True)
    with torch.no_grad():
        weight = head.weight / std.to(head.weight)
        bias = head.bias if head.bias is not None else weight.new_zeros(head.out_features)
        folded.weight.copy_(weight)
        folded.bias.copy_(bias - weight @ mean.to(weight))
    return folded


def install_head(classifier: nn.Module, head: nn.Linear) -> None:
    """The trained linear head's weights into the model's own classifier."""
    weight, bias = classifier.weight, getattr(classifier, "bias", None)
    assert isinstance(weight, Tensor)  # linear_head checked it
    with torch.no_grad():
        weight.copy_(head.weight.reshape(weight.shape))
        if isinstance(bias, Tensor):
            bias.copy_(head.bias)


def parent_record(
    source: Source, card: Card, architecture: Architecture, registry: Registry
) -> Parent:
    """The parent as the new card names it, with the hash of the weights it started from."""
    name = source.name.name if isinstance(source.name, Card) else str(source.name)
    if source.weights is not None:
        weights, digest = str(source.weights), _sha256(Path(source.weights))
    elif not source.pretrained:
        weights, digest = "random", None
    else:
        weights, digest = "pretrained", _card_weights_sha256(name, card, architecture, registry)
    return Parent(model=name, architecture=architecture.name, weights=weights, sha256=digest)


def _card_weights_sha256(
    name: str, card: Card, architecture: Architecture, registry: Registry
) -> str | None:
    """The sha256 of a one-file source: a folder's file, the card's own, else the fetched
    (and verified) file's. None for weights assembled from several parts."""
    from zoo import weights as weight_store
    from zoo.weights.folder import is_folder_name, read_folder

    if is_folder_name(name):
        return _sha256(read_folder(name)[1])
    if len(card.weights) == 1 and card.weights[0].sha256:
        return card.weights[0].sha256
    if name.startswith(weight_store.HF_HUB_PREFIX) or len(card.weights) != 1:
        return None
    version = registry.plugin_version(architecture)
    parts = weight_store.fetch(card, architecture, registry, plugin_version=version)
    files = [part for part in parts if isinstance(part, weight_store.WeightsFile)]
    return _sha256(files[0].path) if len(parts) == 1 and files else None


def _sha256(path: Path) -> str:
    from zoo.weights import sha256_of

    return sha256_of(path)
