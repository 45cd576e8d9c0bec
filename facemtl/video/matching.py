"""Detections matched to followed faces: which box is whose, which detection is only a part of a
face, and where a lost face may have gone. Box geometry only (xyxy arrays, image pixels); the
tracker (:mod:`facemtl.video.tracking`) decides what to do with it."""

from __future__ import annotations

import numpy as np

from facemtl.detection import Detection, box_iou
from facemtl.detection.base import PART_SHARE, inside_larger

#: A detection matches a followed face at this box IoU; a lost face's box is searched at twice its size.
MATCH_IOU = 0.3


def parts(dets: list[Detection], followed: list[np.ndarray], share: float = PART_SHARE) -> np.ndarray:
    """Which detections lie ``share`` or more inside the box of a followed face, or of another
    detection, at least as large as they are, without being that face (IoU under
    :data:`MATCH_IOU`): a part of that face or of the body under it (a chin, a collar, a hand on a
    cheek) that the detector took for a face, or a face the other hides. Such a detection neither
    starts a track nor brings a lost one back (a false face re-found every few frames flickers)."""
    boxes = np.array([d.box for d in dets], np.float64).reshape(-1, 4)
    refs = np.concatenate([np.asarray(followed, np.float64).reshape(-1, 4), boxes])
    other: np.ndarray = box_iou(boxes, refs) < MATCH_IOU  # (a detection is never "other" to itself: IoU 1)
    return (inside_larger(boxes, refs, share=share, ratio=1.0) & other).any(1)


def near(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Which of ``others`` (M, 4) have their centre within twice ``box``'s size of its centre and
    a size within a factor of 2 of its size."""
    size = max(box[2] - box[0], box[3] - box[1], 1e-6)
    centre = (box[:2] + box[2:]) / 2
    sizes = np.maximum(others[:, 2] - others[:, 0], others[:, 3] - others[:, 1])
    distance = np.abs((others[:, :2] + others[:, 2:]) / 2 - centre).max(1)
    return (distance <= size) & (sizes >= size / 2) & (sizes <= size * 2)


def greedy_pairs(iou: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """(row, column) pairs, best IoU first, each row and column used once, IoU ≥ ``threshold``;
    rows are in priority order (a tie goes to the earlier row)."""
    pairs: list[tuple[int, int]] = []
    if iou.size == 0:
        return pairs
    order = np.argsort(-iou, axis=None, kind="stable")
    rows, cols = set(), set()
    for flat in order:
        i, j = divmod(int(flat), iou.shape[1])
        if iou[i, j] < threshold:
            break
        if i not in rows and j not in cols:
            pairs.append((i, j))
            rows.add(i)
            cols.add(j)
    return pairs
