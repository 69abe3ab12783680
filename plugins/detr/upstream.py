"""DETR checkpoints as transformers and the authors lay them out: what the converters read.

transformers' ``DetrForObjectDetection`` is built at the config (with its own
ResNet backbone, the ``no_timm`` layout, so any depth works). The authors'
repository is not installable; their names are the zoo's but for the backbone's
prefix (:mod:`zoo_plugins.detr.convert`), which ``tests/test_detr.py`` proves
against their code. Imported by the conformance kit and tests only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zoo_plugins.detr import DetrConfig
from zoo_plugins.detr.convert import AUTHORS_BACKBONE, ZOO_BACKBONE

if TYPE_CHECKING:
    from torch import Tensor


def transformers_state(config: DetrConfig) -> dict[str, Tensor]:
    import transformers

    backbone = transformers.ResNetConfig(
        depths=list(config.backbone_layers), out_features=["stage4"]
    )
    upstream = transformers.DetrConfig(
        backbone_config=backbone,
        num_labels=config.num_classes,
        d_model=config.d_model,
        encoder_attention_heads=config.num_heads,
        decoder_attention_heads=config.num_heads,
        encoder_ffn_dim=config.ffn_dim,
        decoder_ffn_dim=config.ffn_dim,
        encoder_layers=config.encoder_layers,
        decoder_layers=config.decoder_layers,
        num_queries=config.num_queries,
    )
    return transformers.DetrForObjectDetection(upstream).state_dict()


def authors_state(config: DetrConfig) -> dict[str, Tensor]:
    from zoo_plugins.detr.model import build

    return {
        AUTHORS_BACKBONE + key.removeprefix(ZOO_BACKBONE)
        if key.startswith(ZOO_BACKBONE)
        else key: tensor
        for key, tensor in build(config).state_dict().items()
    }
