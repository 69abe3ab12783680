"""timm's and transformers' ViT at any config: what the converters read.

Imported by the conformance kit (``Architecture.converter_examples``) and tests
only; timm and transformers are test dependencies, never needed to load a model.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from zoo_plugins.vit import ViTConfig

if TYPE_CHECKING:
    from torch import Tensor


def timm_state(config: ViTConfig) -> dict[str, Tensor]:
    from timm.models.vision_transformer import VisionTransformer

    model = VisionTransformer(
        img_size=config.image_size,
        patch_size=config.patch_size,
        in_chans=config.in_channels,
        num_classes=config.num_classes,
        embed_dim=config.width,
        depth=config.depth,
        num_heads=config.heads,
        mlp_ratio=config.mlp_ratio,
        qkv_bias=config.qkv_bias,
    )
    return model.state_dict()


def transformers_state(config: ViTConfig) -> dict[str, Tensor]:
    """As ``save_pretrained`` writes it (the Hub's key names, which transformers 5 renames in
    memory): the file the converter reads."""
    import transformers
    from safetensors.torch import load_file

    upstream = transformers.ViTConfig(
        image_size=config.image_size,
        patch_size=config.patch_size,
        num_channels=config.in_channels,
        hidden_size=config.width,
        num_hidden_layers=config.depth,
        num_attention_heads=config.heads,
        intermediate_size=config.mlp_width,
        num_labels=config.num_classes,
        layer_norm_eps=config.layer_norm_eps,
        qkv_bias=config.qkv_bias,
    )
    model = transformers.ViTForImageClassification(upstream)
    with tempfile.TemporaryDirectory(prefix="zoo-vit-") as folder:
        model.save_pretrained(folder)
        return load_file(Path(folder) / "model.safetensors")
