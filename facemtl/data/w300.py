"""300-W ``.pts`` landmark files (iBUG 68-point markup, 1-based pixel convention like MTFL)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facemtl.data.samples import AnnotationError, FaceSample
from facemtl.tasks import IBUG68_TO_MTFL5

PTS_PIXEL_OFFSET = 1.0
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def read_pts(path: str | Path) -> np.ndarray:
    """Read a ``.pts`` file as a 0-based ``(N, 2)`` float32 array."""
    path = Path(path)
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    n_points = None
    start = None
    for i, line in enumerate(lines):
        s = line.strip()
        if s.startswith("n_points"):
            try:
                n_points = int(s.split(":")[1])
            except (IndexError, ValueError):
                raise AnnotationError(f"{path}:{i + 1}: bad n_points line {s!r}") from None
        elif s == "{":
            start = i + 1
            break
    if n_points is None or start is None:
        raise AnnotationError(f"{path}: not a .pts file (missing 'n_points:' or '{{')")
    pts: list[tuple[float, float]] = []
    for j in range(start, start + n_points):
        if j >= len(lines):
            raise AnnotationError(f"{path}: ends after {len(pts)} of {n_points} points")
        try:
            x, y = (float(v) for v in lines[j].split())
        except ValueError:
            raise AnnotationError(f"{path}:{j + 1}: expected 'x y', got {lines[j].strip()!r}") from None
        pts.append((x, y))
    end = start + n_points
    if end >= len(lines) or lines[end].strip() != "}":
        raise AnnotationError(f"{path}:{end + 1}: expected '}}' after {n_points} points")
    return np.asarray(pts, dtype=np.float32) - PTS_PIXEL_OFFSET


def reduce_68_to_5(points: np.ndarray) -> np.ndarray:
    """68 iBUG points → the 5 MTFL points (eye centres, nose tip, mouth corners)."""
    return np.stack([points[list(g)].mean(axis=0) for g in IBUG68_TO_MTFL5]).astype(np.float32)


def read_300w_folder(folder: str | Path, *, points: int = 68) -> list[FaceSample]:
    """All ``NAME.pts`` + ``NAME.<image>`` pairs under ``folder`` (recursively), sorted by path.

    ``points=5`` applies the standard 68 → 5 reduction so the faces can join MTFL training.
    300-W carries no attributes, so every attribute is missing (masked) for these samples.
    """
    if points not in (5, 68):
        raise ValueError(f"points must be 68 or 5, got {points}")
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: 300-W folder not found")
    samples = []
    for pts_path in sorted(folder.rglob("*.pts")):
        image = next((pts_path.with_suffix(s) for s in _IMAGE_SUFFIXES if pts_path.with_suffix(s).is_file()), None)
        if image is None:
            raise AnnotationError(f"{pts_path}: no image beside it (tried {', '.join(_IMAGE_SUFFIXES)})")
        lm = read_pts(pts_path)
        if lm.shape[0] != 68:
            raise AnnotationError(f"{pts_path}: expected 68 points, got {lm.shape[0]}")
        samples.append(FaceSample(image, reduce_68_to_5(lm) if points == 5 else lm, {}, str(pts_path)))
    if not samples:
        raise AnnotationError(f"{folder}: no .pts files found")
    return samples
