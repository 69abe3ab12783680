"""Optical flow for I3D's flow stream, computed as the authors did.

The authors' preprocessing (deepmind/kinetics-i3d, README): frames converted to
grayscale, TV-L1 optical flow between consecutive frames, values truncated to
[-20, 20] pixels and scaled to [-1, 1]. TV-L1 here is OpenCV's
(``opencv-contrib-python-headless``, ``cv2.optflow``) with its default settings.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np

#: Displacements beyond this many pixels are truncated before scaling to [-1, 1].
FLOW_BOUND = 20.0


def tvl1_flow(frames: np.ndarray, bound: float = FLOW_BOUND) -> np.ndarray:
    """Flow of a clip: uint8 RGB ``(T, H, W, 3)`` -> float32 ``(2, T - 1, H, W)`` in [-1, 1].

    Flow field ``t`` is the displacement from frame ``t`` to frame ``t + 1``, so a clip
    of ``T`` frames gives ``T - 1`` fields: to feed the flow stream ``n`` frames, pass
    ``n + 1``. Channel 0 is the horizontal (x) displacement, channel 1 the vertical (y).
    """
    import cv2

    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(
            f"expected uint8 RGB frames (T, H, W, 3), found {frames.dtype} {frames.shape}"
        )
    if frames.shape[0] < 2:
        raise ValueError(f"flow needs at least 2 frames, found {frames.shape[0]}")
    gray = [cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) for frame in frames]
    tvl1 = cv2.optflow.DualTVL1OpticalFlow_create()
    fields = [tvl1.calc(first, second, None) for first, second in pairwise(gray)]
    flow = np.clip(np.stack(fields), -bound, bound) / bound
    return np.ascontiguousarray(flow.transpose(3, 0, 1, 2), dtype=np.float32)
