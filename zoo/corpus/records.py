"""What a corpus job records: who computed it (the identity), one record per input, a report.

The identity says everything that decides an output's values (the model, a hash of its
card and of its weights, the options that change what is computed), so that a folder
never mixes results of two models or two option sets: a job whose identity differs from
the folder's is refused with one line naming what differs. A record is one row of the
index: the input, whether it succeeded, where its output is, and (for features) where
each window lies in the video. The report is what the Python function returns and the
CLI prints.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Status = Literal["ok", "failed"]


class Identity(BaseModel):
    """What made a folder's outputs; two jobs may share a folder only when these are equal."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["features", "predict"]
    model: str
    card_hash: str = Field(description="sha256 of the card's data, as JSON")
    weights: str = Field(description="'card' (its own weights), a file's sha256, or 'random'")
    options: dict[str, Any] = Field(description="the options that change what is computed")

    def differences(self, other: Identity) -> list[str]:
        """What differs from ``other``, as short phrases (``model a -> b``)."""
        changes = []
        for field in ("kind", "model", "card_hash", "weights"):
            mine, theirs = getattr(self, field), getattr(other, field)
            if mine != theirs:
                changes.append(f"{field} {_short(theirs)} -> {_short(mine)}")
        for key in sorted(set(self.options) | set(other.options)):
            mine, theirs = self.options.get(key), other.options.get(key)
            if mine != theirs:
                changes.append(f"{key} {theirs} -> {mine}")
        return changes


class Record(BaseModel):
    """One input's row in the index (``index.parquet`` or the results table)."""

    model_config = ConfigDict(extra="allow")

    path: str
    key: str
    status: Status
    error: str = ""
    output: str = Field(default="", description="the output file, relative to the folder")
    rows: int = 0
    width: int = 0
    frames: int = Field(default=0, description="model frames computed (windows x length)")
    seconds: float = 0.0
    size: int = Field(default=-1, description="the input file's size when it was computed")
    mtime_ns: int = Field(default=-1, description="its modification time then")


class Failure(BaseModel):
    path: str
    error: str


class CorpusReport(BaseModel):
    """What a corpus job did: counts, failures, throughput and where everything is."""

    kind: Literal["features", "predict"]
    model: str
    engine: str
    workers: int
    output: str = Field(description="the output folder (features) or results table (predict)")
    index: str = Field(description="the table with one row per input")
    inputs: int
    done: int = Field(description="inputs computed by this run")
    skipped: int = Field(description="inputs already done by an earlier run, not recomputed")
    failed: int
    failures: list[Failure]
    seconds: float
    frames: int = Field(description="model frames computed by this run")

    @property
    def inputs_per_second(self) -> float:
        return self.done / self.seconds if self.seconds else 0.0

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0

    def summary(self) -> str:
        """The one line the CLI prints at the end."""
        failed = (
            f"{self.failed} failed (status 'failed' in {self.index})" if self.failed else "0 failed"
        )
        frames = f", {self.frames_per_second:.1f} frames/s" if self.frames else ""
        return (
            f"{self.kind} of {self.inputs} inputs with {self.model}: {self.done} done, "
            f"{self.skipped} skipped (done before), {failed}; "
            f"{self.inputs_per_second:.2f} inputs/s{frames} "
            f"({self.engine} engine, {self.workers} workers, {self.seconds:.1f} s)"
        )


def card_hash(card: Any) -> str:
    data = json.dumps(card.to_data(), sort_keys=True, default=str)
    return hashlib.sha256(data.encode()).hexdigest()


def weights_identity(weights: str | Path | None, layout: str | None, pretrained: bool) -> str:
    """'card' for the card's own weights, 'random' for seeded random ones, else the file's
    sha256 (and layout): the same file under another name is the same weights."""
    if weights is not None:
        from zoo.weights.integrity import sha256_of

        suffix = f" ({layout})" if layout and layout != "zoo" else ""
        return f"sha256:{sha256_of(Path(weights))}{suffix}"
    return "card" if pretrained else "random"


def _short(value: Any) -> str:
    text = str(value)
    return text[:19] if text.startswith("sha256:") else text[:12] if len(text) == 64 else text
