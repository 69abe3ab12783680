"""Feature space: penultimate features, nearest neighbours, and 2-D maps of a collection.

The features are the plugin's ``FeatureHints.pooled`` (what the classifier reads), so
neighbours and maps show what the model itself considers alike. Projections are
scikit-learn's PCA and t-SNE; the k-NN accuracy of the groups in the 2-D map measures
how well the picture separates them, so a map is never only looked at.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo.errors import InterpretError
from zoo.interpret.results import FeatureMap, MapPoint, Neighbour
from zoo.interpret.tensors import Inputs, as_tuple, describe, hints_of

Projection = Literal["pca", "tsne"]


def embed(
    model: nn.Module, input: Inputs, *, pooled: Callable[..., Tensor] | None = None
) -> Tensor:
    """The penultimate features (N, D) of a batch: the plugin's pooled features by default."""
    inputs = as_tuple(input)
    features_of = pooled or _declared_pooled(model)
    with torch.no_grad():
        features = features_of(model, *inputs)
    if features.ndim != 2 or features.shape[0] != inputs[0].shape[0]:
        raise InterpretError(
            f"expected pooled features (N, D) with N={inputs[0].shape[0]}, found "
            f"{tuple(features.shape)}"
        )
    return features


def nearest(
    query: Tensor | np.ndarray, bank: Tensor | np.ndarray, names: Sequence[str], k: int = 5
) -> list[Neighbour]:
    """The ``k`` entries of ``bank`` (M, D) most similar to ``query`` (D,) by cosine."""
    bank_t = torch.as_tensor(np.asarray(bank), dtype=torch.float32)
    query_t = torch.as_tensor(np.asarray(query), dtype=torch.float32).reshape(1, -1)
    if bank_t.ndim != 2 or bank_t.shape[1] != query_t.shape[1] or len(names) != len(bank_t):
        raise InterpretError(
            f"expected a query (D,) and a bank (M, D) with M names, found "
            f"{tuple(query_t.shape[1:])}, {tuple(bank_t.shape)} and {len(names)} names"
        )
    similarity = F.cosine_similarity(bank_t, query_t, dim=1)
    order = similarity.argsort(descending=True)[:k]
    return [Neighbour(name=names[i], similarity=float(similarity[i])) for i in order]


def project(features: Tensor | np.ndarray, method: Projection = "pca", seed: int = 0) -> np.ndarray:
    """(M, D) features -> (M, 2) points by PCA or t-SNE (perplexity fitted to small M)."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    data = np.asarray(features, dtype=np.float32)
    if data.ndim != 2 or len(data) < 3:
        raise InterpretError(
            f"a 2-D map needs at least 3 feature vectors (M, D), found {data.shape}"
        )
    if method == "pca":
        return PCA(n_components=2, random_state=seed).fit_transform(data)
    if method == "tsne":
        perplexity = min(30.0, (len(data) - 1) / 3)
        tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed)
        return tsne.fit_transform(data)
    raise InterpretError(f"expected projection 'pca' or 'tsne', found {method!r}")


def separation(points: np.ndarray, groups: Sequence[str], k: int = 5) -> float:
    """Leave-one-out k-NN accuracy of ``groups`` among ``points``: 1.0 is clean separation.

    ``k`` shrinks to one less than the smallest group, so that a small group can hold a
    majority of a point's neighbours.
    """
    from sklearn.model_selection import LeaveOneOut, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    smallest = int(np.unique(np.asarray(groups), return_counts=True)[1].min())
    neighbours = max(1, min(k, smallest - 1))
    scores = cross_val_score(
        KNeighborsClassifier(n_neighbors=neighbours), points, list(groups), cv=LeaveOneOut()
    )
    return float(scores.mean())


def feature_map(
    features: Tensor | np.ndarray,
    names: Sequence[str],
    groups: Sequence[str],
    method: Projection = "pca",
    seed: int = 0,
) -> FeatureMap:
    """The 2-D map of a collection, with the k-NN accuracy of its groups beside chance."""
    if not len(names) == len(groups) == len(features):
        raise InterpretError(
            f"expected one name and one group per feature vector ({len(features)}), found "
            f"{len(names)} names and {len(groups)} groups"
        )
    points = project(features, method, seed)
    counts = np.unique(np.asarray(groups), return_counts=True)[1]
    several = len(counts) > 1
    return FeatureMap(
        method=method,
        points=[
            MapPoint(name=name, group=group, x=float(x), y=float(y))
            for name, group, (x, y) in zip(names, groups, points, strict=True)
        ],
        knn_accuracy=separation(points, groups) if several else None,
        chance=float(counts.max() / counts.sum()) if several else None,
    )


def _declared_pooled(model: nn.Module) -> Callable[..., Tensor]:
    hints = hints_of(model)
    if hints is None or hints.pooled is None:
        raise InterpretError(
            f"{describe(model)} declares no pooled features (FeatureHints.pooled); "
            "pass pooled=, a function (model, *inputs) -> (N, D)"
        )
    return hints.resolve_pooled()
