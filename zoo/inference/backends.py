"""Where the forward runs: PyTorch (eager or compiled) or onnxruntime, on CPU or GPU.

OpenVINO, the third backend, is :mod:`zoo.inference.openvino_backend`.

A backend is called with the model's inputs by name (CPU tensors, rows first) and returns
the raw outputs; the predictor turns those into results the same way for every backend,
so both backends take the same inputs and give the same results.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from zoo.cards import Card
from zoo.errors import ZooError
from zoo.inference.precision import autocast_dtype, check_precision

#: ``channels_last`` puts channels last in every 4-D tensor and every 5-D one (torch's
#: channels_last and channels_last_3d), in the weights and in the inputs alike.
MEMORY_FORMATS = ("contiguous", "channels_last")
CHANNELS_LAST = {4: torch.channels_last, 5: torch.channels_last_3d}


def pick_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` is CUDA, then Apple's MPS, then the CPU; a named device must exist here."""
    if str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ZooError(f"unknown device {device!r}: {error}") from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise ZooError(f"device {device!r} asked for, but no CUDA device is available here")
    if chosen.type == "mps" and not torch.backends.mps.is_available():
        raise ZooError(f"device {device!r} asked for, but MPS is not available here")
    return chosen


class TorchBackend:
    """An ``nn.Module`` on a device, optionally in a channels-last format, autocast, compiled.

    ``precision`` bf16 or fp16 runs the forward under ``torch.autocast`` in that dtype.
    """

    name = "torch"

    def __init__(
        self,
        model: nn.Module,
        card: Card,
        *,
        device: torch.device,
        precision: str | None = None,
        memory_format: str = "contiguous",
        compile: bool = False,
    ) -> None:
        if memory_format not in MEMORY_FORMATS:
            raise ZooError(
                f"unknown memory format {memory_format!r}; expected one of "
                f"{', '.join(MEMORY_FORMATS)}"
            )
        self.device = device
        self.precision = check_precision(precision)
        self.autocast = autocast_dtype(self.precision, device)
        self.memory_format = memory_format
        self.input_names = [spec.name for spec in card.inputs]
        self.module = model.eval().to(device=device)
        if memory_format == "channels_last":
            self.module.apply(_channels_last)
        self.compiled = compile
        self.forward = torch.compile(self.module) if compile else self.module

    def __call__(self, inputs: dict[str, Tensor]) -> Any:
        return self.call(lambda _, *tensors: self.forward(*tensors), inputs)

    def call(self, function: Callable[..., Any], inputs: dict[str, Tensor]) -> Any:
        """``function(module, *inputs)`` as the forward runs: on the device, in the memory
        format, under autocast and inference mode (a plugin's pooled or per-time features)."""
        tensors = [self._place(inputs[name]) for name in self.input_names]
        autocast = (
            torch.autocast(self.device.type, dtype=self.autocast)
            if self.autocast is not None
            else nullcontext()
        )
        with torch.inference_mode(), autocast:
            return function(self.module, *tensors)

    def _place(self, tensor: Tensor) -> Tensor:
        """To the device (pinned and non-blocking on CUDA), in the model's memory format."""
        if self.device.type == "cuda":
            tensor = tensor.pin_memory().to(self.device, non_blocking=True)
        else:
            tensor = tensor.to(self.device)
        if self.memory_format == "channels_last" and tensor.dim() in CHANNELS_LAST:
            tensor = tensor.contiguous(memory_format=CHANNELS_LAST[tensor.dim()])
        return tensor

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "device": str(self.device),
            "precision": self.precision,
            "memory_format": self.memory_format,
            "compiled": self.compiled,
        }


def _channels_last(module: nn.Module) -> None:
    """Channels last for the module's own 4-D and 5-D parameters and buffers, in place."""
    for tensor in [*module.parameters(recurse=False), *module.buffers(recurse=False)]:
        if tensor.dim() in CHANNELS_LAST:
            tensor.data = tensor.data.contiguous(memory_format=CHANNELS_LAST[tensor.dim()])


class OnnxRuntimeBackend:
    """The ONNX file ``zoo export`` writes, run by onnxruntime.

    The graph's inputs are the card's inputs (float32, the card's layout) and its outputs
    the architecture's ``ExportHints.output_names``, so it takes the inputs the PyTorch
    backend takes and its outputs go through the same post-processing. The CUDA provider
    runs it when onnxruntime-gpu is installed and the device is a GPU; otherwise the CPU
    provider does, with as many threads as torch uses.
    """

    name = "onnxruntime"

    def __init__(
        self, path: Path, card: Card, *, device: torch.device, precision: str = "fp32"
    ) -> None:
        import onnxruntime

        self.path = path
        self.device = device
        self.precision = check_precision(precision)
        self.providers = onnx_providers(device)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.inter_op_num_threads = 1
        try:
            self.session = onnxruntime.InferenceSession(
                str(path), options, providers=self.providers
            )
        except Exception as error:  # onnxruntime raises its own unexported error types
            raise ZooError(f"onnxruntime cannot load {path}: {error}") from None
        self.input_names = [spec.name for spec in card.inputs]
        self.output_names = [output.name for output in self.session.get_outputs()]
        self.shapes = {
            graph_input.name: graph_input.shape for graph_input in self.session.get_inputs()
        }
        graph_inputs = list(self.shapes)
        if graph_inputs != self.input_names:
            raise ZooError(
                f"{path} takes inputs {graph_inputs}, but card {card.name!r} names "
                f"{self.input_names}; export it with `zoo export {card.name}`"
            )

    def __call__(self, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        for name in self.input_names:
            self._check_shape(name, tuple(inputs[name].shape))
        feeds = {name: inputs[name].detach().float().cpu().numpy() for name in self.input_names}
        outputs = self.session.run(self.output_names, feeds)
        return {
            name: torch.from_numpy(value)
            for name, value in zip(self.output_names, outputs, strict=True)
        }

    def _check_shape(self, name: str, shape: tuple[int, ...]) -> None:
        """An axis fixed at export must match: say so before onnxruntime fails obscurely."""
        graph = self.shapes[name]
        fixed = [size for size in graph if isinstance(size, int)]
        if len(graph) != len(shape) or any(
            isinstance(size, int) and size != found
            for size, found in zip(graph, shape, strict=True)
        ):
            raise ZooError(
                f"{self.path} takes {name} of shape {graph} (axes fixed at export: {fixed}), "
                f"found {list(shape)}; use the torch backend for inputs of other sizes"
            )

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "device": str(self.device),
            "provider": self.session.get_providers()[0],
            "precision": self.precision,
            "file": str(self.path),
        }


def onnx_providers(device: torch.device) -> list[str]:
    """CUDA's provider for a GPU (when this onnxruntime has it), else the CPU's."""
    import onnxruntime

    if device.type == "cpu":
        return ["CPUExecutionProvider"]
    if onnxruntime_runs_on(device):
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    raise ZooError(
        f"onnxruntime cannot run on {device}: this onnxruntime offers "
        f"{', '.join(onnxruntime.get_available_providers())} (onnxruntime-gpu adds CUDA)"
    )


def onnxruntime_runs_on(device: torch.device) -> bool:
    """Whether this onnxruntime has a provider for ``device`` (the CPU, or CUDA with -gpu)."""
    import onnxruntime

    if device.type == "cpu":
        return True
    cuda = "CUDAExecutionProvider" in onnxruntime.get_available_providers()
    return device.type == "cuda" and cuda
