"""DETR (Carion et al. 2020, arXiv 2005.12872) in plain PyTorch.

Module names follow the authors' code (facebookresearch/detr) for everything but
the backbone, so their transformer keys map one to one: ``transformer.encoder.
layers.N.self_attn.in_proj_weight`` (query, key and value packed as in
``nn.MultiheadAttention``), ``linear1``/``linear2``, ``norm1``..``norm3``,
``transformer.decoder.norm``, ``input_proj``, ``query_embed``, ``class_embed``,
``bbox_embed.layers.N``. The backbone is the resnext plugin's ResNet with
frozen BatchNorm under ``backbone.`` (torchvision key names).

Images of different sizes are batched by zero padding, with ``pixel_mask``
marking the real pixels (the authors' NestedTensor, transformers' pixel_mask).
Without a mask every pixel is real, and the forward has no data-dependent
control flow, which keeps the single-image and same-size path exportable.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo_plugins.detr import DetrConfig
from zoo_plugins.resnext import ResNeXtConfig
from zoo_plugins.resnext.model import FrozenBatchNorm2d, ResNeXt

BACKBONE_CHANNELS = 2048
BOX_MLP_LAYERS = 3
POSITION_TEMPERATURE = 10000.0
POSITION_SCALE = 2 * math.pi
POSITION_EPS = 1e-6

Outputs = dict[str, Tensor | list[dict[str, Tensor]]]


def sine_position_encoding(valid: Tensor | None, feature: Tensor, channels: int) -> Tensor:
    """The paper's 2-D sine encoding of ``feature``'s grid: (batch, channels, height, width).

    Positions are 1-based counts of real rows and columns, normalised to (0, 2π]
    per image, so padding does not shift the encoding of an image; y features
    come first, each axis interleaving sine and cosine. Computed in forward from
    the mask or the shape, so there is nothing to store or load.
    """
    batch, _, height, width = feature.shape
    dtype, device = feature.dtype, feature.device
    if valid is None:
        rows = torch.arange(1, height + 1, dtype=dtype, device=device)
        cols = torch.arange(1, width + 1, dtype=dtype, device=device)
        y = (rows / (rows[-1:] + POSITION_EPS) * POSITION_SCALE).view(1, -1, 1)
        x = (cols / (cols[-1:] + POSITION_EPS) * POSITION_SCALE).view(1, 1, -1)
        y, x = y.expand(batch, height, width), x.expand(batch, height, width)
    else:
        real = valid.to(dtype)
        y = real.cumsum(1)
        x = real.cumsum(2)
        y = y / (y[:, -1:, :] + POSITION_EPS) * POSITION_SCALE
        x = x / (x[:, :, -1:] + POSITION_EPS) * POSITION_SCALE
    per_axis = channels // 2
    steps = torch.arange(per_axis, dtype=torch.int64, device=device).to(dtype)
    frequencies = POSITION_TEMPERATURE ** (
        2 * torch.div(steps, 2, rounding_mode="floor") / per_axis
    )
    encoded = [_sin_cos(axis[..., None] / frequencies) for axis in (y, x)]
    return torch.cat(encoded, dim=3).permute(0, 3, 1, 2)


def _sin_cos(angles: Tensor) -> Tensor:
    """Sine of the even features and cosine of the odd ones, interleaved again."""
    return torch.stack((angles[..., 0::2].sin(), angles[..., 1::2].cos()), dim=4).flatten(3)


class Attention(nn.Module):
    """Multi-head attention with ``nn.MultiheadAttention``'s parameters (the authors' keys).

    DETR adds positional encodings to queries and keys but not to values, so the
    three inputs differ; when query and key inputs are the same tensor (self-
    attention) their projections run as one matrix product.
    """

    def __init__(self, dim: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.dropout = dropout
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        if not self.in_proj_weight.is_meta:
            nn.init.xavier_uniform_(self.in_proj_weight)
            nn.init.zeros_(self.in_proj_bias)
            nn.init.zeros_(self.out_proj.bias)

    def forward(
        self, query: Tensor, key: Tensor, value: Tensor, key_valid: Tensor | None
    ) -> Tensor:
        """(batch, length, dim) inputs; ``key_valid`` (batch, key length) is False on padding."""
        weight, bias = self.in_proj_weight, self.in_proj_bias
        dim = weight.shape[1]
        if query is key:
            q, k = F.linear(query, weight[: 2 * dim], bias[: 2 * dim]).chunk(2, dim=-1)
        else:
            q = F.linear(query, weight[:dim], bias[:dim])
            k = F.linear(key, weight[dim : 2 * dim], bias[dim : 2 * dim])
        v = F.linear(value, weight[2 * dim :], bias[2 * dim :])
        mask = None if key_valid is None else key_valid[:, None, None, :]
        attended = F.scaled_dot_product_attention(
            self._heads(q),
            self._heads(k),
            self._heads(v),
            attn_mask=mask,
            dropout_p=self.dropout if self.training else 0.0,
        )
        return self.out_proj(attended.transpose(1, 2).flatten(2))

    def _heads(self, x: Tensor) -> Tensor:
        return x.unflatten(-1, (self.num_heads, -1)).transpose(1, 2)


class EncoderLayer(nn.Module):
    """Post-norm encoder layer: self-attention, then the feed-forward network, each + LayerNorm."""

    def __init__(self, config: DetrConfig) -> None:
        super().__init__()
        self.self_attn = Attention(config.d_model, config.num_heads, config.dropout)
        self.linear1 = nn.Linear(config.d_model, config.ffn_dim)
        self.linear2 = nn.Linear(config.ffn_dim, config.d_model)
        self.norm1 = nn.LayerNorm(config.d_model)
        self.norm2 = nn.LayerNorm(config.d_model)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: Tensor, position: Tensor, valid: Tensor | None) -> Tensor:
        query_key = x + position
        x = self.norm1(x + self.dropout(self.self_attn(query_key, query_key, x, valid)))
        return self.norm2(x + self.dropout(_feed_forward(self, x)))


class DecoderLayer(nn.Module):
    """Post-norm decoder layer: query self-attention, cross-attention to the image, FFN."""

    def __init__(self, config: DetrConfig) -> None:
        super().__init__()
        self.self_attn = Attention(config.d_model, config.num_heads, config.dropout)
        self.multihead_attn = Attention(config.d_model, config.num_heads, config.dropout)
        self.linear1 = nn.Linear(config.d_model, config.ffn_dim)
        self.linear2 = nn.Linear(config.ffn_dim, config.d_model)
        self.norm1 = nn.LayerNorm(config.d_model)
        self.norm2 = nn.LayerNorm(config.d_model)
        self.norm3 = nn.LayerNorm(config.d_model)
        self.dropout = nn.Dropout(config.dropout)

    def forward(
        self,
        queries: Tensor,
        query_position: Tensor,
        memory_keys: Tensor,
        memory: Tensor,
        memory_valid: Tensor | None,
    ) -> Tensor:
        query_key = queries + query_position
        attended = self.self_attn(query_key, query_key, queries, None)
        queries = self.norm1(queries + self.dropout(attended))
        attended = self.multihead_attn(queries + query_position, memory_keys, memory, memory_valid)
        queries = self.norm2(queries + self.dropout(attended))
        return self.norm3(queries + self.dropout(_feed_forward(self, queries)))


def _feed_forward(layer: EncoderLayer | DecoderLayer, x: Tensor) -> Tensor:
    return layer.linear2(layer.dropout(F.relu(layer.linear1(x))))


class Encoder(nn.Module):
    def __init__(self, config: DetrConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.encoder_layers))

    def forward(self, x: Tensor, position: Tensor, valid: Tensor | None) -> Tensor:
        for layer in self.layers:
            x = layer(x, position, valid)
        return x


class Decoder(nn.Module):
    """Decoder layers and the final LayerNorm, which also normalises the auxiliary outputs."""

    def __init__(self, config: DetrConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(DecoderLayer(config) for _ in range(config.decoder_layers))
        self.norm = nn.LayerNorm(config.d_model)
        self.return_intermediate = config.aux_outputs

    def forward(
        self, query_position: Tensor, memory: Tensor, position: Tensor, valid: Tensor | None
    ) -> Tensor:
        """(layers or 1, batch, queries, dim): every layer's normalised output, or the last."""
        queries = torch.zeros_like(query_position)
        memory_keys = memory + position
        intermediate = []
        for layer in self.layers:
            queries = layer(queries, query_position, memory_keys, memory, valid)
            if self.return_intermediate:
                intermediate.append(self.norm(queries))
        if self.return_intermediate:
            return torch.stack(intermediate)
        return self.norm(queries)[None]


