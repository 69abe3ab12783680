"""Upstream ViT checkpoint layouts -> the zoo's layout (timm's key names).

Keys a converter does not recognise are passed through unchanged, so the core
reports them as unexpected by their upstream name; a file in another layout
altogether is rejected here with a hint at the layout it seems to be in.
"""

from __future__ import annotations

import re

import torch
from torch import Tensor

from zoo.errors import WeightsError
from zoo_plugins.vit import ViTConfig

TIMM_MARKER = "patch_embed.proj.weight"
TRANSFORMERS_PREFIX = r"^(?:vit\.)?"  # ViTForImageClassification nests ViTModel under "vit."
# Two namings of the same modules: the files on the Hub and save_pretrained (encoder.layer.N,
# query/key/value, output.dense) and transformers 5's in-memory state_dict, which torch.save
# writes (layers.N, q_proj/k_proj/v_proj/o_proj, mlp.fc1/fc2).
TRANSFORMERS_RENAMES = [
    (r"embeddings\.cls_token$", "cls_token"),
    (r"embeddings\.position_embeddings$", "pos_embed"),
    (r"embeddings\.patch_embeddings\.projection\.", "patch_embed.proj."),
    (r"encoder\.layer\.(\d+)\.attention\.output\.dense\.", r"blocks.\1.attn.proj."),
    (r"encoder\.layer\.(\d+)\.layernorm_before\.", r"blocks.\1.norm1."),
    (r"encoder\.layer\.(\d+)\.layernorm_after\.", r"blocks.\1.norm2."),
    (r"encoder\.layer\.(\d+)\.intermediate\.dense\.", r"blocks.\1.mlp.fc1."),
    (r"encoder\.layer\.(\d+)\.output\.dense\.", r"blocks.\1.mlp.fc2."),
    (r"layers\.(\d+)\.attention\.o_proj\.", r"blocks.\1.attn.proj."),
    (r"layers\.(\d+)\.layernorm_before\.", r"blocks.\1.norm1."),
    (r"layers\.(\d+)\.layernorm_after\.", r"blocks.\1.norm2."),
    (r"layers\.(\d+)\.mlp\.(fc1|fc2)\.", r"blocks.\1.mlp.\2."),
    (r"layernorm\.", "norm."),
]
TRANSFORMERS_QKV = re.compile(
    TRANSFORMERS_PREFIX
    + r"(?:encoder\.layer|layers)\.(\d+)\.attention\."
    + r"(?:attention\.)?(query|key|value|q_proj|k_proj|v_proj)\.(weight|bias)$"
)
QKV_ROLES = {"q_proj": "query", "k_proj": "key", "v_proj": "value"}
TRANSFORMERS_MARKER = re.compile(TRANSFORMERS_PREFIX + r"embeddings\.patch_embeddings\.")


def from_timm(state: dict[str, Tensor], config: ViTConfig) -> dict[str, Tensor]:
    """timm's ``VisionTransformer`` (class-token pooling, no extra norms) maps key for key."""
    if TIMM_MARKER not in state:
        raise WeightsError(
            f"not a timm ViT state dict: no {TIMM_MARKER!r} among keys {_sample(state)}"
            + _layout_hint(state)
        )
    if "pos_embed" in state:
        _check_tokens(state["pos_embed"], config, "pos_embed")
    return dict(state)


def from_transformers(state: dict[str, Tensor], config: ViTConfig) -> dict[str, Tensor]:
    """transformers' ViT checkpoint layout, as on the Hub and as ``save_pretrained`` writes it,
    or as ``torch.save(model.state_dict())`` writes it under transformers 5.

    Separate query/key/value projections are concatenated (in that order) into
    timm's fused ``qkv``; everything else is a rename. The classifier may sit at
    ``classifier`` (ViTForImageClassification); ViTModel files lack the ``vit.`` prefix.
    """
    if not any(TRANSFORMERS_MARKER.match(key) for key in state):
        raise WeightsError(
            "not a transformers ViT state dict: no 'vit.embeddings.patch_embeddings.*' among "
            f"keys {_sample(state)}" + _layout_hint(state)
        )
    converted: dict[str, Tensor] = {}
    projections: dict[tuple[str, str], dict[str, Tensor]] = {}
    for key, tensor in state.items():
        if match := TRANSFORMERS_QKV.match(key):
            layer, role, kind = match.groups()
            projections.setdefault((layer, kind), {})[QKV_ROLES.get(role, role)] = tensor
        else:
            converted[_rename_transformers(key)] = tensor
    for (layer, kind), parts in sorted(projections.items()):
        converted[f"blocks.{layer}.attn.qkv.{kind}"] = _fuse_qkv(parts, layer, kind)
    if "pos_embed" in converted:
        _check_tokens(converted["pos_embed"], config, "vit.embeddings.position_embeddings")
    return converted


def _rename_transformers(key: str) -> str:
    if key.startswith("classifier."):
        return "head." + key.removeprefix("classifier.")
    for pattern, replacement in TRANSFORMERS_RENAMES:
        renamed, count = re.subn(TRANSFORMERS_PREFIX + pattern, replacement, key)
        if count:
            return renamed
    return key


def _fuse_qkv(parts: dict[str, Tensor], layer: str, kind: str) -> Tensor:
    missing = [role for role in ("query", "key", "value") if role not in parts]
    if missing:
        raise WeightsError(
            f"layer {layer}: attention {kind} has {sorted(parts)} but lacks {missing}; "
            "query, key and value are needed to build the fused qkv projection"
        )
    return torch.cat([parts["query"], parts["key"], parts["value"]], dim=0)


def _check_tokens(pos_embed: Tensor, config: ViTConfig, key: str) -> None:
    """A position table for another resolution is the usual wrong-config mistake: say so."""
    found = pos_embed.shape[-2] if pos_embed.ndim == 3 else None
    if found != config.tokens:
        raise WeightsError(
            f"{key} has shape {tuple(pos_embed.shape)}, expected (1, {config.tokens}, "
            f"{config.width}) for image_size {config.image_size} and patch_size "
            f"{config.patch_size} (1 class token + {config.grid_size}x{config.grid_size} "
            "patches); set the config to the checkpoint's resolution"
        )


def _sample(state: dict[str, Tensor], limit: int = 4) -> str:
    keys = sorted(state)
    return f"[{', '.join(keys[:limit])}{', …' if len(keys) > limit else ''}]"


def _layout_hint(state: dict[str, Tensor]) -> str:
    """Name the layout a rejected file seems to be in (the zoo's own is timm's)."""
    if TIMM_MARKER in state:
        return "; this looks like the 'timm' layout"
    if any(TRANSFORMERS_MARKER.match(key) for key in state):
        return "; this looks like the 'transformers' layout"
    return ""
