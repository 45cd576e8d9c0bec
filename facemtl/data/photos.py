"""Whole photos with every face boxed: the training data of facemtl's face detector.

One JSON object per line (JSON Lines)::

    {"image": "relative/or/absolute.jpg", "width": 250, "height": 250,
     "faces": [{"box": [x1, y1, x2, y2], "score": 0.93, "landmarks": [[x, y] × 5] | null}]}

Boxes and points are 0-based image pixels. ``landmarks`` are annotated points (MTFL order) where a
dataset has them and ``null`` otherwise (the detector's landmark head is masked there). A face whose
``score`` is below the file's confidence threshold, or that carries ``"ignore": true``, is an *ignored* region: the detector is neither
rewarded nor penalised for finding it. Image paths are relative to the file's folder.
``scripts/label_faces.py`` writes these files with a teacher detector.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facemtl.data.samples import AnnotationError
from facemtl.data.splits import in_validation


@dataclass
class PhotoSample:
    """One photo: ``boxes`` (N, 4) xyxy, ``landmarks`` (N, 5, 2) with ``has_landmarks`` (N,) saying
    which faces carry annotated points, ``ignore`` (N,) marking faces too uncertain to count."""

    image: Path
    boxes: np.ndarray
    landmarks: np.ndarray
    has_landmarks: np.ndarray
    ignore: np.ndarray
    source: str = ""
    #: A photo of people rather than of a face (hands, knees, streets): scenes also show it whole,
    #: at its own scale, faceless or not (:class:`facemtl.data.scenes.SceneDataset`).
    whole: bool = False

    @property
    def num_faces(self) -> int:
        return len(self.boxes)


def photo_record(image: Path, root: Path, size: tuple[int, int], faces: list[dict]) -> dict:
    """The JSON object for one photo (path written relative to ``root``, the file's folder)."""
    return {"image": Path(os.path.relpath(image, root)).as_posix(), "width": size[0], "height": size[1], "faces": faces}


def read_photos(
    path: str | Path, *, min_score: float = 0.6, split: str = "all", whole: bool = False
) -> list[PhotoSample]:
    """Read a face-photos file; faces scored below ``min_score`` become ignored regions. ``split``:
    ``train`` or ``val``, the photos outside or inside the fixed validation fifth chosen by file name
    (:func:`facemtl.data.splits.in_validation`), ``all`` every photo. ``whole`` marks them photos of people."""
    if split not in ("all", "train", "val"):
        raise ValueError(f"split must be all, train or val, got {split!r}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: face-photos file not found")
    out = []
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{path}:{i}"
            try:
                rec = json.loads(line)
                faces = rec["faces"]
                boxes = np.array([fc["box"] for fc in faces], np.float32).reshape(-1, 4)
                scores = np.array([fc.get("score", 1.0) for fc in faces], np.float32)
                lms = np.zeros((len(faces), 5, 2), np.float32)
                has = np.zeros(len(faces), bool)
                marked = np.array([bool(fc.get("ignore", False)) for fc in faces], bool)
                for j, fc in enumerate(faces):
                    if fc.get("landmarks") is not None:
                        lms[j] = np.asarray(fc["landmarks"], np.float32).reshape(5, 2)
                        has[j] = True
                image = path.parent / rec["image"]
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
                raise AnnotationError(f"{where}: not a face-photos record ({type(e).__name__}: {e})") from None
            if not np.isfinite(boxes).all() or (boxes[:, 2:] <= boxes[:, :2]).any():
                raise AnnotationError(f"{where}: every box needs finite x1 < x2 and y1 < y2")
            if split != "all" and in_validation(image) != (split == "val"):
                continue
            out.append(PhotoSample(image, boxes, lms, has, (scores < min_score) | marked, where, whole))
    if not out:
        raise AnnotationError(f"{path}: no photos in file" + ("" if split == "all" else f" (split {split})"))
    return out
