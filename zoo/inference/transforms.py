"""The spatial half of pre-processing, read from the card: resize, crop, value range, mean/std.

Two steps are kept apart on purpose. :func:`plan_geometry` and :func:`frame_pixels` turn
decoded frames into *pixels*: float values in [0, 1], RGB (or gray), already at the
model's size. :class:`Normalization` turns pixels into the model's input (value range,
mean and std, channel order) and back. Tools that work in pixel space (attacks, saliency,
showing the input) call the model on ``normalization(pixels)`` and stay honest about what
the network sees.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo.cards import InputSpec
from zoo.errors import InputError

#: Frames converted to float and resized at a time.
RESIZE_CHUNK = 16
#: ITU-R 601-2 luma, the weights Pillow's ``convert("L")`` uses.
LUMA = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class Geometry:
    """Where the model input's pixels lie in the original image: a crop of a resize.

    ``original`` and ``resized`` are (height, width); the crop of ``size`` starts at
    (``top``, ``left``) of the resized image.
    """

    original: tuple[int, int]
    resized: tuple[int, int]
    top: int
    left: int
    size: tuple[int, int]

    def boxes_to_original(self, boxes: Tensor) -> Tensor:
        """xyxy boxes in model-input pixels -> pixels of the original image, clipped to it."""
        (height, width), (resized_height, resized_width) = self.original, self.resized
        scale = boxes.new_tensor(
            [resized_width / width, resized_height / height] * 2, dtype=torch.float32
        )
        offset = boxes.new_tensor([self.left, self.top] * 2, dtype=torch.float32)
        mapped = (boxes.float() + offset) / scale
        bounds = boxes.new_tensor([width, height] * 2, dtype=torch.float32)
        return torch.minimum(mapped.clamp(min=0), bounds)


def plan_geometry(spec: InputSpec, height: int, width: int, source: str) -> Geometry:
    """The card's resize and crop for an image of ``height`` x ``width`` pixels."""
    resized = _resized_size(spec, height, width)
    if spec.crop == "none":
        return Geometry((height, width), resized, 0, 0, resized)
    crop_height, crop_width = spec.size
    if resized[0] < crop_height or resized[1] < crop_width:
        raise InputError(
            source,
            f"is {width}x{height} pixels (width x height), smaller than the "
            f"{crop_width}x{crop_height} centre crop the model takes",
        )
    top = round((resized[0] - crop_height) / 2.0)
    left = round((resized[1] - crop_width) / 2.0)
    return Geometry((height, width), resized, top, left, (crop_height, crop_width))


def _resized_size(spec: InputSpec, height: int, width: int) -> tuple[int, int]:
    """Shorter side to ``resize`` (longer capped at ``max_size``), as torchvision rounds it."""
    if spec.resize is None:
        if spec.dynamic_size or spec.crop == "center":
            return height, width
        return spec.size
    short, long = sorted((height, width))
    new_short, new_long = spec.resize, int(spec.resize * long / short)
    if spec.max_size is not None and new_long > spec.max_size:
        new_short, new_long = int(spec.max_size * new_short / new_long), spec.max_size
    return (new_short, new_long) if height <= width else (new_long, new_short)


def frame_pixels(
    frames: Tensor, spec: InputSpec, geometry: Geometry, *, cropped: bool = True
) -> Tensor:
    """uint8 ``(T, H, W, 3)`` -> float ``(T, C, h, w)`` in [0, 1]: resized as the card says,
    centre-cropped (unless ``cropped=False``, for inputs computed from whole frames) and in
    the card's channels. Called on a few frames at a time (:data:`RESIZE_CHUNK`) as they
    are decoded, so a long full-HD video never exists in float at its full size."""
    pixels = resize(to_float_frames(frames), spec, geometry.resized)
    if not cropped:
        return pixels
    # contiguous: frames kept from this chunk must not keep its uncropped pixels alive
    return to_channels(crop(pixels, geometry), spec).contiguous()


def to_float_frames(frames: Tensor) -> Tensor:
    """uint8 ``(T, H, W, 3)`` -> float32 ``(T, 3, H, W)`` in [0, 1]."""
    return frames.permute(0, 3, 1, 2).float().div_(255)


