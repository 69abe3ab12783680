"""One optimizer step and one epoch: AdamW, warm-up then cosine, label smoothing, clipping,
autocast; the same loop trains a whole model (full mode) or a linear head on cached
features (linear mode).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from zoo.errors import FinetuneError
from zoo.finetuning import distributed
from zoo.finetuning.options import FinetuneOptions
from zoo.finetuning.report import Unreadable
from zoo.inference.postprocess import named_outputs

PRECISIONS: dict[str, torch.dtype | None] = {
    "fp32": None,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
}
#: The warm-up starts at this share of the peak learning rate.
WARMUP_START = 0.01
#: Steps between progress-bar updates (each reads the loss back from the device).
BAR_EVERY = 10


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    if precision == "fp16" and device.type != "cuda":
        raise FinetuneError(
            "precision fp16 needs a GPU (autocast to float16 and loss scaling are CUDA's); use "
            "bf16 or fp32 on the CPU"
        )
    return PRECISIONS[precision]


def make_optimizer(module: nn.Module, options: FinetuneOptions) -> torch.optim.AdamW:
    """AdamW with weight decay on weights only: biases and norm scales (1-D) are not decayed,
    as timm's ``param_groups_weight_decay`` does."""
    trainable = [(name, p) for name, p in module.named_parameters() if p.requires_grad]
    decayed = [p for _, p in trainable if p.ndim > 1]
    others = [p for _, p in trainable if p.ndim <= 1]
    groups = [
        {"params": decayed, "weight_decay": options.weight_decay},
        {"params": others, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=options.learning_rate)


def make_schedule(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Per step: linear warm-up from 1% of the peak, then cosine decay to zero."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return WARMUP_START + (1 - WARMUP_START) * step / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def first_output(raw: object, names: Sequence[str]) -> Tensor:
    """A classifier's logits among its outputs (the first of ExportHints.output_names)."""
    outputs = named_outputs(raw, names)
    if not isinstance(outputs, dict):
        raise FinetuneError("the model returned per-image results, not class scores")
    return next(iter(outputs.values()))


@dataclass
class Stepper:
    """Everything one optimizer step needs, built once per run."""

    module: nn.Module
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LambdaLR
    device: torch.device
    autocast: torch.dtype | None
    clip_grad: float | None
    label_smoothing: float
    output_names: Sequence[str]
    scaler: torch.amp.GradScaler | None = field(default=None)

    def __post_init__(self) -> None:
        self.parameters = [p for p in self.module.parameters() if p.requires_grad]
        self.loss = nn.CrossEntropyLoss(label_smoothing=self.label_smoothing)
        if self.autocast == torch.float16:
            self.scaler = torch.amp.GradScaler(self.device.type)

    def __call__(self, inputs: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        """One step on a batch: the summed loss and the number right, on the device."""
        inputs = inputs.to(self.device, non_blocking=True)
        labels = labels.to(self.device, non_blocking=True)
        casting = (
            torch.autocast(self.device.type, dtype=self.autocast)
            if self.autocast is not None
            else nullcontext()
        )
        with casting:
            raw = self.module(inputs)
        logits = first_output(raw, self.output_names).float()
        loss = self.loss(logits, labels)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        if self.clip_grad:
            nn.utils.clip_grad_norm_(self.parameters, self.clip_grad)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.schedule.step()
        correct = (logits.detach().argmax(-1) == labels).sum()
        return loss.detach() * len(labels), correct


@dataclass
class EpochTrain:
    """What one epoch of training measured (summed over processes)."""

    loss: float
    accuracy: float
    samples: int
    seconds: float
    unreadable: list[Unreadable]

    @property
    def samples_per_second(self) -> float:
        return self.samples / self.seconds if self.seconds else 0.0


Batch = tuple[Tensor, Tensor, list[Unreadable]]


def train_epoch(step: Stepper, batches: Iterable[Batch], bar: Callable | None = None) -> EpochTrain:
    """Every batch through :class:`Stepper`; ``bar(samples, loss, accuracy, rate)`` is told
    the progress every few steps."""
    step.module.train()
    started = time.perf_counter()
    loss_sum = torch.zeros((), device=step.device)
    correct = torch.zeros((), device=step.device)
    samples = 0
    unreadable: list[Unreadable] = []
    for number, (inputs, labels, failed) in enumerate(batches, start=1):
        unreadable += failed
        if len(labels) == 0:
            continue
        batch_loss, batch_correct = step(inputs, labels)
        loss_sum += batch_loss
        correct += batch_correct
        samples += len(labels)
        if bar is not None and (number % BAR_EVERY == 0 or number == 1):
            rate = samples / max(time.perf_counter() - started, 1e-9)
            bar(len(labels), float(loss_sum) / samples, float(correct) / samples, rate)
        elif bar is not None:
            bar(len(labels), None, None, None)
    seconds = time.perf_counter() - started
    sums = distributed.total(
        torch.tensor([float(loss_sum), float(correct), samples], dtype=torch.float64)
    )
    count = max(float(sums[2]), 1.0)
    return EpochTrain(
        loss=float(sums[0]) / count,
        accuracy=100 * float(sums[1]) / count,
        samples=int(sums[2]),
        seconds=seconds,
        unreadable=[item for part in distributed.gather([unreadable]) for item in part],
    )


class EpochBar:
    """A tqdm bar of one epoch on a terminal (stderr), on the main process only."""

    def __init__(self, epoch: int, epochs: int, samples: int) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(
            total=samples,
            desc=f"epoch {epoch + 1}/{epochs}",
            unit="sample",
            disable=None if distributed.is_main() else True,
            leave=False,
        )

    def __enter__(self) -> Callable:
        def update(
            count: int, loss: float | None, accuracy: float | None, rate: float | None
        ) -> None:
            self.bar.update(count)
            if loss is not None and accuracy is not None and rate is not None:
                self.bar.set_postfix(
                    loss=f"{loss:.4f}", acc=f"{100 * accuracy:.1f}%", rate=f"{rate:.1f}/s"
                )

        return update

    def __exit__(self, *exc_info: object) -> None:
        self.bar.close()
