"""All or nothing: an export is built in a hidden folder beside its target and renamed into place.

A failed export or a failed check leaves no ``model.onnx`` that looks good: the
staging folder is removed, and the target is untouched. An existing non-empty
target is replaced only when asked (``force``), and then only once the new
folder is complete. The folder is created before any model is built, so an
unwritable destination is reported in a second, not after a long export.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from zoo.errors import ExportError


@contextmanager
def staged_folder(target: Path, *, force: bool) -> Iterator[Path]:
    """Yield an empty folder that becomes ``target`` if the block finishes, else vanishes."""
    _check_target(target, force)
    staging = target.parent / f".{target.name}.{secrets.token_hex(4)}.partial"
    try:
        staging.mkdir(parents=True)  # not mkdtemp: the folder gets the umask's permissions
    except OSError as error:
        raise ExportError(f"cannot write to {target}: {error.strerror or error}") from None
    try:
        yield staging
        _replace(target, staging)
    except OSError as error:
        raise ExportError(f"writing {target} failed: {error}") from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _check_target(target: Path, force: bool) -> None:
    if target.exists() and not target.is_dir():
        raise ExportError(f"{target} exists and is not a folder")
    if target.is_dir() and any(target.iterdir()) and not force:
        raise ExportError(
            f"{target} exists and is not empty; choose another folder or replace it with "
            "--force (force=True)"
        )


def _replace(target: Path, staging: Path) -> None:
    """Rename ``staging`` to ``target``; an old target moves aside first and goes last."""
    old = None
    if target.is_dir():
        if any(target.iterdir()):
            old = Path(
                tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent)
            )
            target.replace(old / target.name)
        else:
            target.rmdir()
    staging.replace(target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
