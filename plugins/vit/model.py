"""The Vision Transformer in plain PyTorch, with timm's parameter names.

Module names follow timm (``patch_embed.proj``, ``blocks.N.attn.qkv``, ``head``)
so that the most common published layout maps onto this one key for key.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo_plugins.vit import ViTConfig


class PatchEmbed(nn.Module):
    """Cut the image into non-overlapping patches and project each to a token."""

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.proj = nn.Conv2d(
            config.in_channels, config.width, config.patch_size, stride=config.patch_size
        )

    def forward(self, image: Tensor) -> Tensor:
        return self.proj(image).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    """Multi-head self-attention with one fused q/k/v projection (timm's layout)."""

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.heads = config.heads
        self.head_width = config.width // config.heads
        self.qkv = nn.Linear(config.width, 3 * config.width, bias=config.qkv_bias)
        self.proj = nn.Linear(config.width, config.width)

    def forward(self, tokens: Tensor) -> Tensor:
        # (batch, tokens, 3 * width) -> 3 x (batch, heads, tokens, head_width); unflatten
        # uses only static sizes, so the batch axis stays symbolic when exported.
        qkv = self.qkv(tokens).unflatten(-1, (3, self.heads, self.head_width))
        query, key, value = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        attended = F.scaled_dot_product_attention(query, key, value)
        return self.proj(attended.transpose(1, 2).flatten(2))


class Mlp(nn.Module):
    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.fc1 = nn.Linear(config.width, config.mlp_width)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(config.mlp_width, config.width)

    def forward(self, tokens: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(tokens)))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(config.width, eps=config.layer_norm_eps)
        self.attn = Attention(config)
        self.norm2 = nn.LayerNorm(config.width, eps=config.layer_norm_eps)
        self.mlp = Mlp(config)

    def forward(self, tokens: Tensor) -> Tensor:
        tokens = tokens + self.attn(self.norm1(tokens))
        return tokens + self.mlp(self.norm2(tokens))


class VisionTransformer(nn.Module):
    """ViT classifier: the head reads the final-normed class token.

    Input: ``(batch, in_channels, image_size, image_size)``, normalised as the card
    says. Output: ``(batch, num_classes)`` logits, or the ``(batch, width)`` class
    token features when ``num_classes`` is 0.
    """

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.config = config
        self.patch_embed = PatchEmbed(config)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.width))
        self.pos_embed = nn.Parameter(torch.zeros(1, config.tokens, config.width))
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.depth))
        self.norm = nn.LayerNorm(config.width, eps=config.layer_norm_eps)
        self.head = (
            nn.Linear(config.width, config.num_classes) if config.num_classes else nn.Identity()
        )
        self._init_embeddings()

    def _init_embeddings(self) -> None:
        """Random init for training from scratch; skipped on meta, where it is slow and moot."""
        if self.pos_embed.is_meta:
            return
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)

    def forward_pooled(self, image: Tensor) -> Tensor:
        """The final-normed class token, ``(N, width)``: what the head reads."""
        self._check_input(image)
        patches = self.patch_embed(image)
        cls_token = self.cls_token.expand(patches.shape[0], -1, -1)
        tokens = torch.cat([cls_token, patches], dim=1) + self.pos_embed
        for block in self.blocks:
            tokens = block(tokens)
        return self.norm(tokens[:, 0])

    def forward(self, image: Tensor) -> Tensor:
        return self.head(self.forward_pooled(image))

    def _check_input(self, image: Tensor) -> None:
        """The position embeddings fix the image size, so any other shape is an error."""
        size, channels = self.config.image_size, self.config.in_channels
        if image.ndim != 4 or image.shape[1] != channels or image.shape[2:] != (size, size):
            raise ValueError(
                f"ViT expects images of shape (batch, {channels}, {size}, {size}), "
                f"found {tuple(image.shape)}"
            )


def build(config: ViTConfig) -> VisionTransformer:
    return VisionTransformer(config)


def pooled_features(model: VisionTransformer, image: Tensor) -> Tensor:
    return model.forward_pooled(image)


def pooled_width(config: ViTConfig) -> int:
    """The width of :meth:`VisionTransformer.forward_pooled`: one token."""
    return config.width
