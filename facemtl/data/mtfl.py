"""The MTFL annotation format (Zhang et al., ECCV 2014).

One face per line: ``path x1..x5 y1..y5 [gender smile glasses pose]``. Coordinates in the file are
1-based (the first pixel's centre is (1, 1)); facemtl subtracts 1 on reading and adds it back on
writing. Attribute codes are 1-based in the file (gender 1 male / 2 female; smile and glasses
1 yes / 2 no; pose 1–5 from left profile to right profile) and 0-based class indices in facemtl.
Paths are relative to the annotation file's folder; ``\\`` separators are accepted.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facemtl.core.tasks import MTFL_ATTRIBUTES
from facemtl.data.samples import AnnotationError, FaceSample

#: MTFL's file coordinates minus this offset give facemtl's 0-based coordinates.
MTFL_PIXEL_OFFSET = 1.0
ATTRIBUTE_ORDER = tuple(a.name for a in MTFL_ATTRIBUTES)
_NUM_CLASSES = {a.name: a.num_classes for a in MTFL_ATTRIBUTES}


def parse_mtfl_line(line: str, root: Path, where: str) -> FaceSample | None:
    """Parse one line; ``None`` for a blank line. ``where`` is ``file:line`` for errors."""
    fields = line.split()
    if not fields:
        return None
    n = len(fields)
    if n not in (11, 15):
        raise AnnotationError(
            f"{where}: expected 11 fields (path + 10 coordinates) or 15 (+ gender smile glasses pose), "
            f"got {n}: {line.strip()[:120]!r}"
        )
    try:
        coords = np.array([float(v) for v in fields[1:11]], dtype=np.float64)
    except ValueError as e:
        raise AnnotationError(f"{where}: coordinate is not a number ({e})") from None
    if not np.all(np.isfinite(coords)):
        raise AnnotationError(f"{where}: coordinates must be finite numbers")
    landmarks = np.stack([coords[:5], coords[5:]], axis=1) - MTFL_PIXEL_OFFSET
    attributes: dict[str, int] = {}
    for name, raw in zip(ATTRIBUTE_ORDER, fields[11:], strict=False):  # 11-field lines have none
        try:
            code = int(raw)
        except ValueError:
            raise AnnotationError(f"{where}: {name} code {raw!r} is not an integer") from None
        if not 1 <= code <= _NUM_CLASSES[name]:
            raise AnnotationError(f"{where}: {name} code {code} is outside 1..{_NUM_CLASSES[name]}")
        attributes[name] = code - 1
    image = root / fields[0].replace("\\", "/")
    return FaceSample(image, landmarks.astype(np.float32), attributes, where)


def read_mtfl(path: str | Path, *, check_images: bool = True) -> list[FaceSample]:
    """Read an MTFL-format annotation file (CRLF or LF, leading spaces, ``\\`` paths all accepted).

    Raises :class:`AnnotationError` naming ``file:line`` for a malformed line, or for an image
    that does not exist when ``check_images`` is set.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: annotation file not found")
    root = path.parent
    samples = []
    with open(path, encoding="utf-8-sig", newline=None) as f:
        for i, line in enumerate(f, start=1):
            where = f"{path}:{i}"
            s = parse_mtfl_line(line, root, where)
            if s is None:
                continue
            if check_images and not s.image.is_file():
                raise AnnotationError(f"{where}: image {s.image} does not exist")
            samples.append(s)
    if not samples:
        raise AnnotationError(f"{path}: no annotated faces in file")
    return samples


def format_mtfl_line(sample: FaceSample, root: Path | None = None) -> str:
    """The inverse of :func:`parse_mtfl_line` (writes 1-based coordinates and codes); the image
    path is written relative to ``root``, or absolute when ``root`` is None."""
    if sample.landmarks is None or sample.landmarks.shape != (5, 2):
        raise ValueError("MTFL lines carry exactly 5 landmarks")
    pts = sample.landmarks.astype(np.float64) + MTFL_PIXEL_OFFSET
    image = Path(sample.image).resolve()
    rel = (image.relative_to(root.resolve()) if root is not None else image).as_posix()
    parts = [rel] + [f"{v:.6f}" for v in pts[:, 0]] + [f"{v:.6f}" for v in pts[:, 1]]
    if all(n in sample.attributes for n in ATTRIBUTE_ORDER):
        parts += [str(sample.attributes[n] + 1) for n in ATTRIBUTE_ORDER]
    return " ".join(parts)
