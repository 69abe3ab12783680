"""Which files zoo decodes, by suffix: known without importing the decoders (or torch)."""

from __future__ import annotations

VIDEO_SUFFIXES = frozenset(
    {".mp4", ".m4v", ".mov", ".avi", ".webm", ".mkv", ".gif", ".mpg", ".mpeg", ".ogv", ".flv"}
)
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm"}
)
MEDIA_SUFFIXES = VIDEO_SUFFIXES | IMAGE_SUFFIXES
