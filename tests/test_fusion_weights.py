"""A fusion model's weights: the backbone's own verified weights, a seeded head, strict reloads.

``zoo.load(card)`` fetches the backbone's weights as the backbone's card says (through the
loopback Hub, sha256-checked) and draws the untrained head from a fixed seed;
``pretrained=False`` fetches nothing; a saved fusion model loads back strictly through the
meta build, without its backbone's card being fetched again.
"""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from fusion_zoo import FusionZoo
from test_weights import hub  # noqa: F401  (fixture)

import zoo
from zoo import publish
from zoo.cards import Card
from zoo.cli import main
from zoo.errors import CardError, WeightsError
from zoo.weights import ModelWeights, fetch, files_of, save_safetensors

MODEL_FILE = "model.safetensors"


@pytest.fixture
def fusion_zoo(hub) -> FusionZoo:  # noqa: F811
    return FusionZoo(hub)


@pytest.fixture
def late_fusion(fusion_zoo) -> Card:
    return fusion_zoo.fusion_card("late-fusion", "tiny-resnext")


def backbone_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {
        k.removeprefix("backbone."): v for k, v in model.state_dict().items() if "head" not in k
    }


def test_loading_a_fusion_card_fetches_the_backbones_weights_through_its_card(
    fusion_zoo, late_fusion
):
    rng_before = torch.get_rng_state()

    first = fusion_zoo.load(late_fusion)
    second = fusion_zoo.load(late_fusion)

    torch.testing.assert_close(
        backbone_state(first), fusion_zoo.reference["tiny-resnext"].state_dict(), rtol=0, atol=0
    )
    assert fusion_zoo.hub.downloads(MODEL_FILE) == 1  # the second load used the cache
    torch.testing.assert_close(first.state_dict(), second.state_dict(), rtol=0, atol=0)
    assert torch.equal(torch.get_rng_state(), rng_before)  # the seeded head left the RNG alone
    assert not first.training


def test_a_corrupted_backbone_file_is_refused_by_the_backbones_sha256(fusion_zoo, late_fusion):
    fusion_zoo.hub.inject(MODEL_FILE, "corrupt")

    with pytest.raises(WeightsError, match=r"late-fusion-tiny-resnext: .*tiny-resnext's: sha256"):
        fusion_zoo.load(late_fusion)


def test_pretrained_false_builds_everything_at_random_and_fetches_nothing(fusion_zoo, late_fusion):
    model = fusion_zoo.load(late_fusion, pretrained=False)

    assert fusion_zoo.hub.downloads(MODEL_FILE) == 0
    reference = fusion_zoo.reference["tiny-resnext"].state_dict()
    assert not torch.equal(backbone_state(model)["conv1.weight"], reference["conv1.weight"])
    assert model(torch.randn(1, 3, 2, 32, 32)).shape == (1, 3)


def test_a_saved_fusion_model_loads_back_strictly_without_its_backbones_card(fusion_zoo, tmp_path):
    card = fusion_zoo.fusion_card("cnn-lstm", "tiny-vit", hidden_size=6)
    trained = fusion_zoo.load(card)
    with torch.no_grad():
        trained.head.fc.weight.add_(1.0)  # as if the head had been trained
    save_safetensors(trained.state_dict(), tmp_path / MODEL_FILE)
    requests = len(fusion_zoo.hub.requests)

    loaded = fusion_zoo.load(card, weights=tmp_path / MODEL_FILE)

    clip = torch.randn(2, 3, 3, 32, 32)
    with torch.inference_mode():
        torch.testing.assert_close(loaded(clip), trained(clip), rtol=0, atol=0)
    assert len(fusion_zoo.hub.requests) == requests


def test_a_saved_fusion_model_missing_its_head_is_refused_with_the_keys(fusion_zoo, tmp_path):
    card = fusion_zoo.fusion_card("early-fusion", "tiny-image", frames=3)
    state = fusion_zoo.load(card).state_dict()
    save_safetensors({k: v for k, v in state.items() if "head" not in k}, tmp_path / MODEL_FILE)

    with pytest.raises(WeightsError, match=r"missing keys \[head\.fc\.bias, head\.fc\.weight\]"):
        fusion_zoo.load(card, weights=tmp_path / MODEL_FILE)


