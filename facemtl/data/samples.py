"""One annotated face, independent of the file format it came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: Label value for "this sample has no label for this task" (masked out of that task's loss).
MISSING = -1


class AnnotationError(ValueError):
    """A malformed annotation; the message starts with ``file:line:``."""


@dataclass
class FaceSample:
    """A face: its image, K landmarks (0-based pixel convention, or ``None`` for
    attribute-only samples) and 0-based attribute class indices (absent = missing).

    ``crop_points``: where the crop rule looks when the face has no landmark annotation — five
    points located by a detector (CelebA's faces: facemtl's detector, the same first crop as at
    inference). They frame the face; they never train the landmark head."""

    image: Path
    landmarks: np.ndarray | None
    attributes: dict[str, int] = field(default_factory=dict)
    source: str = ""  # "file:line" for error messages
    crop_points: np.ndarray | None = None

    @property
    def points(self) -> np.ndarray:
        """The points the crop rule reads: the landmarks, else the located ``crop_points``."""
        if self.landmarks is not None:
            return self.landmarks
        if self.crop_points is None:
            raise ValueError(f"{self.source}: a crop needs landmarks or located crop points")
        return self.crop_points

    def attribute(self, name: str) -> int:
        return self.attributes.get(name, MISSING)
