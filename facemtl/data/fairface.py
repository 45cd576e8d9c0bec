"""FairFace (Kärkkäinen & Joo, WACV 2021; CC BY 4.0): faces in the wild balanced over gender, nine
age bins and seven race groups — the children, old people and skin tones that MTFL's and CelebA's
photos rarely show.

``labels_full.tsv`` (``file gender age_bin age_mid race …``) is read where present, else ``labels.txt``
(``NAME gender male|female age N``, N the bin's midpoint). Ages are bins, not exact ages: a face's
``age`` is the index of its bin in :data:`AGE_BINS`. A fixed fifth of the files, chosen by a hash of
the file name (:func:`in_validation`), is the validation part: the same files whatever else is
mixed in or however the folder is listed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facemtl.data.samples import AnnotationError, FaceSample
from facemtl.data.splits import VALIDATION_SHARE, in_validation

__all__ = [
    "AGE_BINS",
    "AGE_MIDPOINTS",
    "GENDERS",
    "RACES",
    "SPLITS",
    "VALIDATION_SHARE",
    "FairFaceLabel",
    "in_validation",
    "read_fairface",
    "read_fairface_labels",
]

#: FairFace's age bins, youngest first, and each bin's midpoint in years (its ``age_mid``).
AGE_BINS = ("0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "70+")
AGE_MIDPOINTS = (1, 6, 15, 25, 35, 45, 55, 65, 75)
RACES = ("Black", "East Asian", "Indian", "Latino_Hispanic", "Middle Eastern", "Southeast Asian", "White")
GENDERS = ("male", "female")  # facemtl's gender classes, in MTFL's order
SPLITS = ("train", "val", "all")


@dataclass(frozen=True)
class FairFaceLabel:
    """One face's labels: gender and age-bin indices, race group ("" where the file has none)."""

    name: str
    gender: int
    age: int
    race: str
    source: str  # file:line


def read_fairface_labels(root: str | Path) -> list[FairFaceLabel]:
    """Every labelled face of ``root`` (``labels_full.tsv``, else ``labels.txt``), in file order; a bad
    line is an :class:`AnnotationError` naming file:line and what is wrong."""
    root = Path(root)
    full, short = root / "labels_full.tsv", root / "labels.txt"
    if full.is_file():
        return _read_tsv(full)
    if short.is_file():
        return _read_txt(short)
    raise FileNotFoundError(f"{root}: no FairFace labels (labels_full.tsv or labels.txt)")


def _gender(value: str, where: str) -> int:
    if value not in GENDERS:
        raise AnnotationError(f"{where}: gender must be male or female, got {value!r}")
    return GENDERS.index(value)


def _read_tsv(path: Path) -> list[FairFaceLabel]:
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines:
        raise AnnotationError(f"{path}:1: empty file (expected a header line)")
    header = lines[0].split("\t")
    need = ("file", "gender", "age_bin", "race")
    missing = [c for c in need if c not in header]
    if missing:
        raise AnnotationError(f"{path}:1: header lacks {', '.join(missing)}")
    col = {c: header.index(c) for c in need}
    out = []
    for n, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        parts = line.split("\t")
        where = f"{path}:{n}"
        if len(parts) != len(header):
            raise AnnotationError(f"{where}: expected {len(header)} tab-separated fields, got {len(parts)}")
        age = parts[col["age_bin"]]
        if age not in AGE_BINS:
            raise AnnotationError(f"{where}: age_bin must be one of {', '.join(AGE_BINS)}, got {age!r}")
        race = parts[col["race"]]
        if race not in RACES:
            raise AnnotationError(f"{where}: race must be one of {', '.join(RACES)}, got {race!r}")
        out.append(
            FairFaceLabel(parts[col["file"]], _gender(parts[col["gender"]], where), AGE_BINS.index(age), race, where)
        )
    return out


def _read_txt(path: Path) -> list[FairFaceLabel]:
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        where = f"{path}:{n}"
        if len(parts) != 5 or parts[1] != "gender" or parts[3] != "age":
            raise AnnotationError(f"{where}: expected 'NAME gender male|female age N', got {line.strip()[:80]!r}")
        try:
            mid = int(parts[4])
        except ValueError:
            raise AnnotationError(f"{where}: age must be a bin midpoint in years, got {parts[4]!r}") from None
        if mid not in AGE_MIDPOINTS:
            raise AnnotationError(f"{where}: age {mid} is no bin's midpoint ({', '.join(map(str, AGE_MIDPOINTS))})")
        out.append(FairFaceLabel(parts[0], _gender(parts[2], where), AGE_MIDPOINTS.index(mid), "", where))
    return out


def read_fairface(
    root: str | Path, split: str, locate: Callable[[list[Path]], list[np.ndarray | None]]
) -> list[FaceSample]:
    """The faces of one part (``train``, ``val`` — the fixed validation fifth — or ``all``) as
    attribute-only samples (gender, age; no landmarks), each framed by the five points ``locate``
    finds in its photo (facemtl's detector: the crop inference starts from); photos where it finds
    none are left out."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    labels = [
        lab for lab in read_fairface_labels(root) if split == "all" or in_validation(lab.name) == (split == "val")
    ]
    images = [Path(root) / lab.name for lab in labels]
    for lab, image in zip(labels, images, strict=True):
        if not image.is_file():
            raise FileNotFoundError(f"{lab.source}: {image} is labelled but not found")
    samples = []
    for lab, image, points in zip(labels, images, locate(images), strict=True):
        if points is not None:
            samples.append(FaceSample(image, None, {"gender": lab.gender, "age": lab.age}, lab.source, points))
    return samples