def test_zoo_convert_publishes_a_fusion_model_that_loads_from_the_hub(
    fusion_zoo, tmp_path, monkeypatch
):
    card = fusion_zoo.fusion_card("late-fusion-concat", "tiny-vit", frames=2)
    trained = fusion_zoo.load(card)
    save_safetensors(trained.state_dict(), tmp_path / "trained.safetensors")
    monkeypatch.setattr("zoo.registry._default", fusion_zoo.registry)

    converted = publish.convert(
        card, [tmp_path / "trained.safetensors"], tmp_path / "out", layout="zoo"
    )
    publish.push(converted.path, "me/late-fusion-concat")
    loaded = zoo.load("hf-hub:me/late-fusion-concat")

    clip = torch.randn(1, 3, 2, 32, 32)
    with torch.inference_mode():
        torch.testing.assert_close(loaded(clip), trained(clip), rtol=0, atol=0)


def test_an_image_models_own_file_converts_with_the_backbone_layout(fusion_zoo, tmp_path):
    card = fusion_zoo.fusion_card("early-fusion", "tiny-vit", frames=2)
    image_model = fusion_zoo.reference["tiny-vit"]
    save_safetensors(image_model.state_dict(), tmp_path / "vit.safetensors")

    from_file = fusion_zoo.load(card, weights=tmp_path / "vit.safetensors", layout="backbone")
    from_card = fusion_zoo.load(card)

    torch.testing.assert_close(from_file.state_dict(), from_card.state_dict(), rtol=0, atol=0)
    assert from_file.backbone.patch_embed.proj.in_channels == 6


def test_fetching_a_fusion_card_yields_the_backbones_verified_files(fusion_zoo, late_fusion):
    architecture = fusion_zoo.registry.architecture(late_fusion.architecture)

    (part,) = fetch(late_fusion, architecture, fusion_zoo.registry)

    assert isinstance(part, ModelWeights)
    assert part.card.name == "tiny-resnext"
    assert [file.path.name for file in files_of(part)] == [MODEL_FILE]


def test_a_backbone_without_weights_is_named_in_the_error(fusion_zoo):
    card = fusion_zoo.fusion_card("late-fusion", "tiny-unpublished")

    with pytest.raises(
        WeightsError, match=r"start from tiny-unpublished's: card 'tiny-unpublished' names no"
    ):
        fusion_zoo.load(card)
    assert fusion_zoo.load(card, pretrained=False)(torch.randn(1, 3, 2, 32, 32)).shape == (1, 3)


def test_weights_parts_that_name_each_other_in_a_cycle_are_refused(fusion_zoo):
    looped = fusion_zoo.fusion_card("late-fusion", "tiny-image")
    data = looped.to_data()
    data["weights"] = [{"model": looped.name, "layout": "backbone"}]
    card = Card.from_data(data)
    architecture = fusion_zoo.registry.architecture(card.architecture)

    with pytest.raises(
        WeightsError, match="in a cycle: late-fusion-tiny-image -> late-fusion-tiny-image"
    ):
        fetch(card, architecture, fusion_zoo.registry)


def test_a_weights_part_from_a_model_takes_no_hash_or_format_of_its_own(fusion_zoo, late_fusion):
    data = late_fusion.to_data()
    data["weights"] = [{"model": "tiny-resnext", "layout": "backbone", "sha256": "0" * 64}]

    with pytest.raises(CardError, match="checked as that model's own card says"):
        Card.from_data(data)


def test_a_half_precision_backbone_file_still_gives_a_model_of_one_dtype(fusion_zoo, tmp_path):
    card = fusion_zoo.fusion_card("late-fusion", "tiny-image")
    half = {k: v.half() for k, v in fusion_zoo.reference["tiny-image"].state_dict().items()}
    save_safetensors(half, tmp_path / "half.safetensors")

    model = fusion_zoo.load(card, weights=tmp_path / "half.safetensors", layout="backbone")

    assert {tensor.dtype for tensor in model.state_dict().values()} == {torch.float32}


def test_zoo_pull_fetches_a_fusion_cards_backbone_and_zoo_list_names_it(
    fusion_zoo, late_fusion, monkeypatch
):
    monkeypatch.setattr("zoo.registry._default", fusion_zoo.registry)
    runner = CliRunner()

    pulled = runner.invoke(main, ["pull", late_fusion.name])
    listed = runner.invoke(main, ["list", "late-fusion-*", "--json"])

    assert pulled.exit_code == 0, pulled.output
    assert pulled.output.startswith("tiny-resnext: ")  # the backbone's file, under its name
    assert pulled.output.strip().endswith(MODEL_FILE)
    assert fusion_zoo.hub.downloads(MODEL_FILE) == 1
    weights = {row["name"]: row["weights"] for row in json.loads(listed.output)}
    assert weights[late_fusion.name] == "model:tiny-resnext"
