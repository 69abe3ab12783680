"""Writing files so that a failure never leaves half of one behind."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_write(target: Path) -> Iterator[Path]:
    """Write to a sibling temporary file and rename, so a failure never leaves half a file."""
    temporary = target.with_name(f".{target.name}.partial")
    try:
        yield temporary
        temporary.replace(target)
    finally:
        temporary.unlink(missing_ok=True)
