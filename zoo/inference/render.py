"""Pictures of what the model sees: contact sheets (PNG) and animations (GIF) of frames.

Karpathy's rule: look at the batch right before it enters the network. The predictor
undoes the normalisation (``Predictor.unrender``) and these functions lay the frames out:
one line of frames per clip (wrapped every ``columns`` frames), or every frame in turn
in a GIF. Files are written under a temporary name and renamed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zoo.errors import ZooError
from zoo.output import atomic_path

GAP = 2
GAP_COLOUR = 128
COLUMNS = 16


def contact_sheet(rows: np.ndarray, columns: int = COLUMNS) -> np.ndarray:
    """uint8 ``(rows, T, H, W, 3)`` -> one uint8 image ``(H', W', 3)`` with a gap between frames."""
    count, frames, height, width, _ = rows.shape
    columns = min(columns, frames)
    lines_per_row = -(-frames // columns)
    lines = count * lines_per_row
    sheet = np.full(
        (lines * (height + GAP) - GAP, columns * (width + GAP) - GAP, 3), GAP_COLOUR, np.uint8
    )
    for row_index, row in enumerate(rows):
        for frame_index, frame in enumerate(row):
            line = row_index * lines_per_row + frame_index // columns
            column = frame_index % columns
            top, left = line * (height + GAP), column * (width + GAP)
            sheet[top : top + height, left : left + width] = frame
    return sheet


def write_picture(rows: np.ndarray, path: Path, fps: float = 10.0) -> Path:
    """A contact sheet, or with a ``.gif`` suffix an animation of every frame in order."""
    if path.suffix.lower() == ".gif":
        return write_gif(rows.reshape(-1, *rows.shape[2:]), path, fps)
    from PIL import Image

    with atomic_path(path) as temporary:
        Image.fromarray(contact_sheet(rows)).save(temporary, format=_format(path))
    return path


def write_gif(frames: np.ndarray, path: Path, fps: float) -> Path:
    """uint8 ``(T, H, W, 3)`` as a looping GIF at ``fps`` (GIF delays are whole centiseconds)."""
    from PIL import Image

    images = [Image.fromarray(frame) for frame in frames]
    with atomic_path(path) as temporary:
        images[0].save(
            temporary,
            format="GIF",
            save_all=True,
            append_images=images[1:],
            duration=max(20, round(1000 / fps / 10) * 10),
            loop=0,
        )
    return path


def _format(path: Path) -> str:
    from PIL import Image

    extension = path.suffix.lower()
    registered = Image.registered_extensions()
    if extension not in registered:
        raise ZooError(
            f"cannot write {path}: unknown picture format {extension!r} (use .png, .jpg or .gif)"
        )
    return registered[extension]
