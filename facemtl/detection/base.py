"""What every face detector returns, and the rule that maps a detector's box onto the crop the
landmark model was trained on.

Detector boxes are not landmark boxes: each detector (and each cascade of it) frames a face
differently. :class:`BoxRule` holds the measured relation — the landmark box's centre offset and
side as fractions of the detector box — fitted on MTFL *training* faces by
``scripts/calibrate_detector.py``; the crop is then built exactly like the training crop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from facemtl.core.geometry import Box, crop_box_from_landmarks, mirror_boxes, mirror_points
from facemtl.core.tasks import MTFL5

BoxTuple = tuple[float, float, float, float]


def as_box(values: Sequence[float] | np.ndarray) -> BoxTuple:
    """Four numbers (x1, y1, x2, y2) as a box tuple of plain floats."""
    x1, y1, x2, y2 = (float(v) for v in values)
    return x1, y1, x2, y2


@dataclass(frozen=True)
class Detection:
    """A detected face: ``box`` = (x1, y1, x2, y2) in image pixels, ``score`` (larger is surer;
    for Haar, the number of raw detections supporting the box; for networks, a probability),
    ``kind`` = which detector part found it (e.g. ``frontal``, ``profile``, ``profile_mirrored``,
    ``net``, ``yunet``, ``given``), and ``landmarks``: the detector's own 5 points ``(5, 2)`` in
    MTFL order (0-based image pixels) when it predicts them, else ``None``."""

    box: BoxTuple
    score: float
    kind: str = "frontal"
    landmarks: np.ndarray | None = None

    def contains(self, x: float, y: float) -> bool:
        """Whether the point lies inside the box (how a detection is matched to an annotated face)."""
        x1, y1, x2, y2 = self.box
        return x1 <= x <= x2 and y1 <= y <= y2


def mirrored(det: Detection, width: int) -> Detection:
    """``det`` reflected into the mirror image of a photo ``width`` pixels wide (and, applied
    again, back): x → width − 1 − x for box edges and points (0-based pixel centres), left and right
    points swapped, ``kind`` marked ``_mirrored`` (its box rule's horizontal offset flips)."""
    points = None if det.landmarks is None else mirror_points(det.landmarks, width, MTFL5.flip_permutation())
    kind = det.kind.removesuffix("_mirrored") if det.kind.endswith("_mirrored") else f"{det.kind}_mirrored"
    return Detection(as_box(mirror_boxes(det.box, width)), det.score, kind, points)


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


def longer_sides(boxes: np.ndarray) -> np.ndarray:
    """Each xyxy box's longer side ``(N,)``: the face size ``min_face`` and ``smallest_face`` speak of
    (as YuNet's own size filter measures it)."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])


def box_intersection(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection area of every xyxy box of ``a`` (N, 4) with every box of ``b`` (M, 4): (N, M)."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    return np.clip(rb - lt, 0, None).prod(-1)


#: A box lying this share of its area inside a larger face's box is a part of that face or of the
#: body under it (an eye, a chin, a collar and tie) seen as a face of its own: the detector drops it
#: and a video's tracker starts no track on it. Faces side by side, even in a crowd, overlap far less.
#: (0.4 since Grace Hopper's tie, 42 % inside her face's box; 0.6 before: the validation crowds and
#: people photos score the same at either.)
PART_SHARE = 0.4


def inside_larger(fine: np.ndarray, coarse: np.ndarray, share: float = PART_SHARE, ratio: float = 1.6) -> np.ndarray:
    """(N, M): whether ``fine`` box n lies mostly (``share`` of its area) inside ``coarse`` box m,
    at least ``ratio`` times its side — a part of a large face seen as a face of its own
    (:data:`PART_SHARE`)."""
    fine, coarse = np.asarray(fine, np.float64).reshape(-1, 4), np.asarray(coarse, np.float64).reshape(-1, 4)
    area = (fine[:, 2:] - fine[:, :2]).prod(-1)
    larger = longer_sides(coarse)[None, :] >= ratio * longer_sides(fine)[:, None]
    return (box_intersection(fine, coarse) >= share * area[:, None]) & larger


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every xyxy box of ``a`` (N, 4) with every box of ``b`` (M, 4): (N, M)."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    inter = box_intersection(a, b)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / (area_a[:, None] + area_b[None] - inter + 1e-9)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    """Greedy non-maximum suppression; returns kept indices, best first."""
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        order = rest[box_iou(boxes[i], boxes[rest])[0] <= iou]
    return keep


@dataclass(frozen=True)
class Matching:
    """Detections (best first) matched greedily to true faces at IoU ≥ a threshold.

    ``matched``: per detection, the index of its face (−1 = none); ``neutral``: per unmatched
    detection, whether it overlaps a *don't-care* face enough to count neither way; a matched
    don't-care face is neither found nor missed."""

    matched: np.ndarray
    neutral: np.ndarray
    dont_care: np.ndarray

    @property
    def true_positives(self) -> int:
        hit = self.matched[self.matched >= 0]
        return int((~self.dont_care[hit]).sum())

    @property
    def false_positives(self) -> int:
        return int(((self.matched < 0) & ~self.neutral).sum())

    @property
    def misses(self) -> int:
        found = np.zeros(len(self.dont_care), bool)
        found[self.matched[self.matched >= 0]] = True
        return int((~found & ~self.dont_care).sum())


def match_detections(
    boxes: np.ndarray, truth: np.ndarray, dont_care: np.ndarray, *, iou: float = 0.5, dont_care_iou: float = 1.0
) -> Matching:
    """Match detection boxes (best first) to true boxes: each takes the untaken face it overlaps
    most, if by ``iou`` or more. An unmatched detection whose best untaken face is don't-care and
    overlaps it by more than ``dont_care_iou`` is neutral (e.g. an unsure teacher label)."""
    dont_care = np.asarray(dont_care, bool)
    overlap = box_iou(boxes, truth)
    matched = np.full(len(overlap), -1)
    neutral = np.zeros(len(overlap), bool)
    taken = np.zeros(len(dont_care), bool)
    for d, row in enumerate(overlap):
        if not len(row):
            continue
        row = np.where(taken, 0.0, row)
        j = int(row.argmax())
        if row[j] >= iou:
            matched[d], taken[j] = j, True
        else:
            neutral[d] = bool(dont_care[j]) and row[j] > dont_care_iou
    return Matching(matched, neutral, dont_care)


def annotated_detection(detections: Sequence[Detection], landmarks: np.ndarray) -> int | None:
    """Which detection is an annotated face: the surest one whose box contains the centre of the
    landmarks' bounding box, or ``None`` when none does (the benchmarks' "found")."""
    c = crop_box_from_landmarks(landmarks, 1.0)
    hits = [i for i, d in enumerate(detections) if d.contains(c.cx, c.cy)]
    return max(hits, key=lambda i: detections[i].score) if hits else None
