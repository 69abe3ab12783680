"""Card validation: valid and invalid cases, generated ones, and every built-in card."""

from __future__ import annotations

import re

import pytest
import yaml
from conftest import card_data
from hypothesis import given, settings
from hypothesis import strategies as st

from zoo.cards import Card, InputSpec
from zoo.errors import CardError


def test_a_valid_card_round_trips_through_yaml(tmp_path):
    path = tmp_path / "toy.yaml"
    path.write_text(Card.from_data(card_data()).to_yaml())

    assert Card.from_yaml(path) == Card.from_data(card_data())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"colour": "red"}, r"colour: Extra inputs are not permitted"),
        ({"task": "dreaming"}, r"task: Input should be .*'dreaming'"),
        ({"parameters": 0}, r"parameters: Input should be greater than or equal to 1"),
        ({"labels": "imagenet22k"}, r"unknown label set 'imagenet22k'"),
        ({"aliases": ["Not Valid"]}, r"alias 'Not Valid' must match"),
        ({"weights": {"filename": "model.safetensors"}}, r"found none"),
        (
            {"weights": {"repo_id": "org/repo", "url": "https://example.org/w.pt"}},
            r"exactly one weights source .*found \['repo_id', 'url'\]",
        ),
        ({"weights": {"repo_id": "org/repo", "sha256": "abc"}}, r"weights\.0\.sha256: String"),
        (
            {"inputs": [{"layout": "NCTHW", "channels": 3, "size": [8, 8]}]},
            r"frames must be given exactly when the layout has a T axis",
        ),
        (
            {"inputs": [{"layout": "NCHW", "channels": 3, "size": [8, 8], "mean": [0.5]}]},
            r"mean and std must be given together",
        ),
        (
            {"inputs": [{"layout": "NCHW", "channels": 3, "size": [8], "std": [1, 1, 1]}]},
            r"inputs\.0\.size",
        ),
        ({"inputs": []}, r"inputs: List should have at least 1 item"),
    ],
)
def test_an_invalid_card_names_the_field_and_what_was_found(tmp_path, change, message):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(card_data(**change)))

    with pytest.raises(CardError, match=message) as caught:
        Card.from_yaml(path)
    assert str(caught.value).startswith(f"{path}: ")


NESTED_SECTIONS = {
    "weights": ({"repo_id": "org/repo", "sha265": "0" * 64}, "weights.0.sha265"),
    "inputs": (
        {"name": "image", "layout": "NCHW", "channels": 3, "size": [8, 8], "means": [0.5] * 3},
        "inputs.0.means",
    ),
    "outputs": ({"name": "logits", "shape": [4], "dtype": "float32"}, "outputs.0.dtype"),
    "metrics": (
        {"name": "top1", "value": 0.7, "dataset": "toy", "split": "val", "source": "x", "url": ""},
        "metrics.0.url",
    ),
    "paper": ({"title": "Toys", "url": "https://example.org", "year": 2024}, "paper.year"),
}


@pytest.mark.parametrize(("section", "where"), NESTED_SECTIONS.items(), ids=NESTED_SECTIONS)
def test_an_unknown_key_inside_a_nested_section_is_rejected_with_its_path(section, where):
    """A misspelt key (``sha265:`` for ``sha256:``) must not be dropped, leaving no hash."""
    value, path = where
    data = card_data(**{section: value if section == "paper" else [value]})

    only_problem = rf"^<card>: {re.escape(path)}: Extra inputs are not permitted \(found: [^;]*\)$"
    with pytest.raises(CardError, match=only_problem):
        Card.from_data(data)


def test_weight_parts_need_distinct_prefixes():
    part = {"repo_id": "org/repo", "prefix": "rgb."}

    with pytest.raises(CardError, match="distinct, non-empty prefixes"):
        Card.from_data(card_data(weights=[part, part]))
    card = Card.from_data(card_data(weights=[part, {**part, "prefix": "flow."}]))
    assert [w.prefix for w in card.weights] == ["rgb.", "flow."]


def test_a_card_file_that_is_not_a_mapping_is_rejected(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- just\n- a list\n")

    with pytest.raises(CardError, match="a card is a mapping, found list"):
        Card.from_yaml(path)


LAYOUTS = st.sampled_from(["NCHW", "NHWC", "NCTHW", "NTCHW", "NCTWH"])


@st.composite
def input_specs(draw: st.DrawFn) -> dict:
    layout = draw(LAYOUTS)
    channels = draw(st.integers(1, 4))
    spec = {
        "layout": layout,
        "channels": channels,
        "size": [draw(st.integers(1, 512)), draw(st.integers(1, 512))],
    }
    if "T" in layout:
        spec["frames"] = draw(st.integers(1, 128))
    if draw(st.booleans()):
        stats = st.lists(st.floats(0.01, 1), min_size=channels, max_size=channels)
        spec["mean"], spec["std"] = draw(stats), draw(stats)
    return spec


@settings(max_examples=200, deadline=None)
@given(spec=input_specs(), batch=st.integers(1, 8))
def test_generated_input_specs_validate_and_give_their_example_shape(spec, batch):
    parsed = InputSpec.model_validate(spec)
    shape = dict(zip(spec["layout"], parsed.example_shape(batch), strict=True))

    assert shape["N"] == batch and shape["C"] == spec["channels"]
    assert (shape["H"], shape["W"]) == tuple(spec["size"])
    assert shape.get("T") == spec.get("frames")


@settings(max_examples=200, deadline=None)
@given(
    key=st.sampled_from(sorted(Card.model_fields)),
    value=st.one_of(st.none(), st.integers(-5, -1), st.lists(st.integers(), max_size=2)),
)
def test_generated_wrong_values_are_errors_that_name_their_field(key, value):
    data = card_data(**{key: value})

    try:
        Card.from_data(data)
    except CardError as error:
        assert key in str(error)
    else:
        optional_fields = {
            *("aliases", "labels", "metrics", "datasets", "paper", "weights", "config"),
            *("parent", "training"),
        }
        assert key in optional_fields, f"{key}={value!r} was accepted"


@settings(max_examples=100, deadline=None)
@given(extra=st.text(st.characters(categories=["Ll"]), min_size=1, max_size=12))
def test_generated_unknown_fields_are_rejected(extra):
    if extra in Card.model_fields:
        return
    with pytest.raises(CardError, match=f"{extra}: Extra inputs are not permitted"):
        Card.from_data(card_data(**{extra: 1}))
