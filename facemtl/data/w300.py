"""300-W ``.pts`` landmark files (iBUG 68-point markup, 1-based pixel convention like MTFL)."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from facemtl.core.tasks import IBUG68
from facemtl.data.samples import AnnotationError, FaceSample
from facemtl.training.config import SOURCE_SPLITS

PTS_PIXEL_OFFSET = 1.0
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def _point(path: Path, number: int, line: str) -> tuple[float, float]:
    parts = line.split()
    try:
        x, y = (float(v) for v in parts)
    except ValueError:
        raise AnnotationError(f"{path}:{number}: expected 'x y', got {line.strip()!r}") from None
    if not (np.isfinite(x) and np.isfinite(y)):
        raise AnnotationError(f"{path}:{number}: a point must be finite, got {line.strip()!r}")
    return x, y


def read_pts(path: str | Path) -> np.ndarray:
    """Read a ``.pts`` file as a 0-based ``(N, 2)`` float32 array: the 300-W format (``version``,
    ``n_points: N``, ``{``, N ``x y`` lines, ``}``), or bare ``x y`` lines alone, as some copies of
    Helen ship. Errors name the file and line."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise AnnotationError(f"{path}: not a text file (a .pts file is text)") from None
    n_points = None
    start = None
    for i, line in enumerate(lines):
        s = line.strip()
        if s.startswith("n_points"):
            try:
                n_points = int(s.split(":")[1])
            except (IndexError, ValueError):
                raise AnnotationError(f"{path}:{i + 1}: bad n_points line {s!r}") from None
            if not 0 < n_points <= 10_000:
                raise AnnotationError(f"{path}:{i + 1}: n_points must be 1 to 10000, got {n_points}")
        elif s == "{":
            start = i + 1
            break
    if n_points is None and start is None:  # no header: every non-blank line is a point
        body = [(i + 1, line) for i, line in enumerate(lines) if line.strip()]
        if not body:
            raise AnnotationError(f"{path}: empty .pts file")
        pts = [_point(path, number, line) for number, line in body]
        return np.asarray(pts, dtype=np.float32) - PTS_PIXEL_OFFSET
    if n_points is None or start is None:
        raise AnnotationError(f"{path}: not a .pts file (a header needs both 'n_points:' and '{{')")
    pts = []
    for j in range(start, start + n_points):
        if j >= len(lines):
            raise AnnotationError(f"{path}: ends after {len(pts)} of {n_points} points")
        pts.append(_point(path, j + 1, lines[j]))
    end = start + n_points
    if end >= len(lines) or lines[end].strip() != "}":
        raise AnnotationError(f"{path}:{end + 1}: expected '}}' after {n_points} points")
    return np.asarray(pts, dtype=np.float32) - PTS_PIXEL_OFFSET


def reduce_68_to_5(points: np.ndarray) -> np.ndarray:
    """68 iBUG points → the 5 MTFL points (eye centres, nose tip, mouth corners)."""
    return IBUG68.mtfl5(np.asarray(points, np.float32))


#: Share of a folder's faces in its ``holdout`` part (%).
HOLDOUT_PERCENT = 20
SPLITS = SOURCE_SPLITS["300w"]


def in_holdout(relative_path: str) -> bool:
    """Whether a face belongs to its folder's held-out part: a fixed function of its ``.pts``
    path relative to the folder (CRC-32, so every machine and Python version agrees)."""
    return zlib.crc32(relative_path.encode()) % 100 < HOLDOUT_PERCENT


def read_300w_folder(folder: str | Path, *, points: int = 68, split: str = "all") -> list[FaceSample]:
    """All ``NAME.pts`` + ``NAME.<image>`` pairs under ``folder`` (recursively), sorted by path.

    ``points=5`` applies the standard 68 → 5 reduction so the faces can join MTFL training.
    300-W carries no attributes, so every attribute is missing (masked) for these samples.
    ``split="holdout"`` keeps only the fixed ``HOLDOUT_PERCENT`` % of faces that ``"train"`` leaves
    out (:func:`in_holdout`): a test part for a folder that has none (``../shared``'s 300-W).
    """
    if points not in (5, 68):
        raise ValueError(f"points must be 68 or 5, got {points}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: 300-W folder not found")
    samples = []
    for pts_path in sorted(folder.rglob("*.pts")):
        if split != "all" and in_holdout(pts_path.relative_to(folder).as_posix()) != (split == "holdout"):
            continue
        image = next((pts_path.with_suffix(s) for s in _IMAGE_SUFFIXES if pts_path.with_suffix(s).is_file()), None)
        if image is None:
            raise AnnotationError(f"{pts_path}: no image beside it (tried {', '.join(_IMAGE_SUFFIXES)})")
        lm = read_pts(pts_path)
        if lm.shape[0] != 68:
            raise AnnotationError(f"{pts_path}: expected 68 points, got {lm.shape[0]}")
        samples.append(FaceSample(image, reduce_68_to_5(lm) if points == 5 else lm, {}, str(pts_path)))
    if not samples:
        raise AnnotationError(f"{folder}: no .pts files found" + ("" if split == "all" else f" in split {split!r}"))
    return samples
