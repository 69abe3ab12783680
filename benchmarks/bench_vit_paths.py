"""Where ViT-B/16's float32 time goes, and what each runtime path makes of it, on one thread.

1. The profile: torch eager's forward split into the attention's matrix products
   (scaled_dot_product_attention), the linear layers by role (qkv, attention output,
   MLP fc1/fc2, head) and everything else, from torch.profiler.
2. The paths, timed interleaved on one input, each checked against eager: onnxruntime on
   the dynamo export at the zoo's opset (18) and at opset 23 (torch writes the Attention
   op, which onnxruntime runs with its own CPU kernel); onnxruntime after onnxscript's
   ``ort_fusions.optimize_for_ort`` (with the fusions it reports; a run that fuses nothing
   says so); OpenVINO float32 (its own SDPA fusion); torch.compile with the CPU inductor.

    python benchmarks/bench_vit_paths.py --runs 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import onnx
import torch

import zoo

RESULTS = Path(__file__).parent / "results" / "vit_paths.json"


def profile(model: torch.nn.Module, x: torch.Tensor) -> dict[str, float]:
    """Milliseconds of one forward by role: attention products, each linear layer, the rest."""
    from torch.profiler import ProfilerActivity, record_function
    from torch.profiler import profile as run_profile

    hooks = []
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):
            role = name.rsplit(".", 1)[-1]

            def enter(m, args, role=role):
                m._zoo_context = record_function(f"linear:{role}")
                m._zoo_context.__enter__()

            def leave(m, args, out):
                m._zoo_context.__exit__(None, None, None)

            hooks += [module.register_forward_pre_hook(enter), module.register_forward_hook(leave)]
    with torch.inference_mode():
        model(x)
        with run_profile(activities=[ProfilerActivity.CPU]) as prof:
            model(x)
    for hook in hooks:
        hook.remove()
    totals: dict[str, float] = defaultdict(float)
    whole = 0.0
    for event in prof.key_averages():
        if event.key.startswith("linear:"):
            totals[event.key] += event.cpu_time_total / 1e3
        if event.key == "aten::scaled_dot_product_attention":
            totals["attention (sdpa)"] += event.cpu_time_total / 1e3
    for event in prof.events():
        if event.cpu_parent is None:
            whole += event.cpu_time_total / 1e3
    totals["whole forward"] = whole
    totals["other"] = whole - sum(v for k, v in totals.items() if k != "whole forward")
    return {key: round(value, 1) for key, value in totals.items()}


def export(model: torch.nn.Module, x: torch.Tensor, opset: int, path: Path) -> Path:
    program = torch.onnx.export(
        model, (x,), dynamo=True, opset_version=opset, external_data=False, verbose=False
    )
    program.save(str(path))
    return path


def ort_call(path: Path):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    ops = sorted({node.op_type for node in onnx.load(str(path)).graph.node})
    return (lambda x: session.run(None, {name: x.numpy()})[0]), ops


def fused_for_ort(path: Path, target: Path) -> tuple[Path, dict]:
    import onnx_ir as ir
    from onnxscript.rewriter import ort_fusions

    model = ir.load(str(path))
    model, counts = ort_fusions.optimize_for_ort(model)
    ir.save(model, str(target))
    return target, {key: value for key, value in counts.items() if value}


def openvino_call(path: Path):
    import openvino

    compiled = openvino.Core().compile_model(
        str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": 1}
    )
    request = compiled.create_infer_request()
    return lambda x: request.infer({0: x.numpy()})[0].copy()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--skip-compile", action="store_true")
    parser.add_argument(
        "--small", action="store_true", help="the test-size ViT: a dry run of every path"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    card = zoo.card("vit-b16-in1k")
    if args.small:
        from zoo.small import small_card

        card = small_card(card)
    model = zoo.load(card, pretrained=False).eval()
    x = torch.randn(1, 3, *card.inputs[0].size)
    with torch.inference_mode():
        reference = model(x).numpy()
    report: dict = {"profile_ms": profile(model, x), "paths": {}, "load_average": os.getloadavg()}
    calls = {"torch eager": lambda x: model(x).numpy()}
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        for opset in (18, 23):
            path = export(model, x, opset, folder / f"vit-{opset}.onnx")
            calls[f"onnxruntime opset {opset}"], ops = ort_call(path)
            report["paths"][f"onnxruntime opset {opset}"] = {"attention_op": "Attention" in ops}
        fused, counts = fused_for_ort(folder / "vit-18.onnx", folder / "vit-fused.onnx")
        report["paths"]["onnxruntime + optimize_for_ort"] = {"fusions": counts}
        if not counts:
            print("optimize_for_ort fused nothing")
        calls["onnxruntime + optimize_for_ort"], _ = ort_call(fused)
        calls["openvino fp32"] = openvino_call(folder / "vit-18.onnx")
        if not args.skip_compile:
            compiled = torch.compile(model)
            with torch.inference_mode():
                compiled(x)
            calls["torch.compile inductor"] = lambda x: compiled(x).numpy()
        times = {name: [] for name in calls}
        with torch.inference_mode():
            for name, call in calls.items():
                found = call(x)
                difference = float(np.abs(found - reference).max() / np.abs(reference).max())
                report["paths"].setdefault(name, {})["relative_difference"] = difference
            for index in range(args.runs + 1):
                names = list(calls)
                shift = index % len(names)
                for name in names[shift:] + names[:shift]:
                    start = time.perf_counter()
                    calls[name](x)
                    if index:
                        times[name].append(time.perf_counter() - start)
    eager = statistics.median(times["torch eager"])
    for name, values in times.items():
        median = statistics.median(values)
        report["paths"][name] |= {
            "median_ms": round(median * 1e3, 1),
            "vs_eager": round(eager / median, 3),
        }
    if not args.small:
        RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
