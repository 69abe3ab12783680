"""Train the shipped ``convlstm-moving-digits`` model and measure it on the held-out split.

    OMP_NUM_THREADS=1 python -m zoo_plugins.convlstm.train \\
        --out plugins/convlstm/weights/convlstm-moving-digits.safetensors --steps 1500

Each step draws a fresh batch of training clips (digit images of the train split, clip seed
derived from the step), so the model never sees the same clip twice and never sees a
held-out digit image. The loss is the per-pixel binary cross-entropy, as the paper trains
Moving MNIST. At the end the script prints, as JSON, the held-out mean squared error of the
model and of the persistence baseline (the last input frame repeated), and the file's sha256.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from zoo.weights import sha256_of
from zoo_plugins.convlstm import ConvLSTMConfig
from zoo_plugins.convlstm.data import HELD_OUT_SEED, moving_digits
from zoo_plugins.convlstm.model import EncoderForecaster, build

INPUT_FRAMES = 10
MODEL_CONFIG = ConvLSTMConfig(
    in_channels=1,
    hidden_channels=[16, 16],
    kernel_size=3,
    patch_size=4,
    output_frames=10,
    peephole=True,
)
HELD_OUT_CLIPS = 256
STEP_SEED_BASE = 1_000_003


def split_clip(clips: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Clips of ``INPUT_FRAMES + output_frames`` frames -> (inputs, targets) tensors."""
    tensor = torch.from_numpy(clips)
    return tensor[:, :INPUT_FRAMES], tensor[:, INPUT_FRAMES:]


def persistence(inputs: torch.Tensor, output_frames: int) -> torch.Tensor:
    """The baseline forecast: the last input frame, repeated."""
    return inputs[:, -1:].expand(-1, output_frames, -1, -1, -1)


@torch.no_grad()
def held_out_mse(model: EncoderForecaster, clips: int = HELD_OUT_CLIPS) -> dict[str, float]:
    """Mean squared error per pixel on the fixed held-out clips: model, persistence, zeros."""
    frames = INPUT_FRAMES + model.config.output_frames
    inputs, targets = split_clip(moving_digits(clips, frames, "held-out", HELD_OUT_SEED))
    model.eval()
    forecast = torch.cat([model(batch) for batch in inputs.split(64)])
    return {
        "model": F.mse_loss(forecast, targets).item(),
        "persistence": F.mse_loss(persistence(inputs, targets.shape[1]), targets).item(),
        "all-black": targets.square().mean().item(),
    }


def train(steps: int, batch_size: int, learning_rate: float, seed: int) -> EncoderForecaster:
    torch.manual_seed(seed)
    model = build(MODEL_CONFIG)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, learning_rate, total_steps=steps)
    frames = INPUT_FRAMES + MODEL_CONFIG.output_frames
    started = time.monotonic()
    model.train()
    for step in range(steps):
        clips = moving_digits(batch_size, frames, "train", seed * STEP_SEED_BASE + step)
        inputs, targets = split_clip(clips)
        loss = F.binary_cross_entropy(model(inputs), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
        optimizer.step()
        schedule.step()
        if step % 25 == 0 or step == steps - 1:
            elapsed = time.monotonic() - started
            print(f"step {step:5d}  bce {loss.item():.4f}  {elapsed:6.0f} s", flush=True)
    return model.eval()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="safetensors file to write")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    model = train(args.steps, args.batch_size, args.learning_rate, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    state = {key: tensor.contiguous() for key, tensor in model.state_dict().items()}
    save_file(state, args.out, metadata={"format": "pt", "config": MODEL_CONFIG.model_dump_json()})
    report = {"held_out_mse": held_out_mse(model), "sha256": sha256_of(args.out), **vars(args)}
    print(json.dumps(report, default=str, indent=2))


if __name__ == "__main__":
    main()
