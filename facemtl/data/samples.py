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
    attribute-only samples) and 0-based attribute class indices (absent = missing)."""

    image: Path
    landmarks: np.ndarray | None
    attributes: dict[str, int] = field(default_factory=dict)
    source: str = ""  # "file:line" for error messages

    @property
    def points(self) -> np.ndarray:
        """The landmarks, for work that needs them (crops by the landmark rule)."""
        if self.landmarks is None:
            raise ValueError(f"{self.source}: a crop needs landmarks (attribute-only samples need a face box)")
        return self.landmarks

    def attribute(self, name: str) -> int:
        return self.attributes.get(name, MISSING)
