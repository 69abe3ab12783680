"""The whole recipe in one place: parent -> data -> model -> epochs -> checkpoints -> new card.

1. The parent (a registered classifier, an ``hf-hub:`` repo or a zoo folder) and the data
   are checked before anything is built or written (:mod:`zoo.finetuning.plan`).
2. The model is the parent's, with a new classifier for the data's classes
   (:mod:`zoo.finetuning.target`).
3. Each epoch trains (:mod:`zoo.finetuning.loop`), validates with the predictor's
   test-time pre-processing, and writes ``checkpoint-last`` (and ``checkpoint-best``
   when validation top-1 improves) and ``history.json``, each by rename.
4. The best weights become ``model.safetensors`` beside a ``card.yaml`` naming the
   parent, the classes, the measured metrics and the recipe: a folder that ``zoo.load``,
   ``zoo predict``, ``zoo export`` and ``zoo push`` take like any other.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from os import PathLike
from pathlib import Path
from typing import Any

import torch
from torch import nn

from zoo.architecture import Architecture
from zoo.cards import Card, Parent
from zoo.errors import ArgumentError, FinetuneError
from zoo.finetuning import checkpoint, distributed
from zoo.finetuning.data import check_unreadable
from zoo.finetuning.loop import (
    EpochBar,
    Stepper,
    autocast_dtype,
    make_optimizer,
    make_schedule,
    train_epoch,
)
from zoo.finetuning.modes import FullMode, LinearMode, Validation, loader_for
from zoo.finetuning.options import FinetuneOptions, make_options
from zoo.finetuning.plan import (
    FEATURE_FILES,
    HISTORY,
    DataPlan,
    check_output,
    clear_stale_card,
    parent_card,
    plan_data,
    record_run_files,
)
from zoo.finetuning.report import EpochRecord, FinetuneReport, card_name, output_card
from zoo.finetuning.rows import PreparedFiles, Runner
from zoo.finetuning.target import Source, build_model, new_config, parent_record
from zoo.output import output_errors, write_text_atomic
from zoo.registry import Registry, default_registry

EpochCallback = Callable[[EpochRecord], None]


def finetune(
    model: str | Card,
    data: str | PathLike[str],
    output: str | PathLike[str],
    *,
    val: str | PathLike[str] | None = None,
    weights: str | PathLike[str] | None = None,
    layout: str | None = None,
    pretrained: bool = True,
    name: str | None = None,
    resume: bool = False,
    force: bool = False,
    on_epoch: EpochCallback | None = None,
    registry: Registry | None = None,
    **options: Any,
) -> FinetuneReport:
    """Fine-tune classifier ``model`` on ``data`` into the folder ``output``; see
    :func:`zoo.finetune` for the arguments and :class:`FinetuneOptions` for ``options``."""
    started = time.perf_counter()
    settings = make_options(**options)
    if layout is not None and weights is None:
        raise ArgumentError(f"layout={layout!r} describes a weights= file; none was given")
    if weights is not None and not pretrained:
        raise ArgumentError("weights= and pretrained=False contradict each other; give one")
    registry = registry or default_registry()
    source = Source(model, weights, layout, pretrained)
    card, architecture = parent_card(source, registry)
    folder = Path(output)
    check_output(folder, resume=resume, force=force)
    from zoo.inference.backends import pick_device

    joined_here = distributed.launched() and not torch.distributed.is_initialized()
    device = distributed.start(pick_device(settings.device))
    try:
        run = Run(card, architecture, source, settings, folder, device, registry)
        return run.execute(data, val, name, resume, force, on_epoch, started)
    finally:
        if joined_here:
            distributed.stop()


class Run:
    """One fine-tuning run: its settings, its model and its progress."""

    def __init__(
        self,
        card: Card,
        architecture: Architecture,
        source: Source,
        settings: FinetuneOptions,
        folder: Path,
        device: torch.device,
        registry: Registry,
    ) -> None:
        self.card = card
        self.architecture = architecture
        self.source = source
        self.settings = settings
        self.folder = folder
        self.device = device
        self.registry = registry
        self.autocast = autocast_dtype(settings.precision, device)
        self.history: list[EpochRecord] = []
        self.best: dict[str, Any] | None = None
        self.unreadable: list = []
        self.fingerprint: dict[str, Any] = {}
        self.checked = False

    def execute(
        self,
        data: str | PathLike[str],
        val: str | PathLike[str] | None,
        name: str | None,
        resume: bool,
        force: bool,
        on_epoch: EpochCallback | None,
        started: float,
    ) -> FinetuneReport:
        settings = self.settings
        plan = self.plan = plan_data(data, val, settings)
        new_name = card_name(name, self.folder.resolve().name, self.card.name)
        config = new_config(self.card, self.architecture, len(plan.classes))
        parent = parent_record(self.source, self.card, self.architecture, self.registry)
        fingerprint = self.fingerprint = self._fingerprint(plan, parent)
        previous = checkpoint.load(self.folder / checkpoint.LAST) if resume else None
        if previous is not None:
            checkpoint.check_same_run(self.folder, previous.meta["run"], fingerprint)
        if distributed.is_main():
            with output_errors(self.folder):
                self.folder.mkdir(parents=True, exist_ok=True)
            if force and not resume:
                clear_stale_card(self.folder)
        distributed.barrier()

        model = build_model(
            self.architecture, config, self._parent_state(), settings.seed, self.registry
        ).to(self.device)
        runner = Runner(settings.batch_size, self.device, self.autocast, settings.workers)
        validation = self.validation = Validation(
            PreparedFiles(self.card, self.architecture, [s.path for s in plan.val]),
            plan.labels(plan.val),
            runner,
        )
        mode = self._mode(model, plan, validation, fingerprint)
        stepper = self._stepper(mode, plan)
        start = self._restore(previous, mode, stepper) if previous is not None else 0

        for epoch in range(start, settings.epochs):
            record = self._epoch(epoch, mode, stepper)
            if on_epoch is not None and distributed.is_main():
                on_epoch(record)

        best = checkpoint.load(self.folder / checkpoint.BEST)
        final, metrics = mode.finished(best.model, best.meta["record"])
        late = [*validation.unreadable, *getattr(mode, "unreadable", []), *self.unreadable]
        unreadable = {item.path: item for item in [*plan.unreadable, *late]}
        report = FinetuneReport(
            model=new_name,
            output=str(self.folder),
            files=[],
            parent=parent,
            mode=settings.mode,
            classes=plan.classes,
            train_files=len(plan.train),
            val_files=len(plan.val),
            validation=plan.split,
            unreadable=list(unreadable.values()),
            epochs=settings.epochs,
            best_epoch=best.meta["epoch"],
            metrics={key: metrics[key] for key in ("top1", "top5", "loss")},
            history=self.history,
            resumed_from=start if previous is not None else None,
            processes=distributed.world(),
            global_batch_size=settings.batch_size * distributed.world(),
            seconds=round(time.perf_counter() - started, 3),
        )
        if distributed.is_main():
            report.files = self._write_model(final, plan, parent, report)
        distributed.barrier()
        return report

    # --- setting up ------------------------------------------------------------------

    def _fingerprint(self, plan: DataPlan, parent: Parent) -> dict[str, Any]:
        """What decides the weights: a resumed run must agree on every entry."""
        return {
            "recipe": self.settings.recipe(),
            "global_batch_size": self.settings.batch_size * distributed.world(),
            "parent": parent.model_dump(),
            "classes": plan.classes,
            "train": [str(sample.path) for sample in plan.train],
            "val": [str(sample.path) for sample in plan.val],
        }

    def _parent_state(self) -> dict[str, torch.Tensor] | None:
        source = self.source
        if source.weights is None and not source.pretrained:
            return None
        from zoo.loading import load

        parent = load(
            source.name,
            pretrained=source.pretrained,
            weights=source.weights,
            layout=source.layout,
            registry=self.registry,
        )
        return parent.state_dict()

    def _mode(
        self,
        model: nn.Module,
        plan: DataPlan,
        validation: Validation,
        fingerprint: dict[str, Any],
    ) -> FullMode | LinearMode:
        args = (model, self.card, self.architecture, plan, self.settings, validation)
        if self.settings.mode == "full":
            return FullMode(*args)
        facts = {
            "parent": fingerprint["parent"],
            "seed": self.settings.seed,
            "inputs": [spec.model_dump(mode="json") for spec in self.card.inputs],
            "architecture": self.architecture.name,
            "config": self.card.config,
        }
        return LinearMode(*args, folder=self.folder, facts=facts)

    def _stepper(self, mode: FullMode | LinearMode, plan: DataPlan) -> Stepper:
        settings = self.settings
        steps = _steps(mode.samples, settings.batch_size)
        trained = mode.trained
        module = trained
        if distributed.world() > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            module = torch.nn.parallel.DistributedDataParallel(trained, device_ids=ids)
        optimizer = make_optimizer(trained, settings)
        warmup = round(settings.warmup_epochs * steps)
        return Stepper(
            module=module,
            optimizer=optimizer,
            schedule=make_schedule(optimizer, steps * settings.epochs, warmup),
            device=self.device,
            autocast=self.autocast,
            clip_grad=settings.clip_grad,
            label_smoothing=settings.label_smoothing,
            output_names=self.architecture.export.output_names
            if settings.mode == "full"
            else ["y"],
        )

    def _restore(
        self, previous: checkpoint.Checkpoint, mode: FullMode | LinearMode, stepper: Stepper
    ) -> int:
        """Weights, optimizer, schedule, scaler, generators and history of the last epoch."""
        meta = previous.meta
        mode.trained.load_state_dict(previous.model)
        checkpoint.restore_optimizer(stepper.optimizer, previous.optimizer, meta["param_groups"])
        stepper.schedule.load_state_dict(meta["schedule"])
        if stepper.scaler is not None and meta.get("scaler"):
            stepper.scaler.load_state_dict(meta["scaler"])
        checkpoint.restore_rng(previous.rng)
        self.history = [EpochRecord(**record) for record in meta["history"]]
        if (self.folder / checkpoint.BEST).is_file():
            self.best = checkpoint.load(self.folder / checkpoint.BEST).meta["record"]
        return int(meta["epoch"])

    # --- one epoch --------------------------------------------------------------------

    def _epoch(self, epoch: int, mode: FullMode | LinearMode, stepper: Stepper) -> EpochRecord:
        settings = self.settings
        loader = loader_for(mode, epoch, settings, self.device)
        mode.train()
        with EpochBar(epoch, settings.epochs, len(loader) * settings.batch_size) as bar:
            trained = train_epoch(stepper, loader, bar)
        self.unreadable += trained.unreadable
        metrics = mode.scores()
        if not self.checked:
            self._check_unreadable(mode)
        record = EpochRecord(
            epoch=epoch + 1,
            train_loss=trained.loss,
            train_accuracy=trained.accuracy,
            val_top1=metrics["top1"],
            val_top5=metrics["top5"],
            val_loss=metrics["loss"],
            lr=stepper.schedule.get_last_lr()[0],
            samples_per_second=round(trained.samples_per_second, 2),
            seconds=round(trained.seconds, 3),
        )
        self.history.append(record)
        if distributed.is_main():
            self._save(epoch + 1, mode, stepper, metrics)
        distributed.barrier()
        return record

    def _check_unreadable(self, mode: FullMode | LinearMode) -> None:
        """After the first epoch, files whose header read but whose pixels did not count too."""
        self.checked = True
        plan = self.plan
        late = [*self.validation.unreadable, *getattr(mode, "unreadable", []), *self.unreadable]
        found = {item.path: item for item in [*plan.unreadable, *late]}
        total = len(plan.train) + len(plan.val) + len(plan.unreadable)
        check_unreadable(list(found.values()), total, self.settings.max_unreadable)

    def _save(
        self,
        epochs_done: int,
        mode: FullMode | LinearMode,
        stepper: Stepper,
        metrics: dict[str, float],
    ) -> None:
        """The best checkpoint (when top-1 improved, or tied at a lower loss) first, then the
        last one: each file is whole or absent, whenever the run stops."""
        state = {key: value for key, value in mode.trained.state_dict().items()}
        if _better(metrics, self.best):
            self.best = metrics
            meta = {"epoch": epochs_done, "record": metrics}
            checkpoint.save(
                self.folder / checkpoint.BEST, checkpoint.Checkpoint(state, {}, {}, meta)
            )
        tensors, groups = checkpoint.optimizer_tensors(stepper.optimizer)
        meta = {
            "run": self.fingerprint,
            "epoch": epochs_done,
            "history": [record.model_dump() for record in self.history],
            "param_groups": groups,
            "schedule": stepper.schedule.state_dict(),
            "scaler": stepper.scaler.state_dict() if stepper.scaler is not None else None,
        }
        checkpoint.save(
            self.folder / checkpoint.LAST,
            checkpoint.Checkpoint(state, tensors, checkpoint.rng_tensors(), meta),
        )
        history = json.dumps([record.model_dump() for record in self.history], indent=2)
        write_text_atomic(self.folder / HISTORY, history + "\n")
        record_run_files(self.folder)

    # --- the result -------------------------------------------------------------------

    def _write_model(
        self, model: nn.Module, plan: DataPlan, parent: Parent, report: FinetuneReport
    ) -> list[str]:
        """model.safetensors, its hash, card.yaml and README.md, as ``zoo convert`` writes them."""
        from zoo.loading import count_parameters
        from zoo.publish import write_folder

        training = {
            **self.settings.recipe(),
            "learning_rate": self.settings.learning_rate,
            "global_batch_size": report.global_batch_size,
            "processes": report.processes,
            "train_files": report.train_files,
            "val_files": report.val_files,
            "unreadable_files": len(report.unreadable),
            "validation": plan.split,
        }
        card = output_card(
            self.card,
            self.architecture,
            name=report.model,
            classes=plan.classes,
            parent=parent,
            metrics=report.metrics,
            dataset=plan.dataset,
            split=plan.split,
            best_epoch=report.best_epoch,
            training=training,
            parameters=count_parameters(model),
        )
        state = {key: value.detach().cpu() for key, value in model.state_dict().items()}
        written = write_folder(card, state, self.folder).files
        record_run_files(self.folder)
        others = [HISTORY, checkpoint.BEST, checkpoint.LAST, *FEATURE_FILES]
        return written + [
            str(self.folder / file) for file in others if (self.folder / file).is_file()
        ]


def _steps(samples: int, batch_size: int) -> int:
    from zoo.finetuning.loaders import steps_per_epoch

    steps = steps_per_epoch(samples, batch_size)
    if steps < 1:
        raise FinetuneError(
            f"the training data holds {samples} samples, fewer than one batch of {batch_size} "
            f"per process ({distributed.world()} process(es)); lower the batch size"
        )
    return steps


def _better(metrics: dict[str, float], best: dict[str, float] | None) -> bool:
    """Higher validation top-1; at equal top-1, lower validation loss."""
    if best is None:
        return True
    return (metrics["top1"], -metrics["loss"]) > (best["top1"], -best["loss"])
