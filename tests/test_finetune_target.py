"""The model fine-tuning builds: which classifiers it takes, the new classifier, what it freezes."""

from __future__ import annotations

import pytest
import torch
from finetune_zoo import TINY_RESNEXT
from torch import nn

import zoo
from zoo.errors import FinetuneError
from zoo.finetuning.target import (
    check_supported,
    fold_standardization,
    freeze_until,
    install_head,
    linear_head,
)
from zoo.registry import Registry

BUILT_IN = Registry.from_entry_points()


def test_every_built_in_classifier_says_where_its_classifier_is():
    supported = {a.name for a in BUILT_IN.architectures() if a.features.classifier}

    assert supported == {
        *("c3d", "i3d", "resnext", "vit"),
        *("early-fusion", "late-fusion", "late-fusion-concat", "cnn-lstm"),
    }


@pytest.mark.parametrize(
    "name",
    sorted(
        card.name
        for card in BUILT_IN.cards()
        if card.task.endswith("classification")
        and card.name not in ("i3d-kinetics400-two-stream", "i3d-kinetics400-flow")
    ),
)
def test_every_built_in_classification_card_can_be_fine_tuned(name):
    card = BUILT_IN.card(name)
    check_supported(card, BUILT_IN.architecture(card.architecture), BUILT_IN)


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("i3d-kinetics400-flow", "flow-xy computed from the frames"),
        ("i3d-kinetics400-two-stream", "no FeatureHints.classifier"),
    ],
)
def test_a_flow_or_two_stream_model_is_refused_saying_why(name, why):
    card = BUILT_IN.card(name)

    with pytest.raises(FinetuneError, match=why):
        check_supported(card, BUILT_IN.architecture(card.architecture), BUILT_IN)


def test_a_standardised_head_folds_into_one_linear_layer():
    torch.manual_seed(0)
    head, features = nn.Linear(6, 3), torch.randn(10, 6) * 4 + 2
    mean, std = features.mean(0), features.std(0)

    folded = fold_standardization(head, mean, std)

    with torch.no_grad():
        torch.testing.assert_close(folded(features), head((features - mean) / std))


def test_a_one_by_one_convolution_classifier_takes_a_linear_head():
    """I3D's classifier is a 1x1x1 Conv3d: the same weights, another shape."""
    torch.manual_seed(0)
    classifier = nn.Conv3d(8, 4, kernel_size=1)
    head = linear_head(classifier, width=8, classes=4)
    with torch.no_grad():
        head.weight.mul_(2).add_(1)
        head.bias.fill_(0.5)
    features = torch.randn(5, 8)

    install_head(classifier, head)

    with torch.no_grad():
        from_conv = classifier(features[:, :, None, None, None]).flatten(1)
        torch.testing.assert_close(from_conv, head(features))


def test_a_classifier_of_another_shape_is_refused_for_linear_mode():
    with pytest.raises(FinetuneError, match="use mode full"):
        linear_head(nn.Linear(7, 4), width=8, classes=4)


def test_freeze_until_freezes_that_module_and_everything_before_it():
    model = zoo.build("resnext", TINY_RESNEXT)

    frozen = freeze_until(model, "layer2")

    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert frozen[0] == "conv1.weight" and frozen[-1].startswith("layer2.")
    assert trainable[0].startswith("layer3.") and trainable[-1] == "fc.bias"


def test_zoo_finetune_takes_every_option_with_the_options_default():
    """zoo.finetune spells its options out for the reader; they must not drift from the
    options model (which the command line reads its defaults from)."""
    import inspect

    from zoo.finetuning import FinetuneOptions

    parameters = inspect.signature(zoo.finetune).parameters
    for name, field in FinetuneOptions.model_fields.items():
        assert parameters[name].default == field.default, name
