"""A collection of files in the model's feature space: embeddings, neighbours, a 2-D map.

What ``zoo embed`` calls. Each file goes through the predictor's pre-processing; its
embedding is the plugin's pooled features, averaged over the rows the card's protocol
makes (the clips of a video, the frames an image classifier reads from a video). A folder
given as input stands for the images and videos inside it, and names their group.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from os import PathLike
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field

from zoo.errors import InterpretError
from zoo.interpret.drawing import write_array, write_scatter
from zoo.interpret.embeddings import embed, feature_map, nearest
from zoo.interpret.results import FeatureMap, Neighbour, Result

Colour = Literal["folder", "label"]


class Embedded(Result):
    name: str
    group: str = Field(description="the folder it came from, or its top-1 label")


class EmbeddingReport(Result):
    """What ``zoo embed`` did: the rows of the written array, and neighbours or a map."""

    model: str
    dimension: int
    inputs: list[Embedded] = Field(description="one per row of the array, in its order")
    output: str | None = None
    query: str | None = None
    neighbours: list[Neighbour] | None = None
    map: FeatureMap | None = None
    map_file: str | None = None
    vectors: Any = Field(exclude=True, repr=False, description="(M, D) float32 numpy array")


def media_files(inputs: Iterable[str | PathLike[str]]) -> list[tuple[Path, str]]:
    """Files and the folders' images and videos (sorted), each with its folder's name."""
    from zoo.media import MEDIA_SUFFIXES

    found: list[tuple[Path, str]] = []
    for item in map(Path, inputs):
        if item.is_dir():
            inside = sorted(p for p in item.iterdir() if p.suffix.lower() in MEDIA_SUFFIXES)
            if not inside:
                suffixes = ", ".join(sorted(MEDIA_SUFFIXES))
                raise InterpretError(f"{item}: the folder holds no image or video ({suffixes})")
            found.extend((path, item.name) for path in inside)
        else:
            found.append((item, item.resolve().parent.name))
    return found


def explore(
    name: str,
    inputs: Sequence[str | PathLike[str]],
    *,
    output: Path | None = None,
    query: str | PathLike[str] | None = None,
    k: int = 5,
    map_file: Path | None = None,
    method: Literal["pca", "tsne"] = "pca",
    colour: Colour = "folder",
    weights: str | PathLike[str] | None = None,
    layout: str | None = None,
    pretrained: bool = True,
    device: str = "auto",
    progress: bool = False,
) -> EmbeddingReport:
    """Embed ``inputs``; write the (M, D) array, find the ``query``'s ``k`` nearest among
    them (itself excluded), draw their 2-D map coloured by folder or by top-1 label."""
    from zoo.interpret.subject import seeded_predictor

    predictor = seeded_predictor(
        name, device=device, weights=weights, layout=layout, pretrained=pretrained
    )
    files = media_files(inputs)
    vectors, labels = _embed_all(predictor, [path for path, _ in files], colour, progress)
    groups = labels if colour == "label" else [group for _, group in files]
    names = [str(path) for path, _ in files]
    report: dict[str, Any] = {}
    if output is not None:
        report["output"] = str(write_array(output, vectors))
    if query is not None:
        query_vector, _ = _embed_all(predictor, [Path(query)], "folder", False)
        others = [i for i, (path, _) in enumerate(files) if path.resolve() != Path(query).resolve()]
        report["query"] = str(query)
        report["neighbours"] = nearest(
            query_vector[0], vectors[others], [names[i] for i in others], k
        )
    if map_file is not None:
        mapped = feature_map(vectors, names, groups, method=method)
        title = f"{predictor.card.name}: {len(names)} inputs, {method.upper()}, by {colour}"
        report["map"] = mapped
        report["map_file"] = str(write_scatter(map_file, mapped, title))
    return EmbeddingReport(
        model=predictor.card.name,
        dimension=vectors.shape[1],
        inputs=[Embedded(name=n, group=g) for n, g in zip(names, groups, strict=True)],
        vectors=vectors,
        **report,
    )


def _embed_all(
    predictor: Any, paths: list[Path], colour: Colour, progress: bool
) -> tuple[np.ndarray, list[str]]:
    """(M, D) features, and each input's top-1 label when the map is coloured by label."""
    from tqdm import tqdm

    model, place = predictor.model, predictor.backend.device
    labels = predictor.card.label_names()
    vectors, tops = [], []
    for path in tqdm(paths, unit="input", disable=not progress):
        prepared = predictor.preprocess(path)
        inputs = tuple(tensor.to(place) for tensor in prepared.inputs.values())
        vectors.append(embed(model, inputs).mean(dim=0).float().cpu())
        if colour == "label":
            with torch.no_grad():
                index = int(torch.softmax(model(*inputs), dim=1).mean(dim=0).argmax())
            tops.append(labels[index] if labels and index < len(labels) else f"class {index}")
    return torch.stack(vectors).numpy(), tops
