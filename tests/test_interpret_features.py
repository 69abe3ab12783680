"""Feature space: pooled embeddings, cosine neighbours, and 2-D maps that separate groups."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from interpret_models import SquareNet
from PIL import Image, ImageSequence
from test_features import SMALL

import zoo
from zoo.interpret import InterpretError, embed, feature_map, nearest

CLIP = Path(__file__).parent / "data" / "v_CricketShot_g04_c01_rgb.gif"


def cricket_frames(every: int = 2, size: int = 64) -> torch.Tensor:
    """Every ``every``-th frame of the sample clip, (N, 3, size, size) in [0, 1]."""
    with Image.open(CLIP) as gif:
        frames = [
            np.asarray(frame.convert("RGB").resize((size, size)))
            for frame in ImageSequence.Iterator(gif)
        ]
    return torch.tensor(np.stack(frames[::every])).permute(0, 3, 1, 2).float() / 255


@pytest.fixture(scope="module")
def clean_and_noised() -> tuple[torch.Tensor, list[str]]:
    """Embeddings of the clip's frames and of noised copies, by a small random ResNeXt."""
    torch.manual_seed(0)
    model = zoo.build("resnext", SMALL["resnext"][0]).eval()
    frames = cricket_frames()
    noised = (frames + 0.15 * torch.randn(frames.shape)).clamp(0, 1)
    groups = ["clean"] * len(frames) + ["noised"] * len(noised)
    return embed(model, torch.cat([frames, noised])), groups


def test_embeddings_are_the_plugins_pooled_features():
    torch.manual_seed(0)
    model = zoo.build("resnext", SMALL["resnext"][0]).eval()
    images = torch.randn(3, 3, 64, 64)

    features = embed(model, images)

    with torch.no_grad():
        assert torch.equal(model.fc(features), model(images))
    assert features.shape == (3, model.fc.in_features)


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_a_2d_map_separates_clean_frames_from_noised_copies(clean_and_noised, method):
    features, groups = clean_and_noised
    names = [f"{group}-{i}" for i, group in enumerate(groups)]

    mapped = feature_map(features, names, groups, method=method)

    assert mapped.chance == 0.5
    assert mapped.knn_accuracy >= 0.9
    assert {p.group for p in mapped.points} == {"clean", "noised"}
    assert json.loads(mapped.model_dump_json())["method"] == method


def test_the_separation_measure_stays_near_chance_for_a_random_split(clean_and_noised):
    """Control: the k-NN accuracy is a measurement, not a constant that every map passes."""
    features, groups = clean_and_noised
    shuffled = list(np.random.default_rng(0).permutation(groups))

    mapped = feature_map(features, [str(i) for i in range(len(groups))], shuffled, method="pca")

    assert mapped.knn_accuracy < 0.7


def test_nearest_neighbours_rank_by_cosine_similarity():
    bank = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0]])

    found = nearest(torch.tensor([3.0, 0.1]), bank, ["east", "north", "north-east", "west"], k=3)

    assert [n.name for n in found] == ["east", "north-east", "north"]
    assert found[0].similarity == pytest.approx(3 / (3**2 + 0.1**2) ** 0.5)


def test_a_model_without_pooled_features_is_refused_clearly():
    with pytest.raises(InterpretError, match=r"SquareNet declares no pooled features.*pooled="):
        embed(SquareNet(), torch.rand(1, 3, 24, 24))


def test_a_map_needs_one_group_per_vector():
    with pytest.raises(InterpretError, match=r"one name and one group per feature vector \(4\)"):
        feature_map(np.zeros((4, 3)), ["a"] * 4, ["x"] * 3)
