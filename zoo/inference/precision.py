"""The precision a model runs in: one word for every backend, always asked for, never guessed.

``fp32`` is the default everywhere. ``bf16`` is torch's autocast on the torch backend and
OpenVINO's bfloat16 inference precision on the openvino backend; on a CPU it needs
AVX512-BF16 or AMX (without them bfloat16 is emulated, slower than float32, and refused
here). ``fp16`` is torch's float16 autocast on a GPU (refused on a CPU, where torch has
no float16 autocast). ``int8`` is a post-training quantized graph (:mod:`zoo.quantize`)
run by onnxruntime or OpenVINO.

OpenVINO chooses bfloat16 by itself on a CPU that has it, silently: every OpenVINO model
the zoo compiles names its inference precision explicitly (:data:`OPENVINO_HINTS`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from zoo.errors import ZooError

if TYPE_CHECKING:
    import torch

Precision = Literal["fp32", "bf16", "fp16", "int8"]
PRECISIONS: tuple[Precision, ...] = ("fp32", "bf16", "fp16", "int8")
#: What OpenVINO's INFERENCE_PRECISION_HINT says for each precision it is asked for. An int8
#: graph's quantized operations run in int8; the rest of it stays float32.
OPENVINO_HINTS = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}
#: What each CPU feature is called in /proc/cpuinfo, by what it does for bfloat16.
BF16_FEATURES = {"avx512_bf16": "AVX512-BF16", "amx_bf16": "AMX-BF16"}


def check_precision(precision: str | None) -> Precision:
    """``precision`` if it is one the zoo knows (None is fp32), else a ZooError listing them."""
    if precision is None:
        return "fp32"
    if precision not in PRECISIONS:
        raise ZooError(f"unknown precision {precision!r}; expected one of {', '.join(PRECISIONS)}")
    return precision


def cpu_bf16_features() -> list[str]:
    """The CPU features here that run bfloat16 natively (AVX512-BF16, AMX-BF16), maybe none.

    torch's own CPU probe (cpuinfo, the same on every OS it supports) answers it.
    """
    import torch.cpu

    found = []
    if torch.cpu._is_avx512_bf16_supported():
        found.append(BF16_FEATURES["avx512_bf16"])
    if torch.cpu._is_amx_tile_supported():
        found.append(BF16_FEATURES["amx_bf16"])
    return found


def require_bf16_cpu() -> None:
    """Refuse bfloat16 on a CPU that would only emulate it, naming what is missing."""
    if not cpu_bf16_features():
        raise ZooError(
            "precision bf16 needs a CPU with AVX512-BF16 or AMX; this CPU has neither, so "
            "bfloat16 would be emulated and slower than fp32: use fp32 (or int8 with "
            "--calibrate), or bf16 on a GPU"
        )


def autocast_dtype(precision: str | None, device: torch.device) -> torch.dtype | None:
    """The dtype torch autocasts to for ``precision`` on ``device``, or None for float32."""
    import torch

    chosen = check_precision(precision)
    if chosen == "fp32":
        return None
    if chosen == "int8":
        raise ZooError(
            "precision int8 runs a quantized ONNX graph: use backend onnxruntime or openvino "
            "(the default picks one), not torch"
        )
    if chosen == "fp16":
        if device.type == "cpu":
            raise ZooError(
                "precision fp16 needs a GPU: torch has no float16 autocast on a CPU; use bf16 "
                "on a CPU, or fp16 with --device cuda"
            )
        return torch.float16
    if device.type == "cpu":
        require_bf16_cpu()
    return torch.bfloat16