def resize(frames: Tensor, spec: InputSpec, size: tuple[int, int]) -> Tensor:
    """Float ``(T, C, H, W)`` frames to ``size`` with the card's interpolation, in [0, 1]."""
    if tuple(frames.shape[-2:]) == tuple(size):
        return frames
    mode = spec.interpolation
    if mode == "nearest":
        return F.interpolate(frames, size=size, mode="nearest")
    resized = F.interpolate(
        frames, size=size, mode=mode, align_corners=False, antialias=spec.antialias
    )
    return resized.clamp_(0, 1) if mode == "bicubic" else resized


def crop(frames: Tensor, geometry: Geometry) -> Tensor:
    height, width = geometry.size
    return frames[..., geometry.top : geometry.top + height, geometry.left : geometry.left + width]


def gather_rows(frames: Tensor, index: Tensor) -> Tensor:
    """``frames[index]``, as a view when the index is one run of consecutive frames (a whole
    video as one clip, or windows laid out one after another), which would otherwise copy
    every pixel once more."""
    in_order = index.dim() == 2 and index.numel() == len(frames) > 0
    if in_order and torch.equal(index.flatten(), torch.arange(len(frames))):
        return frames.reshape(*index.shape, *frames.shape[1:])
    if index.dim() == 2 and len(index) == 1 and index.shape[1] > 0:
        start = int(index[0, 0])
        if torch.equal(index[0], torch.arange(start, start + index.shape[1])):
            return frames[start : start + index.shape[1]][None]
    return frames[index]


def to_channels(frames: Tensor, spec: InputSpec) -> Tensor:
    """RGB pixels to the card's channels: gray by luma; BGR stays RGB here (Normalization flips)."""
    if spec.channel_order == "gray":
        weights = frames.new_tensor(LUMA).view(1, 3, 1, 1)
        return (frames * weights).sum(1, keepdim=True)
    return frames


def to_layout(rows: Tensor, layout: str) -> Tensor:
    """``(N, T, C, H, W)`` (or ``(N, C, H, W)`` for image layouts) to the card's ``layout``."""
    canonical = "NTCHW" if rows.dim() == 5 else "NCHW"
    return rows.permute(*(canonical.index(axis) for axis in layout)).contiguous()


def from_layout(tensor: Tensor, layout: str) -> Tensor:
    """The card's ``layout`` back to ``(N, T, C, H, W)``, with T = 1 for image layouts."""
    canonical = "NTCHW" if "T" in layout else "NCHW"
    rows = tensor.permute(*(layout.index(axis) for axis in canonical))
    return rows if "T" in layout else rows[:, None]


class Normalization(nn.Module):
    """Pixels in [0, 1] (RGB order, the card's layout) -> the model's input, and back.

    The card's value range, mean and std fold into one scale and shift per channel:
    ``x = (low + (high - low) * pixel - mean) / std``; a BGR model gets its channels
    reversed first. It is a module so that it moves with the model (``.to(device)``) and
    can sit inside a function that is differentiated, as pixel-space attacks need.
    """

    scale: Tensor  # buffers, registered in __init__
    shift: Tensor

    def __init__(self, spec: InputSpec) -> None:
        super().__init__()
        low, high = spec.value_range
        mean = torch.tensor(spec.mean or (0.0,) * spec.channels, dtype=torch.float64)
        std = torch.tensor(spec.std or (1.0,) * spec.channels, dtype=torch.float64)
        shape = [1] * len(spec.layout)
        shape[spec.layout.index("C")] = spec.channels
        self.channel_axis = spec.layout.index("C")
        self.value_range = spec.value_range
        self.reverse_channels = spec.channel_order == "BGR"
        self.register_buffer("scale", ((high - low) / std).float().view(shape), persistent=False)
        self.register_buffer("shift", ((low - mean) / std).float().view(shape), persistent=False)

    def forward(self, pixels: Tensor) -> Tensor:
        if self.reverse_channels:
            pixels = pixels.flip(self.channel_axis)
        return torch.addcmul(self.shift, pixels, self.scale)

    def inverse(self, inputs: Tensor) -> Tensor:
        """The model's input -> pixels in [0, 1] (RGB), undoing :meth:`forward`."""
        pixels = (inputs - self.shift) / self.scale
        return pixels.flip(self.channel_axis) if self.reverse_channels else pixels

    def values_to_pixels(self, values: Tensor) -> Tensor:
        """Values already in the card's value range (computed flow) -> pixels in [0, 1]."""
        low, high = self.value_range
        return (values - low) / (high - low)
