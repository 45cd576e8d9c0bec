"""facemtl's own face detector at run time: letterbox → network → decode → NMS → detections.

The network (its ONNX export run by ONNX Runtime, :class:`~facemtl.models.onnx_runtime.OnnxDetectorNet`,
or the PyTorch :class:`~facemtl.models.detector.FaceDetectorNet`) predicts a score, a box and 5 landmarks at every location of strides 8, 16, 32; here
they are decoded with the formula training uses (:func:`~facemtl.models.detector.decode_raw`),
thresholded, non-maximum suppressed and mapped back to the original image's pixels.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from facemtl.core.geometry import downscale, from_downscaled
from facemtl.core.tasks import MTFL5
from facemtl.detection.base import BoxRule, Detection, as_box, longer_sides, nms
from facemtl.models.detector_config import (
    BOX,
    NUM_POINTS,
    POINTS,
    SCORE,
    DetectorConfig,
    anchor_points,
    check_threshold,
    level_shapes,
)

if TYPE_CHECKING:
    from facemtl.models.detector import FaceDetectorNet
    from facemtl.models.onnx_runtime import OnnxDetectorNet


def letterbox(image_bgr: np.ndarray, max_side: int, multiple: int, extra: int = 0) -> tuple[np.ndarray, float]:
    """Downscale so the longer side is at most ``max_side`` (never upscale), then pad right and
    bottom to sides of ``multiple``·k + ``extra`` (:attr:`DetectorConfig.canvas_extra`). Returns
    the RGB canvas and the scale ``f``: an original pixel centre ``x`` lies at ``(x + 0.5)·f − 0.5``
    on the canvas (:func:`from_downscaled`)."""
    canvas, f = _letterbox_bgr(image_bgr, max_side, multiple, extra)
    return cv2.cvtColor(canvas, cv2.COLOR_BGR2RGB), f


def _letterbox_bgr(image_bgr: np.ndarray, max_side: int, multiple: int, extra: int) -> tuple[np.ndarray, float]:
    """:func:`letterbox`, leaving the canvas BGR (the detector's blob swaps the channels itself)."""
    w = image_bgr.shape[1]
    # area averaging where it matters (halving or more); OpenCV's area resize at milder factors
    # costs 1.3 ms on a 512-px photo, four times the bilinear one
    mode = cv2.INTER_AREA if max_side / max(image_bgr.shape[:2]) <= 0.5 else cv2.INTER_LINEAR
    img, _ = downscale(image_bgr, max_side, mode)
    f = img.shape[1] / w  # the scale actually applied (rounded size)
    H, W = (max(1, -(-(s - extra) // multiple)) * multiple + extra for s in img.shape[:2])
    canvas = cv2.copyMakeBorder(
        img, 0, H - img.shape[0], 0, W - img.shape[1], cv2.BORDER_CONSTANT, value=(128, 128, 128)
    )
    return canvas, f


def unmirror(raw: np.ndarray, height: int, width: int, strides: tuple[int, ...]) -> np.ndarray:
    """The raw map ``(N, 15)`` of a horizontally mirrored canvas, expressed for the canvas itself:
    each level's grid reversed along x (a letterboxed canvas's grid is its own mirror image, so cell
    j mirrors onto the level's last cell − j exactly), left and right box distances swapped, landmark
    x offsets negated and left/right landmark slots swapped."""
    shapes = level_shapes(height, width, strides)
    levels = np.split(raw, np.cumsum([h * w for h, w in shapes])[:-1])
    out = np.concatenate(
        [g.reshape(h, w, -1)[:, ::-1].reshape(h * w, -1) for g, (h, w) in zip(levels, shapes, strict=True)]
    )
    ltrb = out[:, BOX][:, [2, 1, 0, 3]]
    pts = out[:, POINTS].reshape(-1, NUM_POINTS, 2)[:, MTFL5.flip_permutation()] * np.array([-1.0, 1.0], raw.dtype)
    return np.concatenate([out[:, SCORE], ltrb, pts.reshape(len(out), -1)], 1)


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def decode(
    raw: np.ndarray,
    centres: np.ndarray,
    strides: np.ndarray,
    score_threshold: float,
    nms_iou: float,
    small_face: tuple[float, float] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One image's raw map ``(N, 15)`` → boxes ``(K, 4)``, scores ``(K,)`` and points ``(K, 5, 2)``
    in canvas pixels, after thresholding and NMS, best first. ``small_face`` = ``(side, threshold)``:
    boxes whose longer side is under ``side`` px pass at ``threshold`` instead. The locations above
    the threshold are decoded as training's :func:`~facemtl.models.detector.decode_raw` does (tested
    equal), in numpy: on the few that pass, torch's per-call overhead would be most of the time."""
    raw, centres, strides = (np.asarray(a) for a in (raw, centres, strides))
    lowest = score_threshold if small_face is None else min(score_threshold, small_face[1])
    keep = raw[:, 0] > _logit(lowest)
    r = raw[keep].astype(np.float64)
    s, c = strides[keep].astype(np.float64)[:, None], centres[keep].astype(np.float64)
    ltrb = np.exp(np.minimum(r[:, BOX], 8.0)) * s
    boxes = np.concatenate([c - ltrb[:, :2], c + ltrb[:, 2:]], 1)
    if small_face is not None:
        passes = r[:, 0] > np.where(longer_sides(boxes) < small_face[0], _logit(small_face[1]), _logit(score_threshold))
        r, s, c, boxes = r[passes], s[passes], c[passes], boxes[passes]
    scores = 1.0 / (1.0 + np.exp(-r[:, 0]))
    pts = r[:, POINTS].reshape(-1, NUM_POINTS, 2) * s[..., None] + c[:, None]
    order = nms(boxes, scores, nms_iou)
    return boxes[order], scores[order], pts[order]


class NetFaceDetector:
    """facemtl's detector network on whole images. ``model`` is a :class:`FaceDetectorNet` or an
    :class:`~facemtl.models.onnx_runtime.OnnxDetector` (same raw output).

    ``max_side``: images are downscaled so their longer side is at most this (default: the
    model's); raise it to find smaller faces in large photos, at a cost in time.
    ``score_threshold``: minimum face probability (default: the one chosen for the weights, in
    their config); ``small_face_threshold``: the same for boxes under the network's
    ``smallest_face`` on its input (default: the weights' own with their ``score_threshold``, else
    ``score_threshold``); ``min_face``: the smallest face to find, box side in original pixels — smaller
    boxes are dropped, and where ``max_side`` would shrink such a face below the network's
    ``smallest_face`` the image is processed larger (:meth:`input_side`). Detections carry
    the network's 5 points (MTFL order); ``box_rules`` default to the weights' fitted rule.
    ``flip_test``: run the image and its mirror as one batch and average the two raw maps (the
    mirror's turned back, :func:`unmirror`), so a face and its mirror image get mirrored results."""

    name = "facemtl"

    def __init__(
        self,
        model: FaceDetectorNet | OnnxDetectorNet,
        *,
        score_threshold: float | None = None,
        small_face_threshold: float | None = None,
        nms_threshold: float = 0.4,
        max_side: int | None = None,
        min_face: float = 0.0,
        box_rules: dict[str, BoxRule] | None = None,
        flip_test: bool = False,
    ):
        self.model = model.eval()
        self.config: DetectorConfig = model.config
        if score_threshold is None:  # the weights' pair; a caller's threshold holds for every size
            score_threshold = self.config.score_threshold
            if small_face_threshold is None:
                small_face_threshold = self.config.small_face_threshold
        if small_face_threshold is None:
            small_face_threshold = score_threshold
        check_threshold("score_threshold", score_threshold)
        check_threshold("small_face_threshold", small_face_threshold)
        self.score_threshold, self.nms_threshold = score_threshold, nms_threshold
        self.small_face_threshold = small_face_threshold
        self.max_side = max_side or self.config.max_side
        self.min_face = min_face
        self.flip_test = flip_test
        self.box_rules = {"net": BoxRule(*self.config.box_rule)} if box_rules is None else dict(box_rules)
        self._anchors: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    def _grid(self, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        if (h, w) not in self._anchors:
            self._anchors[(h, w)] = anchor_points(h, w, self.config.strides, self.config.anchors)
        return self._anchors[(h, w)]

    def _raw(self, blob: np.ndarray) -> np.ndarray:
        """The network's raw maps ``(B, N, 15)`` for a float32 batch."""
        model: Any = self.model
        if hasattr(model, "run_arrays"):
            return model.run_arrays(blob)  # ONNX Runtime: numpy in, numpy out
        import torch

        with torch.inference_mode():
            return model(torch.from_numpy(blob)).float().cpu().numpy()

    def input_side(self, height: int, width: int) -> int:
        """The longer side an image of this size is processed at: ``max_side``, or more where a
        ``min_face`` face would shrink below the network's ``smallest_face`` (a photo is never
        upscaled, :func:`letterbox`). Without it, ``min_face`` would only filter: faces of 24 px in
        a 640-px crowd shrink to 12 px at side 320, and the network misses most of them."""
        if self.min_face <= 0:
            return self.max_side
        return max(self.max_side, math.ceil(max(height, width) * self.config.smallest_face / self.min_face))

    def detect(self, image_bgr: np.ndarray) -> list[Detection]:
        c = self.config
        canvas, f = _letterbox_bgr(image_bgr, self.input_side(*image_bgr.shape[:2]), max(c.strides), c.canvas_extra)
        # (RGB / 255 − mean) / std as one (1, 3, H, W) float32 blob: OpenCV does it in one pass
        blob = cv2.dnn.blobFromImage(canvas, scalefactor=1.0 / (255.0 * c.std), mean=(255.0 * c.mean,) * 3, swapRB=True)
        x = np.asarray(blob, np.float32)
        if self.flip_test:
            both = self._raw(np.concatenate([x, np.ascontiguousarray(x[..., ::-1])]))
            raw = (both[0] + unmirror(both[1], canvas.shape[0], canvas.shape[1], c.strides)) / 2
        else:
            raw = self._raw(x)[0]
        small = (c.smallest_face, self.small_face_threshold)
        boxes, scores, pts = decode(
            raw, *self._grid(*canvas.shape[:2]), self.score_threshold, self.nms_threshold, small
        )
        boxes = from_downscaled(boxes.reshape(-1, 2, 2), f).reshape(-1, 4)
        pts = from_downscaled(pts, f)
        big_enough = longer_sides(boxes) >= self.min_face
        return [
            Detection(as_box(b), float(s), "net", p)
            for b, s, p in zip(boxes[big_enough], scores[big_enough], pts[big_enough], strict=True)
        ]
