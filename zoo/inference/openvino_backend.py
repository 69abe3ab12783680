"""The ONNX file ``zoo export`` writes, compiled by OpenVINO for the CPU.

It is the file the onnxruntime backend runs (the same inputs, outputs and dynamic axes),
read and compiled by ``openvino.Core().compile_model`` in the precision asked for: float32
unless bf16 is asked, set explicitly, since OpenVINO would otherwise pick bfloat16 by
itself on a CPU that has it. It runs with as many threads as torch uses, one stream,
latency first. The ``openvino`` extra pins the releases the zoo's tests ran with: Intel
supports only its own CPUs, and a release has crashed on AMD ones before.

With ``cache_dir`` OpenVINO keeps each compiled model there (keyed by the graph and the
settings) and later loads it instead of compiling: measured here, ResNeXt-50 from 2.4-2.9 s
to 0.6 s and ViT-B/16 from 13-17 s to 3-5 s (read and compile, one thread, loaded machine).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from zoo.cards import Card
from zoo.errors import RuntimeCompileError, ZooError
from zoo.inference.precision import OPENVINO_HINTS, check_precision, require_bf16_cpu


class OpenVinoBackend:
    """An ONNX file compiled by OpenVINO on the CPU, in an explicitly named precision."""

    name = "openvino"

    def __init__(
        self,
        path: Path,
        card: Card,
        *,
        precision: str = "fp32",
        cache_dir: Path | None = None,
    ) -> None:
        import openvino

        self.path = path
        self.precision = check_precision(precision)
        if self.precision not in OPENVINO_HINTS:
            raise ZooError(
                f"precision {precision} is not an OpenVINO CPU precision; expected one of "
                f"{', '.join(OPENVINO_HINTS)}"
            )
        if self.precision == "bf16":
            require_bf16_cpu()
        core = openvino.Core()
        config: dict[str, Any] = {
            "INFERENCE_PRECISION_HINT": OPENVINO_HINTS[self.precision],
            "INFERENCE_NUM_THREADS": torch.get_num_threads(),
            "NUM_STREAMS": 1,
            "PERFORMANCE_HINT": "LATENCY",
        }
        if cache_dir is not None:
            config["CACHE_DIR"] = str(cache_dir)
        try:  # from the path, so a cached compilation skips reading the ONNX file too
            self.compiled = core.compile_model(str(path), "CPU", config)
        except Exception as error:  # OpenVINO raises plain RuntimeErrors with long texts
            raise RuntimeCompileError(
                f"OpenVINO cannot compile {path}: {_first_line(error)}"
            ) from None
        self.request = self.compiled.create_infer_request()
        self.input_names = [spec.name for spec in card.inputs]
        graph_inputs = [port.get_any_name() for port in self.compiled.inputs]
        if graph_inputs != self.input_names:
            raise ZooError(
                f"{path} takes inputs {graph_inputs}, but card {card.name!r} names "
                f"{self.input_names}; export it with `zoo export {card.name}`"
            )
        self.output_names = [port.get_any_name() for port in self.compiled.outputs]
        self.shapes = {
            port.get_any_name(): port.get_partial_shape() for port in self.compiled.inputs
        }

    @property
    def inference_precision(self) -> str:
        """What the compiled model reports it computes in (``f32``, ``bf16``): not what we asked."""
        return self.compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()

    def __call__(self, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        feeds = {}
        for name in self.input_names:
            array = inputs[name].detach().float().cpu().numpy()
            self._check_shape(name, array.shape)
            feeds[name] = array
        results = self.request.infer(feeds)
        # The request owns its output buffers and reuses them on the next call: copy out.
        return {
            name: torch.from_numpy(results[port].copy())
            for name, port in zip(self.output_names, self.compiled.outputs, strict=True)
        }

    def _check_shape(self, name: str, shape: tuple[int, ...]) -> None:
        """An axis fixed at export must match: say so before OpenVINO fails obscurely."""
        graph = self.shapes[name]
        if not graph.compatible(_partial_shape(shape)):
            raise ZooError(
                f"{self.path} takes {name} of shape {graph}, found {list(shape)}; use the "
                "torch backend for inputs of other sizes"
            )

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "device": "cpu",
            "precision": self.precision,
            "inference_precision": self.inference_precision,
            "file": str(self.path),
        }


def _partial_shape(shape: tuple[int, ...]) -> Any:
    import openvino

    return openvino.PartialShape(list(shape))


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__
