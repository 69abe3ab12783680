"""The index as a Parquet table: one row per input, a fixed schema per kind of job.

Parquet (through pyarrow) because a corpus index holds lists per row (each window's
frames and times, each prediction's labels and scores) and is read by pandas, polars,
DuckDB and Ray Data alike. The job's identity is in the table's metadata (key ``zoo``)
and, for convenience, in columns of every row.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from zoo.corpus.records import Identity, Record
from zoo.output import atomic_path

COMMON = [
    ("path", "string"),
    ("key", "string"),
    ("status", "string"),
    ("error", "string"),
    ("output", "string"),
    ("rows", "int64"),
    ("width", "int64"),
    ("frames", "int64"),
    ("seconds", "float64"),
    ("size", "int64"),
    ("mtime_ns", "int64"),
]
FEATURES = [
    ("fps", "float64"),
    ("first_frame", "list<int64>"),
    ("last_frame", "list<int64>"),
    ("first_time", "list<float64>"),
    ("last_time", "list<float64>"),
]
PREDICT = [
    ("task", "string"),
    ("note", "string"),
    ("labels", "list<string>"),
    ("indices", "list<int64>"),
    ("scores", "list<float64>"),
    ("boxes", "list<list<float64>>"),
    ("forecast", "string"),
]
IDENTITY = [
    ("model", "string"),
    ("card_hash", "string"),
    ("weights", "string"),
    ("options", "string"),
    ("zoo_version", "string"),
]


def schema(kind: str) -> Any:
    import pyarrow as pa

    types = {
        "string": pa.string(),
        "int64": pa.int64(),
        "float64": pa.float64(),
        "list<int64>": pa.list_(pa.int64()),
        "list<float64>": pa.list_(pa.float64()),
        "list<string>": pa.list_(pa.string()),
        "list<list<float64>>": pa.list_(pa.list_(pa.float64())),
    }
    columns = [*COMMON, *(FEATURES if kind == "features" else PREDICT), *IDENTITY]
    return pa.schema([(name, types[kind_of]) for name, kind_of in columns])


def write_table(path: Path, records: list[Record], identity: Identity, version: str) -> None:
    """All ``records`` (sorted by key) as a Parquet file at ``path``, atomically."""
    import pyarrow as pa
    import pyarrow.parquet as parquet

    table_schema = schema(identity.kind)
    common = {
        "model": identity.model,
        "card_hash": identity.card_hash,
        "weights": identity.weights,
        "options": json.dumps(identity.options, sort_keys=True),
        "zoo_version": version,
    }
    rows = [{**record.model_dump(), **common} for record in sorted(records, key=lambda r: r.key)]
    metadata = {"zoo": identity.model_dump_json()}
    table = pa.Table.from_pylist(rows, schema=table_schema.with_metadata(metadata))
    with atomic_path(path) as temporary:
        parquet.write_table(table, temporary)


def read_index(path: str | Path) -> list[dict]:
    """The rows of an index or results table, as dicts."""
    import pyarrow.parquet as parquet

    return parquet.read_table(path).to_pylist()
