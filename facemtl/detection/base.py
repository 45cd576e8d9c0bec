"""What every face detector returns, and the rule that maps a detector's box onto the crop the
landmark model was trained on.

Detector boxes are not landmark boxes: each detector (and each cascade of it) frames a face
differently. :class:`BoxRule` holds the measured relation — the landmark box's centre offset and
side as fractions of the detector box — fitted on MTFL *training* faces by
``scripts/calibrate_detector.py``; the crop is then built exactly like the training crop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from facemtl.geometry import Box


@dataclass(frozen=True)
class Detection:
    """A detected face: ``box`` = (x1, y1, x2, y2) in image pixels, ``score`` (larger is surer;
    for Haar, the number of raw detections supporting the box; for networks, a probability),
    ``kind`` = which detector part found it (e.g. ``frontal``, ``profile``, ``profile_mirrored``,
    ``net``, ``yunet``, ``given``), and ``landmarks``: the detector's own 5 points ``(5, 2)`` in
    MTFL order (0-based image pixels) when it predicts them, else ``None``."""

    box: tuple[float, float, float, float]
    score: float
    kind: str = "frontal"
    landmarks: np.ndarray | None = None

    def contains(self, x: float, y: float) -> bool:
        """Whether the point lies inside the box (how a detection is matched to an annotated face)."""
        x1, y1, x2, y2 = self.box
        return x1 <= x <= x2 and y1 <= y <= y2


@dataclass(frozen=True)
class BoxRule:
    """Landmark box from a detector box: centre = box centre + (dx·w, dy·h), side = scale·w."""

    dx: float = 0.0
    dy: float = 0.0
    scale: float = 1.0

    def landmark_box(self, det: Detection) -> Box:
        x1, y1, x2, y2 = det.box
        w, h = x2 - x1, y2 - y1
        dx = -self.dx if det.kind.endswith("mirrored") else self.dx
        return Box((x1 + x2) / 2 + dx * w, (y1 + y2) / 2 + self.dy * h, self.scale * w)


def box_rule(rules: dict[str, BoxRule], det: Detection) -> BoxRule:
    """The rule for a detection's kind; a mirrored kind uses its unmirrored rule (``BoxRule``
    flips the horizontal offset). Kinds without a rule use the identity rule."""
    return rules.get(det.kind.removesuffix("_mirrored"), BoxRule())


class FaceDetector(Protocol):
    """Anything that finds faces in an 8-bit BGR image."""

    name: str
    box_rules: dict[str, BoxRule]

    def detect(self, image_bgr: np.ndarray) -> list[Detection]: ...


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    """Greedy non-maximum suppression; returns kept indices, best first."""
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        xx1 = np.maximum(boxes[i, 0], boxes[rest, 0])
        yy1 = np.maximum(boxes[i, 1], boxes[rest, 1])
        xx2 = np.minimum(boxes[i, 2], boxes[rest, 2])
        yy2 = np.minimum(boxes[i, 3], boxes[rest, 3])
        inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
        order = rest[inter / (area[i] + area[rest] - inter + 1e-9) <= iou]
    return keep
