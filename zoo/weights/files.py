"""Weights files: what a file is, reading it safely, converting it, writing it atomically.

Loading reads safetensors only. Upstream pickles are read by
``torch.load(weights_only=True)`` during conversion, and nothing else is
unpickled. A file is recognised by its first bytes, not its name, so a pickle
passed where safetensors belong, or a text file passed as a checkpoint, is named
for what it is instead of failing deep inside a reader.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from zoo.architecture import Architecture
from zoo.cards import Card
from zoo.errors import WeightsError, ZooError, one_line
from zoo.output import default_file_mode, temporary_sibling

if TYPE_CHECKING:
    import torch
    from pydantic import BaseModel

NESTED_STATE_KEYS = ("state_dict", "model", "model_state_dict", "module")
MODEL_FILE = "model.safetensors"
ZIP_MAGIC = b"PK\x03\x04"
PICKLE_PROTOCOL_2_OR_LATER = 0x80
SAFETENSORS_MAX_HEADER = 100_000_000
Kind = Literal["safetensors", "torch-zip", "pickle", "empty", "unknown"]


@dataclass(frozen=True)
class WeightsFile:
    """A local safetensors file, the key layout it is in, and the prefix its keys get."""

    path: Path
    layout: str = "zoo"
    prefix: str = ""


@dataclass(frozen=True)
class ModelWeights:
    """Another zoo model's pretrained weights, used as one part of a card's weights.

    ``parts`` are that model's own fetched and verified parts; its architecture
    converts and merges them into its zoo layout, then this card's architecture
    converts that state from ``layout`` and puts it under ``prefix``.
    """

    card: Card
    architecture: Architecture
    parts: tuple[WeightsFile | ModelWeights, ...]
    layout: str = "zoo"
    prefix: str = ""

    def files(self) -> list[WeightsFile]:
        """Every local file behind these weights, however deeply they are nested."""
        return [file for part in self.parts for file in files_of(part)]


WeightsPart = WeightsFile | ModelWeights


def files_of(part: WeightsPart) -> list[WeightsFile]:
    return part.files() if isinstance(part, ModelWeights) else [part]


def file_kind(path: Path) -> Kind:
    """What ``path`` holds, from its first bytes: safetensors, a torch zip, a pickle."""
    with path.open("rb") as stream:
        head = stream.read(9)
    if not head:
        return "empty"
    if head.startswith(ZIP_MAGIC):
        return "torch-zip"
    if len(head) == 9:  # a little-endian header length, then the JSON header itself
        (header_size,) = struct.unpack("<Q", head[:8])
        if 0 < header_size < SAFETENSORS_MAX_HEADER and head[8:9] == b"{":
            return "safetensors"
    if head[0] == PICKLE_PROTOCOL_2_OR_LATER:
        return "pickle"
    return "unknown"


def _existing_file(path: Path) -> Path:
    if path.is_dir():
        hint = f" (did you mean {path / MODEL_FILE}?)" if (path / MODEL_FILE).is_file() else ""
        raise WeightsError(f"{path} is a folder, expected a weights file{hint}")
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist")
    return path


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors file, memory-mapped; anything else is a clear WeightsError."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    kind = file_kind(_existing_file(path))
    if kind in ("torch-zip", "pickle"):
        raise WeightsError(
            f"{path} is a PyTorch pickle, not safetensors, and zoo loads only safetensors; "
            f"convert it once with `zoo convert MODEL --checkpoint {path} -o DIR` "
            "(zoo.publish.convert) and load DIR/model.safetensors"
        )
    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise WeightsError(
            f"{path} is not a readable safetensors file ({_first_line(error)}); "
            "it may be truncated or not a safetensors file at all"
        ) from None


def read_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of an upstream checkpoint: safetensors, or a pickle read with weights_only=True.

    Checkpoints that nest their weights under ``state_dict``/``model`` (training
    checkpoints with optimizer state beside them) are unwrapped; anything else
    that is not a flat mapping of names to tensors is an error, not a guess.
    """
    kind = file_kind(_existing_file(path))
    if kind == "safetensors":
        return read_state_dict(path)
    if kind not in ("torch-zip", "pickle"):
        raise WeightsError(
            f"{path} is not a PyTorch checkpoint or safetensors file "
            f"({'it is empty' if kind == 'empty' else 'its first bytes are neither'})"
        )
    import pickle

    import torch

    try:  # from an open file: torch reads a path ending in .safetensors as safetensors
        with path.open("rb") as stream:
            loaded = torch.load(stream, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise WeightsError(
            f"{path.name}: not readable under weights_only=True ({_first_line(error)}); "
            "zoo never unpickles arbitrary objects"
        ) from None
    except Exception as error:  # a damaged pickle fails in torch's reader in many ways
        raise WeightsError(
            f"{path} is not a readable PyTorch checkpoint (weights_only=True read failed: "
            f"{type(error).__name__}: {_first_line(error)})"
        ) from None
    return _flat_state_dict(loaded, path.name)


def _flat_state_dict(loaded: Any, origin: str) -> dict[str, torch.Tensor]:
    import torch

    while isinstance(loaded, Mapping) and not _all_tensors(loaded):
        nested = [key for key in NESTED_STATE_KEYS if isinstance(loaded.get(key), Mapping)]
        if not nested:
            kinds = {key: type(value).__name__ for key, value in list(loaded.items())[:8]}
            raise WeightsError(
                f"{origin}: expected a mapping of names to tensors, or one nested under "
                f"{'/'.join(NESTED_STATE_KEYS)}; found top-level entries {kinds}"
            )
        loaded = loaded[nested[0]]
    if not isinstance(loaded, Mapping):
        raise WeightsError(f"{origin}: expected a state dict, found {type(loaded).__name__}")
    return {str(key): value for key, value in loaded.items() if isinstance(value, torch.Tensor)}


def _all_tensors(mapping: Mapping) -> bool:
    import torch

    return bool(mapping) and all(isinstance(value, torch.Tensor) for value in mapping.values())


def convert_state_dict(
    architecture: Architecture,
    config: BaseModel,
    state: dict[str, Any],
    layout: str,
    origin: str = "weights",
) -> dict[str, Any]:
    """The architecture's converter for ``layout`` applied in memory; ``zoo`` is the identity.

    A converter is the plugin's code: whatever it raises reaches the caller as
    one WeightsError naming the file, the layout and the converter.
    """
    if layout == "zoo":
        return state
    try:
        converter = architecture.resolve_converter(layout)
        return converter(state, config)
    except ZooError as error:
        raise WeightsError(f"{origin}: {one_line(str(error))}") from None
    except Exception as error:  # the plugin's converter may fail in any way
        raise WeightsError(
            f"{origin}: the {layout!r} converter of architecture {architecture.name!r} failed "
            f"({type(error).__name__}: {_first_line(error)}); is the file in the "
            f"{layout!r} layout?"
        ) from error


def merge_parts(parts: Sequence[tuple[str, Mapping[str, Any]]]) -> dict[str, Any]:
    """One state dict from converted parts, each key under its part's prefix."""
    merged: dict[str, Any] = {}
    for prefix, state in parts:
        for key, tensor in state.items():
            name = f"{prefix}{key}"
            if name in merged:
                raise WeightsError(f"weights parts both provide {name!r}")
            merged[name] = tensor
    return merged


def save_safetensors(
    state: Mapping[str, torch.Tensor], target: Path, metadata: dict[str, str] | None = None
) -> str:
    """Write ``state`` atomically (temp file + rename) and return the file's sha256."""
    from safetensors.torch import save_file

    from zoo.weights.integrity import sha256_of

    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_sibling(target)
    try:
        save_file(_unshared(state), temporary, metadata=metadata)
        temporary.chmod(default_file_mode())  # safetensors writes its file owner-only
        digest = sha256_of(temporary)
        temporary.replace(target)
    finally:
        temporary.unlink(missing_ok=True)
    return digest


def _unshared(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Contiguous tensors with storage of their own, as safetensors requires."""
    import torch

    seen: set[int] = set()
    result = {}
    for key, tensor in state.items():
        pointer = tensor.untyped_storage().data_ptr()
        if pointer in seen or not tensor.is_contiguous():
            tensor = tensor.clone(memory_format=torch.contiguous_format)
        seen.add(pointer)
        result[key] = tensor
    return result


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
