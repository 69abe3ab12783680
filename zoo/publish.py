"""Upstream checkpoints into the zoo (``zoo convert``) and zoo folders onto the Hub (``zoo push``).

A converted folder holds everything a Hub repo needs, so publishing is one commit:

- ``model.safetensors``: the weights in the zoo's own layout, every part merged
  under its prefix;
- ``model.safetensors.sha256``: its hash, in ``sha256sum`` format;
- ``card.yaml`` and ``README.md``: the card, as YAML and as a Hugging Face model
  card whose metadata holds it (:mod:`zoo.modelcard`).

The folder's card lists no weights source, since none exists yet; ``push``
points it at the repo it publishes to, with the file's hash, so the repo loads
with ``zoo.load("hf-hub:org/name")`` and is verified on the way.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel

from zoo.cards import Card
from zoo.errors import ArgumentError, PublishError, WeightsError
from zoo.modelcard import to_hf_model_card
from zoo.output import output_errors, output_folder, write_text_atomic
from zoo.registry import Registry, default_registry
from zoo.weights import (
    MODEL_FILE,
    convert_state_dict,
    merge_parts,
    read_checkpoint,
    save_safetensors,
    sha256_of,
)

if TYPE_CHECKING:
    import torch
    from huggingface_hub import CommitInfo

CARD_FILE = "card.yaml"
README_FILE = "README.md"
HASH_FILE = f"{MODEL_FILE}.sha256"
FOLDER_FILES = (MODEL_FILE, HASH_FILE, CARD_FILE, README_FILE)
REPO_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


class ConvertedFolder(BaseModel):
    """What ``convert`` wrote: the folder, the files this run wrote, the weights' sha256."""

    folder: str
    files: list[str]
    sha256: str

    @property
    def path(self) -> Path:
        return Path(self.folder)


def convert(
    name: str | Card,
    checkpoints: list[str | PathLike[str]],
    output: str | PathLike[str],
    *,
    layout: str | None = None,
    force: bool = False,
    registry: Registry | None = None,
) -> ConvertedFolder:
    """Convert upstream checkpoints (one per weights part of the card) into a zoo folder.

    Pickles are read only with ``torch.load(weights_only=True)``. Each part is
    converted from ``layout`` (default: that part's layout in the card), put
    under its prefix, and the result must fit the built model exactly before
    anything is written. ``output`` must be new, empty or a previous zoo
    output; ``force`` writes zoo's four files into a folder holding other files,
    leaving those alone (:mod:`zoo.output`).
    """
    registry = registry or default_registry()
    card = name if isinstance(name, Card) else registry.card(name)
    with output_folder(Path(output), FOLDER_FILES, force=force) as folder:
        state = converted_state(card, [Path(path) for path in checkpoints], layout, registry)
        return write_folder(card, state, folder)


def converted_state(
    card: Card, checkpoints: list[Path], layout: str | None, registry: Registry
) -> dict[str, torch.Tensor]:
    """The checkpoints as one zoo-layout state dict, checked against the model's keys and shapes."""
    from zoo.loading import assign_state_dict, empty_model

    parts = [(part.prefix, part.layout) for part in card.weights] or [("", "zoo")]
    if len(checkpoints) != len(parts):
        raise WeightsError(
            f"card {card.name!r} has {len(parts)} weights part(s) "
            f"(prefixes {[prefix for prefix, _ in parts]}), found {len(checkpoints)} checkpoint(s)"
        )
    architecture = registry.architecture(card.architecture)
    config = architecture.validate_config(card.config)
    for _, part_layout in parts:
        architecture.check_layout(layout or part_layout)  # before any checkpoint is read
    converted = []
    for checkpoint, (prefix, part_layout) in zip(checkpoints, parts, strict=True):
        state = read_checkpoint(checkpoint)
        chosen = layout or part_layout
        origin = f"{checkpoint} (layout {chosen!r})"
        converted.append((prefix, convert_state_dict(architecture, config, state, chosen, origin)))
    merged = merge_parts(converted)
    names = ", ".join(str(path) for path in checkpoints)
    assign_state_dict(empty_model(architecture, config), merged, origin=names)
    return merged


