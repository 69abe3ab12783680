"""The per-input work of a corpus job, written once and scheduled by any engine.

A task is data (picklable: it travels to worker processes and Ray actors); ``task.start()``
builds its worker where it will run (one predictor per process or actor), and
``worker.run(inputs)`` turns a few inputs into one :class:`~zoo.corpus.records.Record`
each, writing each input's output file itself (atomically) before returning. Whatever
goes wrong with one input becomes its failed record: one bad file never stops a job.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from zoo.cards import Card
from zoo.corpus import layers
from zoo.corpus.inputs import CorpusInput
from zoo.corpus.records import Record
from zoo.corpus.store import file_state, write_array
from zoo.corpus.windows import WindowOptions, plan
from zoo.errors import InputError, one_line

#: Random weights (``pretrained=False``) come from this seed in every worker, so that
#: every process, actor and rerun computes with the same model.
SEED = 0
#: Model-input pixels per batch of windows: ``batch_size`` windows at most, fewer when
#: they are long and large (I3D's 64 frames of 224x224: 2 per batch, C3D's 16 of 112x112:
#: 8), so that a batch's activations, not a video's length, bound the memory.
PIXELS_PER_BATCH = 128 * 224 * 224


@dataclass(frozen=True)
class ModelSource:
    """How each worker builds the same predictor: the model and ``zoo.predictor``'s options."""

    model: str | Card
    options: dict[str, Any] = field(default_factory=dict)

    def predictor(self) -> Any:
        import torch

        from zoo.inference import predictor

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(SEED)
            return predictor(self.model, **self.options)


@dataclass(frozen=True)
class FeatureTask:
    """Dense features of each input into ``folder/<key>.npy``."""

    source: ModelSource
    layer: str
    pool: str
    windows: WindowOptions
    batch_size: int
    folder: str

    def start(self) -> FeatureWorker:
        return FeatureWorker(self)


class FeatureWorker:
    def __init__(self, task: FeatureTask) -> None:
        self.task = task
        self.predictor = task.source.predictor()
        self.extract = layers.extractor(self.predictor, task.layer, task.pool)

    def run(self, inputs: list[CorpusInput]) -> list[Record]:
        return [self.one(item) for item in inputs]

    def one(self, item: CorpusInput) -> Record:
        started = time.perf_counter()
        size, mtime = file_state(item.path)
        common = {"path": item.path, "key": item.key, "size": size, "mtime_ns": mtime}
        try:
            found = self.features(item)
        except Exception as error:  # one bad input, whatever it raised, is its own failure
            return failed(common, error, started)
        array, windows = found
        output = f"{item.key}.npy"
        write_array(Path(self.task.folder) / output, array)
        return Record(
            **common,
            status="ok",
            output=output,
            rows=len(array),
            width=array.shape[1],
            frames=int(windows.indices.size),
            seconds=time.perf_counter() - started,
            fps=windows.fps,
            first_frame=windows.first_frame.tolist(),
            last_frame=windows.last_frame.tolist(),
            first_time=windows.first_time.tolist(),
            last_time=windows.last_time.tolist(),
        )

    def features(self, item: CorpusInput) -> tuple[np.ndarray, Any]:
        from zoo.inference.decode import as_media
        from zoo.inference.streaming import window_batches

        preprocessor = self.predictor.preprocessor
        media = as_media(item.path)
        if media.still and preprocessor.video:
            raise InputError(media.source, preprocessor.wants_video())
        windows = plan(media, self.task.windows, preprocessor.specs[0], preprocessor.lag)
        batch = rows_per_batch(
            windows.indices.shape[1], preprocessor.specs[0].size, self.task.batch_size
        )
        rows = [
            self.extract(prepared.inputs)
            for prepared in window_batches(
                preprocessor, media, list(windows.indices), batch_size=batch
            )
        ]
        return np.concatenate(rows).astype(np.float32, copy=False), windows


def rows_per_batch(frames: int, size: tuple[int, int] | None, batch_size: int) -> int:
    """Windows per batch: ``batch_size`` at most, and no more than PIXELS_PER_BATCH."""
    height, width = size or (224, 224)
    return max(1, min(batch_size, PIXELS_PER_BATCH // (frames * height * width)))


@dataclass(frozen=True)
class PredictTask:
    """The predictor's result for each input, as a row; forecasts as GIFs in ``folder``."""

    source: ModelSource
    topk: int
    threshold: float
    batch_size: int
    folder: str

    def start(self) -> PredictWorker:
        return PredictWorker(self)


class PredictWorker:
    def __init__(self, task: PredictTask) -> None:
        self.task = task
        self.predictor = task.source.predictor()

    def run(self, inputs: list[CorpusInput]) -> list[Record]:
        """The inputs' rows packed into batches across inputs, as ``zoo predict`` runs them."""
        records = []
        started = time.perf_counter()
        outcomes = self.predictor.stream(
            [item.path for item in inputs],
            topk=self.task.topk,
            threshold=self.task.threshold,
            batch_size=self.task.batch_size,
        )
        for item in inputs:
            size, mtime = file_state(item.path)
            common = {"path": item.path, "key": item.key, "size": size, "mtime_ns": mtime}
            try:
                outcome = next(outcomes)
                if isinstance(outcome, InputError):
                    raise outcome
                record = self._row(item, outcome, common, started)
            except Exception as error:  # one bad input, whatever it raised, is its own failure
                record = failed(common, error, started)
                if not isinstance(error, InputError):  # the stream itself broke: start again
                    outcomes = self._restart(inputs, item)
            records.append(record)
            started = time.perf_counter()
        return records

    def _restart(self, inputs: list[CorpusInput], failed_item: CorpusInput) -> Any:
        rest = inputs[inputs.index(failed_item) + 1 :]
        return self.predictor.stream(
            [item.path for item in rest],
            topk=self.task.topk,
            threshold=self.task.threshold,
            batch_size=self.task.batch_size,
        )

    def _row(self, item: CorpusInput, result: Any, common: dict, started: float) -> Record:
        data = result.to_json_data()
        columns: dict[str, Any] = {"task": result.task, "note": result.note}
        output = ""
        if "predictions" in data:
            columns |= _classification_columns(data["predictions"])
        elif "detections" in data:
            columns |= _detection_columns(data["detections"])
        elif hasattr(result, "write_gif"):
            output = f"forecasts/{item.key}.gif"
            result.write_gif(Path(self.task.folder) / output)
            columns["forecast"] = str(Path(self.task.folder) / output)
        return Record(
            **common,
            status="ok",
            output=output,
            rows=getattr(result, "clips", 1),
            seconds=time.perf_counter() - started,
            **columns,
        )


def _classification_columns(predictions: list[dict]) -> dict[str, Any]:
    return {
        "labels": [row["label"] for row in predictions],
        "indices": [row["index"] for row in predictions],
        "scores": [row["score"] for row in predictions],
    }


def _detection_columns(detections: list[dict]) -> dict[str, Any]:
    return {
        "labels": [row["label"] for row in detections],
        "indices": [row["index"] for row in detections],
        "scores": [row["score"] for row in detections],
        "boxes": [list(row["box"]) for row in detections],
    }


def failed(common: dict, error: BaseException, started: float) -> Record:
    """The record of an input that could not be used, with its one-line error."""
    message = str(error) if isinstance(error, InputError) else f"{type(error).__name__}: {error}"
    if not isinstance(error, InputError):
        message = f"{common['path']}: {message}"
    return Record(
        **common,
        status="failed",
        error=one_line(message),
        seconds=time.perf_counter() - started,
    )
