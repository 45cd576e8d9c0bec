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
from facemtl.detection.base import BoxRule, Detection, as_box, inside_larger, longer_sides, nms
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
    img, f = _shrink(image_bgr, max_side)
    return _pad(img, multiple, extra), f


def _shrink(image_bgr: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """The image downscaled to ``max_side`` (never enlarged) and the scale actually applied (rounded size)."""
    # area averaging where it matters (halving or more); OpenCV's area resize at milder factors
    # costs 1.3 ms on a 512-px photo, four times the bilinear one
    mode = cv2.INTER_AREA if max_side / max(image_bgr.shape[:2]) <= 0.5 else cv2.INTER_LINEAR
    img, _ = downscale(image_bgr, max_side, mode)
    return img, img.shape[1] / image_bgr.shape[1]


def _pad(img: np.ndarray, multiple: int, extra: int) -> np.ndarray:
    """Padded right and bottom to sides of ``multiple``·k + ``extra`` with mid gray."""
    H, W = (max(1, -(-(s - extra) // multiple)) * multiple + extra for s in img.shape[:2])
    return cv2.copyMakeBorder(img, 0, H - img.shape[0], 0, W - img.shape[1], cv2.BORDER_CONSTANT, value=(128, 128, 128))


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Where tiles of ``tile`` px start along a side of ``length`` px, neighbours overlapping by at
    least ``overlap``: every stretch of ``overlap`` px lies whole inside one tile."""
    if length <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, length - tile, step))
    return [*starts, length - tile]


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


#: The default input side comes from the photo (``max_side`` and ``min_face`` unset): large enough
#: that a face of ``AUTO_FACE_PX`` px — or ``AUTO_FACE_SHARE`` of the photo's longer side, where that is
#: larger — reaches the network's ``smallest_face``; never under the weights' ``max_side``, never over
#: ``AUTO_MAX_SIDE``. A 1,000-px group photo is seen at 833 px (faces of 24 px found), a 12 MP phone
#: photo at 1,334 (faces of 1.5 % of its side, 60 px), a 320-px photo at 352 (:data:`AUTO_SNAP`), a
#: 250-px one at its own size.
AUTO_FACE_PX = 24.0
AUTO_FACE_SHARE = 0.015
AUTO_MAX_SIDE = 1344
#: A side within this factor of the weights' own is not worth its cost: up to 1.25 × 352 = 440 px
#: the photo is seen at 352 (a 512-px photo: faces from 29 px, not 24, at two thirds of the time).
#: From below too: a photo of 282-351 px is enlarged to 352, the side the network was made for (held-out
#: validation photos of people, 320 px: recall 66.7 → 77.8 %, precision 94.7 → 87.5 %; docs/notebook.md).
#: A smaller photo (a face crop, a thumbnail) stays at its own size: its faces are large already.
AUTO_SNAP = 1.25
#: A larger side (asked for by ``min_face`` or ``max_side``) is processed in tiles of at most
#: ``TILE_SIDE`` px overlapping by ``TILE_OVERLAP`` (the pyramid's coarser passes find the faces too
#: large for a tile): memory stays bounded on a 50 MP photo.
TILE_SIDE = AUTO_MAX_SIDE
TILE_OVERLAP = 256
#: The network finds faces from its ``smallest_face`` (20 px) to about this size on its input; a
#: larger face comes apart into eyes and mouths. So a photo seen larger than the weights' side is
#: also seen at smaller sides, each ``PYRAMID_STEP`` times smaller, down to the weights' side, and
#: each pass but the smallest keeps only the faces it sees well (and none inside a larger face a
#: coarser pass found): a 12 MP photo costs one pass at 1,334 px and one at 352.
LARGEST_FACE = 160.0
PYRAMID_STEP = 4.0
#: Up to this many times the weights' side one pass is enough (the default side snaps to the
#: weights' own below it, :data:`AUTO_SNAP`).
PYRAMID_FROM = 1.25


def pyramid(side: int, floor: int) -> list[int]:
    """Input sides, largest first: ``side``, then ``PYRAMID_STEP`` times smaller, ending at ``floor``
    (one pass up to ``PYRAMID_FROM`` × ``floor``)."""
    sides = [side]
    while sides[-1] > PYRAMID_FROM * floor:
        sides.append(max(floor, math.ceil(sides[-1] / PYRAMID_STEP)))
    return sides


def auto_side(height: int, width: int, floor: int, smallest_face: float) -> int:
    """The input side of :data:`AUTO_FACE_PX` and :data:`AUTO_FACE_SHARE` for a photo of this size."""
    longer = max(height, width)
    if longer < floor:  # enlarged to the weights' side from just under it, else seen at its own size
        return floor if longer >= floor / AUTO_SNAP else longer
    face = max(AUTO_FACE_PX, AUTO_FACE_SHARE * longer)
    side = math.ceil(longer * smallest_face / face)
    return floor if side <= AUTO_SNAP * floor else min(AUTO_MAX_SIDE, side)


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

    ``max_side``: images are downscaled so their longer side is at most this; unset (and no
    ``min_face``), the side comes from the photo (:func:`auto_side`: faces of 24 px, or of 1.5 % of a
    large photo's side, are brought to the network's smallest face; at least the weights' own side).
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
        self.auto = max_side is None and not min_face  # the side from the photo
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
        """The longer side an image of this size is processed at: by default from the photo
        (:func:`auto_side`, which enlarges a photo just under the weights' side to it); else (never
        enlarging the photo, :func:`letterbox`) ``max_side``, or more
        where a ``min_face`` face would shrink below the network's ``smallest_face``. Without that,
        ``min_face`` would only filter: faces of 24 px in a 640-px crowd shrink to 12 px at side
        320, and the network misses most of them."""
        if self.auto:
            return auto_side(height, width, self.max_side, self.config.smallest_face)
        if self.min_face <= 0:
            return self.max_side
        return max(self.max_side, math.ceil(max(height, width) * self.config.smallest_face / self.min_face))

    def _pass(self, img: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The network over one (already downscaled) BGR image: boxes, scores and points in its pixels."""
        c = self.config
        canvas = _pad(img, max(c.strides), c.canvas_extra)
        # (RGB / 255 − mean) / std as one (1, 3, H, W) float32 blob: OpenCV does it in one pass
        blob = cv2.dnn.blobFromImage(canvas, scalefactor=1.0 / (255.0 * c.std), mean=(255.0 * c.mean,) * 3, swapRB=True)
        x = np.asarray(blob, np.float32)
        if self.flip_test:
            both = self._raw(np.concatenate([x, np.ascontiguousarray(x[..., ::-1])]))
            raw = (both[0] + unmirror(both[1], canvas.shape[0], canvas.shape[1], c.strides)) / 2
        else:
            raw = self._raw(x)[0]
        small = (c.smallest_face, self.small_face_threshold)
        return decode(raw, *self._grid(*canvas.shape[:2]), self.score_threshold, self.nms_threshold, small)

    def _tiled(self, img: np.ndarray, f: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`_pass` over overlapping tiles of ``img`` (the photo scaled by ``f``), in original
        pixels: the faces smaller than the overlap, each whole in some tile (the pyramid's coarser
        passes find the larger ones)."""
        parts = []
        for y0 in tile_starts(img.shape[0], TILE_SIDE, TILE_OVERLAP):
            for x0 in tile_starts(img.shape[1], TILE_SIDE, TILE_OVERLAP):
                b, s, p = self._pass(img[y0 : y0 + TILE_SIDE, x0 : x0 + TILE_SIDE])
                inside = longer_sides(b) < TILE_OVERLAP  # a larger face may be cut by the tile's edge
                b = from_downscaled(b[inside].reshape(-1, 2, 2) + (x0, y0), f).reshape(-1, 4)
                parts.append((b, s[inside], from_downscaled(p[inside] + (x0, y0), f)))
        boxes, scores, pts = (np.concatenate(x) for x in zip(*parts, strict=True))
        order = nms(boxes, scores, self.nms_threshold)  # one box per face before the pass's filters
        return boxes[order], scores[order], pts[order]

    def _at(self, image_bgr: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """Faces at one input side, in original pixels (tiled above :data:`TILE_SIDE`), and the scale."""
        longer = max(image_bgr.shape[:2])
        if self.auto and side > longer:  # a photo just under the weights' side (auto_side)
            g = side / longer
            size = (round(image_bgr.shape[1] * g), round(image_bgr.shape[0] * g))
            img = cv2.resize(image_bgr, size, interpolation=cv2.INTER_LINEAR)
            f = img.shape[1] / image_bgr.shape[1]
        else:
            img, f = _shrink(image_bgr, side)
        if max(img.shape[:2]) > TILE_SIDE:
            boxes, scores, pts = self._tiled(img, f)
            return boxes, scores, pts, f
        boxes, scores, pts = self._pass(img)
        return from_downscaled(boxes.reshape(-1, 2, 2), f).reshape(-1, 4), scores, from_downscaled(pts, f), f

    def detect(self, image_bgr: np.ndarray) -> list[Detection]:
        side = self.input_side(*image_bgr.shape[:2])
        sides = pyramid(side, min(side, self.config.max_side))
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for k, s in enumerate(reversed(sides)):  # coarsest first
            boxes, scores, pts, f = self._at(image_bgr, s)
            size = longer_sides(boxes) * f  # on this pass's input
            keep = np.ones(len(boxes), bool)
            if s != sides[0]:  # a finer pass sees the faces under the smallest face here better
                keep &= size >= self.config.smallest_face
            if k:  # the faces the network sees well here, and not parts of a larger face found coarser
                coarser = np.concatenate([p[0] for p in parts])
                keep &= (size <= LARGEST_FACE) & ~inside_larger(boxes, coarser).any(1)
            parts.append((boxes[keep], scores[keep], pts[keep]))
        boxes, scores, pts = (np.concatenate(x) for x in zip(*parts, strict=True))
        order = nms(boxes, scores, self.nms_threshold)  # across passes (a no-op on one); best first
        boxes, scores, pts = boxes[order], scores[order], pts[order]
        # a box lying inside a surer, larger face is a part of it (an eye seen as a face)
        part = np.tril(inside_larger(boxes, boxes), -1).any(1)
        boxes, scores, pts = boxes[~part], scores[~part], pts[~part]
        big_enough = longer_sides(boxes) >= self.min_face
        return [
            Detection(as_box(b), float(s), "net", p)
            for b, s, p in zip(boxes[big_enough], scores[big_enough], pts[big_enough], strict=True)
        ]