def write_folder(card: Card, state: dict[str, torch.Tensor], output: Path) -> ConvertedFolder:
    """Write weights, hash and card (YAML and README.md) into ``output``, each by rename."""
    with output_errors(output):
        output.mkdir(parents=True, exist_ok=True)  # already there when called from convert
        digest = save_safetensors(state, output / MODEL_FILE, metadata={"zoo_card": card.name})
    unpublished = Card.from_data({**card.to_data(), "weights": []}, origin=card.name)
    written = [
        output / MODEL_FILE,
        write_text_atomic(output / HASH_FILE, f"{digest}  {MODEL_FILE}\n"),
        write_text_atomic(output / CARD_FILE, unpublished.to_yaml()),
        write_text_atomic(output / README_FILE, str(to_hf_model_card(unpublished))),
    ]
    return ConvertedFolder(folder=str(output), files=[str(path) for path in written], sha256=digest)


def push(
    folder: str | PathLike[str],
    repo_id: str,
    *,
    revision: str | None = None,
    private: bool | None = None,
    token: str | None = None,
) -> CommitInfo:
    """Publish a converted folder to ``repo_id`` in one commit, its card pointing at that repo.

    The weights' hash is checked against the folder's ``.sha256`` file first, so
    a file damaged since conversion is never published; a missing token is
    reported before anything is sent.
    """
    from huggingface_hub import CommitOperationAdd, HfApi, get_token

    if not REPO_ID.match(repo_id):
        raise ArgumentError(f"a Hub repo is named org/name, found {repo_id!r}")
    token = token or get_token()
    if token is None:
        raise PublishError(
            f"publishing to {repo_id} needs a Hugging Face token with write access and none "
            "was found; set HF_TOKEN or run `hf auth login`"
        )
    source = Path(folder)
    weights = source / MODEL_FILE
    for required in (weights, source / CARD_FILE):
        if not required.is_file():
            raise WeightsError(f"{source} is not a zoo folder: {required.name} is missing")
    digest = _checked_digest(weights, source / HASH_FILE)
    card = Card.from_yaml(source / CARD_FILE)
    published = Card.from_data(
        {
            **card.to_data(),
            "weights": [{"repo_id": repo_id, "filename": MODEL_FILE, "sha256": digest}],
        },
        origin=str(source / CARD_FILE),
    )
    operations = [
        CommitOperationAdd(MODEL_FILE, weights),
        CommitOperationAdd(HASH_FILE, f"{digest}  {MODEL_FILE}\n".encode()),
        CommitOperationAdd(CARD_FILE, published.to_yaml().encode()),
        CommitOperationAdd(README_FILE, str(to_hf_model_card(published)).encode()),
    ]
    api = HfApi(token=token)
    with _hub_publish_errors(repo_id):
        api.create_repo(repo_id, private=private, exist_ok=True)
        return api.create_commit(
            repo_id, operations, commit_message=f"zoo push {card.name}", revision=revision
        )


@contextmanager
def _hub_publish_errors(repo_id: str) -> Iterator[None]:
    """The Hub's refusals and an unreachable endpoint as one line each."""
    import httpx2
    from huggingface_hub import constants
    from huggingface_hub.errors import HfHubHTTPError

    try:
        yield
    except HfHubHTTPError as error:
        raise PublishError(f"publishing to {repo_id} failed: {_first_line(error)}") from None
    except (OSError, httpx2.HTTPError) as error:
        raise PublishError(
            f"publishing to {repo_id} failed: cannot reach {constants.ENDPOINT} "
            f"({_first_line(error)}); check the network or HF_ENDPOINT"
        ) from None


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def _checked_digest(weights: Path, hash_file: Path) -> str:
    digest = sha256_of(weights)
    if hash_file.is_file():
        recorded = hash_file.read_text(encoding="utf-8").split()[0]
        if recorded != digest:
            raise WeightsError(
                f"sha256 mismatch for {weights}: expected {recorded} (from {hash_file.name}), "
                f"found {digest}; convert the checkpoint again"
            )
    return digest