class Transformer(nn.Module):
    def __init__(self, config: DetrConfig) -> None:
        super().__init__()
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)

    def forward(
        self, features: Tensor, position: Tensor, queries: Tensor, valid: Tensor | None
    ) -> Tensor:
        """Flattened image features and encodings in, decoder outputs out (see Decoder)."""
        memory = self.encoder(features, position, valid)
        return self.decoder(queries, memory, position, valid)


class MLP(nn.Module):
    """Linear layers with ReLU between them: the box head (3 layers, 4 outputs)."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, num_layers: int) -> None:
        super().__init__()
        dims = [in_dim] + [hidden_dim] * (num_layers - 1) + [out_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(dims))

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers[:-1]:
            x = F.relu(layer(x))
        return self.layers[-1](x)


class DETR(nn.Module):
    """DETR detector: ``forward(image, pixel_mask=None)`` returns class logits and boxes.

    ``logits`` (batch, queries, num_classes + 1), the last class being no-object;
    ``boxes`` (batch, queries, 4) as (cx, cy, w, h) in [0, 1] relative to each
    image's real (unpadded) size. With ``config.aux_outputs``, ``aux_outputs``
    holds the same pair for each decoder layer but the last, for auxiliary losses.
    """

    def __init__(self, config: DetrConfig) -> None:
        super().__init__()
        self.config = config
        backbone_config = ResNeXtConfig(
            layers=config.backbone_layers, num_classes=0, features_only=True, out_indices=(4,)
        )
        self.backbone = ResNeXt(backbone_config, norm_layer=FrozenBatchNorm2d)
        self.input_proj = nn.Conv2d(BACKBONE_CHANNELS, config.d_model, kernel_size=1)
        self.transformer = Transformer(config)
        self.query_embed = _embedding(config.num_queries, config.d_model)
        self.class_embed = nn.Linear(config.d_model, config.num_classes + 1)
        self.bbox_embed = MLP(config.d_model, config.d_model, 4, BOX_MLP_LAYERS)

    def forward(self, image: Tensor, pixel_mask: Tensor | None = None) -> Outputs:
        """``image`` (batch, 3, H, W) normalised; ``pixel_mask`` (batch, H, W), 1 on real pixels."""
        self._check_inputs(image, pixel_mask)
        feature = self.backbone.forward_features(image)[-1]
        valid = None
        if pixel_mask is not None:
            valid = F.interpolate(pixel_mask[None].float(), size=feature.shape[-2:])[0].bool()
        position = sine_position_encoding(valid, feature, self.config.d_model)
        features = self.input_proj(feature).flatten(2).transpose(1, 2)
        queries = self.query_embed.weight[None].expand(image.shape[0], -1, -1)
        flat_valid = None if valid is None else valid.flatten(1)
        hidden = self.transformer(
            features, position.flatten(2).transpose(1, 2), queries, flat_valid
        )
        logits = self.class_embed(hidden)
        boxes = self.bbox_embed(hidden).sigmoid()
        outputs: Outputs = {"logits": logits[-1], "boxes": boxes[-1]}
        if self.config.aux_outputs:
            outputs["aux_outputs"] = [
                {"logits": layer_logits, "boxes": layer_boxes}
                for layer_logits, layer_boxes in zip(logits[:-1], boxes[:-1], strict=True)
            ]
        return outputs

    def _check_inputs(self, image: Tensor, pixel_mask: Tensor | None) -> None:
        if image.dim() != 4 or image.shape[1] != 3:
            raise ValueError(
                "DETR expects images of shape (batch, 3, height, width), "
                f"found {tuple(image.shape)}"
            )
        expected = (image.shape[0], *image.shape[2:])
        if pixel_mask is not None and tuple(pixel_mask.shape) != expected:
            raise ValueError(
                f"pixel_mask must have shape (batch, height, width) = {expected}, "
                f"found {tuple(pixel_mask.shape)}"
            )


def _embedding(count: int, dim: int) -> nn.Embedding:
    """An embedding whose normal init is skipped on meta, where it is slow and pointless."""
    weight = torch.empty(count, dim)
    if not weight.is_meta:
        nn.init.normal_(weight)
    return nn.Embedding(count, dim, _weight=weight)


def pad_batch(images: list[Tensor]) -> tuple[Tensor, Tensor]:
    """Zero-pad images of different sizes into one batch, with the mask of real pixels.

    Returns ``(batch, pixel_mask)``: (N, 3, H_max, W_max) and (N, H_max, W_max),
    1 where a pixel belongs to its image (the authors' NestedTensor, inverted).
    """
    if not images or any(image.dim() != 3 for image in images):
        raise ValueError(
            f"pad_batch expects a non-empty list of (3, H, W) images, found shapes "
            f"{[tuple(image.shape) for image in images]}"
        )
    height = max(image.shape[1] for image in images)
    width = max(image.shape[2] for image in images)
    first = images[0]
    batch = first.new_zeros((len(images), first.shape[0], height, width))
    pixel_mask = torch.zeros((len(images), height, width), dtype=torch.long, device=first.device)
    for index, image in enumerate(images):
        batch[index, :, : image.shape[1], : image.shape[2]] = image
        pixel_mask[index, : image.shape[1], : image.shape[2]] = 1
    return batch, pixel_mask


def build(config: DetrConfig) -> DETR:
    return DETR(config)
