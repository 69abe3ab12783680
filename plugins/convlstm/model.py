"""The ConvLSTM cell and the encoding–forecasting network of Shi et al. 2015 (arXiv 1506.04214).

Layout: frames in as NTCHW, forecast frames out as NTCHW. Frames are cut into
``patch_size`` x ``patch_size`` blocks stacked as channels before the recurrent layers
(the paper turns 64x64 Moving-MNIST frames into 16x16x16 tensors this way) and put back
after the 1x1 output convolution.

The time loops run as plain Python loops in eager mode (fast, and autograd through them is
cheap) and as ``torch._higher_order_ops.scan`` while ``torch.export`` traces the model, so the
ONNX graph holds one ``Scan`` node and the number of input frames stays a dynamic axis.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch._higher_order_ops import scan

from zoo_plugins.convlstm import ConvLSTMConfig

State = tuple[Tensor, Tensor]


class ConvLSTMCell(nn.Module):
    """One ConvLSTM layer: a single convolution over ``[x, h]`` gives all four gates.

    Gates are stacked in the order input, forget, output, cell candidate (i, f, o, g), the
    order of the ``conv-lstm`` package, so its ``conv`` weights load unchanged.

    With ``peephole=True`` the gates also see the cell state, as in the paper's equations:
    ``w_ci ∘ c_{t-1}`` and ``w_cf ∘ c_{t-1}`` for the input and forget gates, ``w_co ∘ c_t``
    for the output gate. The paper writes these Hadamard weights as full 3D tensors, but its
    Moving-MNIST parameter counts (Table 1) add exactly one weight per hidden channel and
    gate, so they are per-channel here (shape ``(hidden, 1, 1)``), which also keeps the
    model independent of the frame size. ``peephole=False`` is the common peephole-free cell.

    ``in_channels=0`` makes a cell without input (the forecaster's bottom layer): its
    convolution sees ``h`` only.
    """

    def __init__(
        self, in_channels: int, hidden_channels: int, kernel_size: int, peephole: bool
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.conv = nn.Conv2d(
            in_channels + hidden_channels,
            4 * hidden_channels,
            kernel_size,
            padding=kernel_size // 2,
        )
        self.peephole = peephole
        if peephole:
            self.w_ci = nn.Parameter(torch.zeros(hidden_channels, 1, 1))
            self.w_cf = nn.Parameter(torch.zeros(hidden_channels, 1, 1))
            self.w_co = nn.Parameter(torch.zeros(hidden_channels, 1, 1))

    def forward(self, x: Tensor | None, state: State) -> State:
        h, c = state
        if (x is None) != (self.in_channels == 0):
            raise ValueError(
                f"this cell takes {self.in_channels} input channels; "
                f"found {'no input' if x is None else 'an input'}"
            )
        gates = self.conv(h if x is None else torch.cat([x, h], dim=1))
        i, f, o, g = gates.chunk(4, dim=1)
        if self.peephole:
            i = i + self.w_ci * c
            f = f + self.w_cf * c
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        if self.peephole:
            o = o + self.w_co * c
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


class ConvLSTMStack(nn.Module):
    """Stacked ConvLSTM layers; each layer's hidden state is the input of the layer above."""

    def __init__(
        self, in_channels: int, hidden_channels: list[int], kernel_size: int, peephole: bool
    ) -> None:
        super().__init__()
        inputs = [in_channels, *hidden_channels[:-1]]
        self.cells = nn.ModuleList(
            ConvLSTMCell(cin, hidden, kernel_size, peephole)
            for cin, hidden in zip(inputs, hidden_channels, strict=True)
        )

    def forward(self, x: Tensor | None, states: tuple[State, ...]) -> tuple[State, ...]:
        new_states = []
        for cell, state in zip(self.cells, states, strict=True):
            h, c = cell(x, state)
            new_states.append((h, c))
            x = h
        return tuple(new_states)


class EncoderForecaster(nn.Module):
    """The paper's encoding–forecasting network (its Fig. 3).

    The encoder reads the input frames; its final states are copied layer by layer into a
    forecaster of the same shape, which runs ``output_frames`` steps without input. At each
    forecast step a 1x1 convolution over the concatenated hidden states of all forecaster
    layers gives the frame's patches. A sigmoid keeps forecasts in the inputs' [0, 1] range
    (the paper trains Moving MNIST with a per-pixel cross-entropy loss on such outputs).
    """

    def __init__(self, config: ConvLSTMConfig) -> None:
        super().__init__()
        self.config = config
        patch_channels = config.in_channels * config.patch_size**2
        args = (config.hidden_channels, config.kernel_size, config.peephole)
        self.encoder = ConvLSTMStack(patch_channels, *args)
        self.forecaster = ConvLSTMStack(0, *args)
        self.output = nn.Conv2d(sum(config.hidden_channels), patch_channels, kernel_size=1)

    def forward(self, frames: Tensor) -> Tensor:
        """``(N, T, C, H, W)`` frames in [0, 1] -> ``(N, output_frames, C, H, W)`` forecast."""
        self._check_input(frames)
        patches = self._to_patches(frames)
        # h and c start as separate zero tensors: scan rejects a carry whose leaves alias.
        initial = tuple(
            (patches.new_zeros(shape), patches.new_zeros(shape))
            for shape in self._state_shapes(patches)
        )
        encoded, _ = over_time(self._encode_step, initial, patches, length=None)
        _, forecast = over_time(self._forecast_step, encoded, None, self.config.output_frames)
        return forecast

    def _state_shapes(self, patches: Tensor) -> list[tuple[Any, ...]]:
        """One ``(N, hidden, H / p, W / p)`` per layer; N stays symbolic under export."""
        n, height, width = patches.shape[0], patches.shape[-2], patches.shape[-1]
        return [(n, hidden, height, width) for hidden in self.config.hidden_channels]

    def _encode_step(self, states: tuple[State, ...], x: Tensor) -> tuple[tuple[State, ...], tuple]:
        return self.encoder(x, states), ()

    def _forecast_step(
        self, states: tuple[State, ...], _: None
    ) -> tuple[tuple[State, ...], Tensor]:
        states = self.forecaster(None, states)
        hidden = torch.cat([h for h, _ in states], dim=1)
        patches = torch.sigmoid(self.output(hidden))
        return states, F.pixel_shuffle(patches, self.config.patch_size)

    def _to_patches(self, frames: Tensor) -> Tensor:
        """``(N, T, C, H, W)`` -> ``(N, T, C * p * p, H / p, W / p)``."""
        return F.pixel_unshuffle(frames.flatten(0, 1), self.config.patch_size).unflatten(
            0, frames.shape[:2]
        )

    def _check_input(self, frames: Tensor) -> None:
        config = self.config
        if frames.dim() != 5 or frames.shape[2] != config.in_channels:
            raise ValueError(
                f"expected frames of shape (N, T, {config.in_channels}, H, W) (NTCHW), "
                f"found {tuple(frames.shape)}"
            )
        height, width = frames.shape[-2:]
        if height % config.patch_size or width % config.patch_size:
            raise ValueError(
                f"frame height and width must be multiples of patch_size {config.patch_size}, "
                f"found {height}x{width}"
            )


def over_time(
    step: Callable[[Any, Tensor | None], tuple[Any, Tensor | tuple]],
    state: Any,
    inputs: Tensor | None,
    length: int | None,
) -> tuple[Any, Tensor | tuple]:
    """Run ``step`` over ``inputs`` (time on dim 1) or ``length`` times without input.

    Returns the final state and the per-step outputs stacked on dim 1 (``()`` when the step
    outputs ``()``). Under ``torch.export`` this is a ``scan``, which exports as one ONNX
    ``Scan`` whose trip count follows the input; in eager mode a Python loop does the same.
    """
    if exporting():
        time_major = None if inputs is None else inputs.transpose(0, 1)
        state, outputs = scan(step, state, time_major, length=length)
        return state, outputs.transpose(0, 1) if isinstance(outputs, Tensor) else ()
    steps = inputs.unbind(1) if inputs is not None else [None] * (length or 0)
    outputs = []
    for x in steps:
        state, output = step(state, x)
        outputs.append(output)
    if not outputs or not isinstance(outputs[0], Tensor):
        return state, ()
    return state, torch.stack(outputs, dim=1)


def exporting() -> bool:
    """Whether ``torch.export`` (which the ONNX exporter uses) is tracing the model."""
    return torch.compiler.is_exporting()


def build(config: ConvLSTMConfig) -> EncoderForecaster:
    return EncoderForecaster(config)
