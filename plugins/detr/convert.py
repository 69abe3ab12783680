"""Checkpoint converters into the zoo's DETR key layout.

``authors``: facebookresearch/detr's state dict (the ``model`` entry of its
``.pth`` files). The zoo keeps their names except for the backbone, which the
authors wrap as ``backbone.0.body.`` (Joiner, then IntermediateLayerGetter).

``transformers``: ``DetrForObjectDetection``'s state dict, both as the
``facebook/detr-resnet-50`` Hub file stores it (``model.backbone.conv_encoder.
model.``, ``out_proj``, ``fc1``) and as transformers >= 5 names it in memory
(``model.backbone.model.``, ``o_proj``, ``mlp.fc1``). The backbone may be the
timm ResNet (torchvision key names, the Hub's ``main`` revision) or
transformers' own ResNet (``embedder``/``encoder.stages``, the ``no_timm``
revision). Separate query, key and value projections are packed into the
authors' ``in_proj_weight``/``in_proj_bias``.

Unknown keys pass through unchanged, so the loader reports them by name.
"""

from __future__ import annotations

import re

import torch
from torch import Tensor

from zoo_plugins.detr import DetrConfig

BATCH_COUNTER = "num_batches_tracked"
AUTHORS_BACKBONE = "backbone.0.body."
ZOO_BACKBONE = "backbone."

TRANSFORMERS_PREFIXES = {
    "model.backbone.conv_encoder.model.": ZOO_BACKBONE,
    "model.backbone.model.": ZOO_BACKBONE,
    "model.input_projection.": "input_proj.",
    "model.query_position_embeddings.": "query_embed.",
    "model.encoder.layers.": "transformer.encoder.layers.",
    "model.decoder.layers.": "transformer.decoder.layers.",
    "model.decoder.layernorm.": "transformer.decoder.norm.",
    "class_labels_classifier.": "class_embed.",
    "bbox_predictor.": "bbox_embed.",
}
LAYER_PARTS = {
    "encoder": {
        "self_attn_layer_norm.": "norm1.",
        "final_layer_norm.": "norm2.",
    },
    "decoder": {
        "self_attn_layer_norm.": "norm1.",
        "encoder_attn_layer_norm.": "norm2.",
        "final_layer_norm.": "norm3.",
        "encoder_attn.": "multihead_attn.",
    },
}
COMMON_PARTS = {
    ".o_proj.": ".out_proj.",
    "mlp.fc1.": "linear1.",
    "mlp.fc2.": "linear2.",
    "fc1.": "linear1.",
    "fc2.": "linear2.",
}
PROJECTION = re.compile(r"^(?P<attention>.+)\.(?P<which>[qkv])_proj\.(?P<kind>weight|bias)$")
HF_RESNET = [
    (re.compile(r"^embedder\.embedder\.convolution\."), "conv1."),
    (re.compile(r"^embedder\.embedder\.normalization\."), "bn1."),
    (
        re.compile(r"^encoder\.stages\.(\d+)\.layers\.(\d+)\.shortcut\.convolution\."),
        lambda m: f"layer{int(m[1]) + 1}.{m[2]}.downsample.0.",
    ),
    (
        re.compile(r"^encoder\.stages\.(\d+)\.layers\.(\d+)\.shortcut\.normalization\."),
        lambda m: f"layer{int(m[1]) + 1}.{m[2]}.downsample.1.",
    ),
    (
        re.compile(r"^encoder\.stages\.(\d+)\.layers\.(\d+)\.layer\.(\d)\.convolution\."),
        lambda m: f"layer{int(m[1]) + 1}.{m[2]}.conv{int(m[3]) + 1}.",
    ),
    (
        re.compile(r"^encoder\.stages\.(\d+)\.layers\.(\d+)\.layer\.(\d)\.normalization\."),
        lambda m: f"layer{int(m[1]) + 1}.{m[2]}.bn{int(m[3]) + 1}.",
    ),
]


def from_authors(state: dict[str, Tensor], config: DetrConfig) -> dict[str, Tensor]:
    """facebookresearch/detr keys to the zoo's: only the backbone prefix changes."""
    _require_prefix(state, AUTHORS_BACKBONE, "authors")
    converted = {}
    for key, tensor in state.items():
        if key.endswith(BATCH_COUNTER):
            continue
        if key.startswith(AUTHORS_BACKBONE):
            key = ZOO_BACKBONE + key.removeprefix(AUTHORS_BACKBONE)
        converted[key] = tensor
    return converted


def from_transformers(state: dict[str, Tensor], config: DetrConfig) -> dict[str, Tensor]:
    """transformers' DetrForObjectDetection keys (Hub file or in-memory names) to the zoo's."""
    _require_prefix(state, "model.encoder.layers.", "transformers")
    renamed = {
        _rename_transformers_key(key): tensor
        for key, tensor in state.items()
        if not key.endswith(BATCH_COUNTER)
    }
    return _pack_projections(renamed)


def _require_prefix(state: dict[str, Tensor], prefix: str, layout: str) -> None:
    """A file in another layout fails here with a clear message, not with 400 missing keys."""
    if not any(key.startswith(prefix) for key in state):
        sample = ", ".join(sorted(state)[:3]) or "none"
        raise ValueError(
            f"not a DETR state dict in the {layout!r} layout: no key starts with {prefix!r} "
            f"(first keys: {sample})"
        )


def _rename_transformers_key(key: str) -> str:
    for old, new in TRANSFORMERS_PREFIXES.items():
        if key.startswith(old):
            rest = key.removeprefix(old)
            if new == ZOO_BACKBONE:
                return new + _rename_hf_resnet(rest)
            if new.startswith("transformer.") and new.endswith("layers."):
                return new + _rename_layer_part(rest, LAYER_PARTS[new.split(".")[1]])
            return new + rest
    return key


def _rename_layer_part(rest: str, parts: dict[str, str]) -> str:
    """``N.<part>`` inside an encoder or decoder layer, to the authors' names."""
    index, _, part = rest.partition(".")
    for old, new in parts.items():
        if part.startswith(old):
            part = new + part.removeprefix(old)
    for old, new in COMMON_PARTS.items():
        if old.startswith("."):
            part = part.replace(old, new)
        elif part.startswith(old):
            part = new + part.removeprefix(old)
    return f"{index}.{part}"


def _rename_hf_resnet(rest: str) -> str:
    """transformers' own ResNet names to torchvision's; timm's already are torchvision's."""
    for pattern, replacement in HF_RESNET:
        match = pattern.match(rest)
        if match:
            head = replacement if isinstance(replacement, str) else replacement(match)
            return head + rest[match.end() :]
    return rest


def _pack_projections(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Concatenate separate q/k/v projections into ``in_proj_weight``/``in_proj_bias``."""
    packed: dict[str, Tensor] = {}
    parts: dict[tuple[str, str], dict[str, Tensor]] = {}
    for key, tensor in state.items():
        match = PROJECTION.match(key)
        if match is None:
            packed[key] = tensor
        else:
            parts.setdefault((match["attention"], match["kind"]), {})[match["which"]] = tensor
    for (attention, kind), found in parts.items():
        if sorted(found) != ["k", "q", "v"]:
            raise ValueError(
                f"{attention}: expected q_proj, k_proj and v_proj {kind}, "
                f"found only {sorted(found)}"
            )
        packed[f"{attention}.in_proj_{kind}"] = torch.cat([found["q"], found["k"], found["v"]])
    return packed
