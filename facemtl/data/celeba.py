"""CelebA's official lists (Liu et al., ICCV 2015): partitions, attributes and identities of the
aligned photos.

CelebA's 40 binary attributes (``1`` / ``-1``) map onto three of facemtl's tasks: ``Male`` → gender,
``Smiling`` → smile, ``Eyeglasses`` → glasses. CelebA has no head-pose label and (here) no
landmarks, so those tasks are missing for its faces.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from facemtl.data.samples import AnnotationError, FaceSample

PARTITIONS = {"train": 0, "val": 1, "test": 2}

#: CelebA attribute → (facemtl task, class index when the attribute is 1, when it is -1).
ATTRIBUTE_MAP = {"Male": ("gender", 0, 1), "Smiling": ("smile", 0, 1), "Eyeglasses": ("glasses", 0, 1)}


def _lines(path: Path) -> list[str]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: CelebA list not found")
    return path.read_text().splitlines()


def celeba_partition(root: str | Path, partition: str = "train") -> list[str]:
    """The photo names of one official partition, in file order."""
    if partition not in PARTITIONS:
        raise ValueError(f"partition must be one of {', '.join(PARTITIONS)}, got {partition!r}")
    lists = Path(root) / "list_eval_partition.txt"
    out = []
    for i, line in enumerate(_lines(lists), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
            raise AnnotationError(f"{lists}:{i}: expected 'NAME 0|1|2', got {line.strip()[:80]!r}")
        if int(parts[1]) == PARTITIONS[partition]:
            out.append(parts[0])
    return out


def celeba_photos(root: str | Path, partition: str = "train") -> list[Path]:
    """The ``img_align_celeba`` photos of one official partition, in file order."""
    return [Path(root) / "img_align_celeba" / name for name in celeba_partition(root, partition)]


def celeba_attributes(root: str | Path) -> dict[str, dict[str, int]]:
    """Photo name → facemtl task → class index, from ``list_attr_celeba.txt`` (:data:`ATTRIBUTE_MAP`)."""
    path = Path(root) / "list_attr_celeba.txt"
    lines = _lines(path)
    if len(lines) < 2:
        raise AnnotationError(f"{path}: expected a count line and a header line")
    header = lines[1].split()
    missing = [a for a in ATTRIBUTE_MAP if a not in header]
    if missing:
        raise AnnotationError(f"{path}:2: header lacks {', '.join(missing)}")
    cols = {a: header.index(a) for a in ATTRIBUTE_MAP}
    out: dict[str, dict[str, int]] = {}
    for i, line in enumerate(lines[2:], start=3):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != len(header) + 1:
            raise AnnotationError(f"{path}:{i}: expected a name and {len(header)} values, got {len(parts)} fields")
        labels = {}
        for attr, (task, yes, no) in ATTRIBUTE_MAP.items():
            v = parts[1 + cols[attr]]
            if v not in ("1", "-1"):
                raise AnnotationError(f"{path}:{i}: {attr} must be 1 or -1, got {v!r}")
            labels[task] = yes if v == "1" else no
        out[parts[0]] = labels
    return out


def celeba_identities(root: str | Path) -> dict[str, int]:
    """Photo name → identity, from ``identity_CelebA.txt``."""
    path = Path(root) / "identity_CelebA.txt"
    out = {}
    for i, line in enumerate(_lines(path), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or not parts[1].isdigit():
            raise AnnotationError(f"{path}:{i}: expected 'NAME IDENTITY', got {line.strip()[:80]!r}")
        out[parts[0]] = int(parts[1])
    return out


def read_celeba(
    root: str | Path, partition: str, locate: Callable[[list[Path]], list[np.ndarray | None]]
) -> list[FaceSample]:
    """One partition's photos as attribute-only faces (gender, smile, glasses; no landmarks, no
    pose), each framed by the five points ``locate`` finds in it (e.g. facemtl's detector: the
    crop inference starts from). Photos where ``locate`` finds no face are left out."""
    names = celeba_partition(root, partition)
    labels = celeba_attributes(root)
    images = [Path(root) / "img_align_celeba" / n for n in names]
    samples = []
    for name, image, points in zip(names, images, locate(images), strict=True):
        if name not in labels:
            raise AnnotationError(f"{Path(root) / 'list_attr_celeba.txt'}: no line for {name}")
        if points is not None:
            samples.append(FaceSample(image, None, labels[name], f"{image}", crop_points=points))
    return samples
