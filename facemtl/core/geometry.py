"""Crop geometry shared by training, evaluation and inference.

Pixel convention everywhere in facemtl: 0-based, the first pixel's centre is (0, 0), as in
numpy and OpenCV. A crop is a square box ``(cx, cy, size)`` in image pixels sampled onto an
``S × S`` grid whose pixel centres are spread evenly over the box, so that

    x_crop = (x_image - cx) * S / size + (S - 1) / 2

This one affine map (and its inverse) is the only way points travel between an image and a
crop, which is what makes the landmark round trip exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

#: How far the canonical crop reaches beyond the landmarks: side = CROP_SCALE × the larger
#: side of the landmarks' bounding box, centred on that box. Models store their own value.
DEFAULT_CROP_SCALE = 2.2


@dataclass(frozen=True)
class Box:
    """A square face box: centre and side length in image pixels (0-based convention)."""

    cx: float
    cy: float
    size: float

    def to_xyxy(self) -> tuple[float, float, float, float]:
        h = self.size / 2
        return (self.cx - h, self.cy - h, self.cx + h, self.cy + h)

    def scaled(self, factor: float) -> Box:
        return Box(self.cx, self.cy, self.size * factor)


def mirror_points(points: np.ndarray, width: int, flip_permutation: list[int]) -> np.ndarray:
    """Points ``(..., K, 2)`` in the mirror image of a ``width``-pixel-wide image: x → width − 1 − x
    (0-based pixel centres) and left/right slots swapped (``flipped[i] = points[perm[i]]``). A copy."""
    out = np.asarray(points)[..., flip_permutation, :]  # fancy indexing copies
    out[..., 0] = (width - 1) - out[..., 0]
    return out


def mirror_boxes(boxes: npt.ArrayLike, width: int) -> np.ndarray:
    """Boxes ``(..., 4)`` (x1, y1, x2, y2) in the mirror image of a ``width``-pixel-wide image."""
    b = np.asarray(boxes)
    return np.stack([(width - 1) - b[..., 2], b[..., 1], (width - 1) - b[..., 0], b[..., 3]], -1)


def crop_box_from_landmarks(landmarks: np.ndarray, crop_scale: float = DEFAULT_CROP_SCALE) -> Box:
    """The deterministic evaluation crop: centre of the landmarks' bounding box, side =
    ``crop_scale`` × its larger side (the same rule, with random jitter, is used in training)."""
    pts = np.asarray(landmarks, dtype=np.float64)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    span = float(max(hi[0] - lo[0], hi[1] - lo[1], 1.0))
    c = (lo + hi) / 2
    return Box(float(c[0]), float(c[1]), span * crop_scale)


@dataclass(frozen=True)
class CropTransform:
    """Similarity transform from image pixels to an ``out_size × out_size`` crop."""

    matrix: np.ndarray  # 2×3, image → crop
    out_size: int

    @classmethod
    def from_box(cls, box: Box, out_size: int, angle_deg: float = 0.0) -> CropTransform:
        """Crop ``box`` (optionally rotated by ``angle_deg`` counter-clockwise about its centre)."""
        if box.size <= 0:
            raise ValueError(f"crop box must have a positive size, got {box.size}")
        s = out_size / box.size
        a = np.deg2rad(angle_deg)
        c, si = np.cos(a) * s, np.sin(a) * s
        half = (out_size - 1) / 2
        m = np.array(
            [[c, si, half - c * box.cx - si * box.cy], [-si, c, half + si * box.cx - c * box.cy]],
            dtype=np.float64,
        )
        return cls(m, out_size)

    @property
    def scale(self) -> float:
        return float(np.hypot(self.matrix[0, 0], self.matrix[0, 1]))

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Image → crop coordinates for an ``(N, 2)`` array."""
        p = np.asarray(points, dtype=np.float64)
        return p @ self.matrix[:, :2].T + self.matrix[:, 2]

    def invert(self, points: np.ndarray) -> np.ndarray:
        """Crop → image coordinates for an ``(N, 2)`` array (works on batches ``(..., 2)`` too)."""
        inv = cv2.invertAffineTransform(self.matrix)
        p = np.asarray(points, dtype=np.float64)
        return p @ inv[:, :2].T + inv[:, 2]

    def warp(self, image: np.ndarray) -> np.ndarray:
        """Sample the crop, replicating the border where the box leaves the image.

        Large downscales are done in two steps (area resize, then the affine warp) so the crop is
        not aliased; the point mapping is unchanged.
        """
        m = self.matrix
        scale = self.scale
        if scale < 0.5:
            # Only the part of the image the crop reads is resized: the crop's corners mapped back,
            # plus a margin for the filters. Where the crop leaves the image the region ends at the
            # image's edge, so the replicated border is the image's own.
            h, w = image.shape[:2]
            n = self.out_size
            corners = self.invert(np.array([[-1.0, -1.0], [n, -1.0], [-1.0, n], [n, n]]))
            pad = 2.0 / scale + 2
            x0, y0 = (max(0, int(np.floor(v - pad))) for v in corners.min(0))
            x1, y1 = (int(np.ceil(v + pad)) + 1 for v in corners.max(0))
            x1, y1 = min(w, max(x1, x0 + 1)), min(h, max(y1, y0 + 1))
            if x0 >= w or y0 >= h:  # the crop lies wholly outside: read the nearest edge
                x0, y0 = min(x0, w - 1), min(y0, h - 1)
            else:  # sides a multiple of the area factor where the image allows: OpenCV's fast path
                k = area_factor(scale)
                (x0, x1), (y0, y1) = _multiple_span(x0, x1, k, w), _multiple_span(y0, y1, k, h)
            image, m = area_prescaled(image[y0:y1, x0:x1], m, scale, origin=(x0, y0))
        return cv2.warpAffine(
            image,
            m,
            (self.out_size, self.out_size),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )


def area_factor(scale: float) -> int:
    """The whole factor ``k`` by which :func:`area_prescaled` shrinks an image before a warp of
    ``scale``: the least that leaves the warp shrinking by at most 2 (``scale·k ≥ ½``), so the warp
    shrinks by 1 to 2 and does not alias. Whole factors take OpenCV's fast area path (about 5 µs
    for a 300-px face region, against 130 µs for the same resize by a fractional factor)."""
    return max(1, math.ceil(0.5 / scale - 1e-9))


def _multiple_span(lo: int, hi: int, k: int, size: int) -> tuple[int, int]:
    """``[lo, hi)`` widened to a length that is a multiple of ``k`` within ``[0, size)`` where it
    fits (extended on the right, else on the left), else as it is; a one-pixel edge (what a crop
    lying wholly off that side reads) stays itself."""
    if hi - lo <= 1:
        return lo, hi
    n = -(-(hi - lo) // k) * k
    if lo + n <= size:
        return lo, lo + n
    return (hi - n, hi) if hi - n >= 0 else (lo, hi)


def area_prescaled(
    image: np.ndarray, matrix: np.ndarray, scale: float, origin: tuple[int, int] = (0, 0)
) -> tuple[np.ndarray, np.ndarray]:
    """``image`` area-resized by the whole factor :func:`area_factor` of the affine ``matrix``'s
    ``scale`` (where that shrinks it), and the matrix that maps the resized pixels where ``matrix``
    mapped the original's — so a following bilinear warp shrinks by at most 2 and does not alias.
    ``origin``: where ``image`` (a region) starts in the frame ``matrix`` reads, so only the part a
    warp reads is resized."""
    f = 1.0 / area_factor(scale)
    x0, y0 = origin
    h, w = image.shape[:2]
    nw, nh = max(1, round(w * f)), max(1, round(h * f))
    if (nw, nh) != (w, h):
        image = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
    # Resizing maps x → (x − x0 + 0.5)·nw/w − 0.5; fold its inverse into the matrix.
    fx, fy = w / nw, h / nh
    back = np.array([[fx, 0, 0.5 * fx - 0.5 + x0], [0, fy, 0.5 * fy - 0.5 + y0], [0, 0, 1]])
    return image, (np.vstack([matrix, [0, 0, 1]]) @ back)[:2]


def affine_scale(matrix: np.ndarray) -> float:
    """The linear scale of a 2×3 similarity matrix (√|det| of its 2×2 part)."""
    return float(np.sqrt(abs(np.linalg.det(np.asarray(matrix, np.float64)[:, :2]))))


def downscale(image: np.ndarray, max_side: int, interpolation: int = cv2.INTER_AREA) -> tuple[np.ndarray, float]:
    """``image`` shrunk so its longer side is at most ``max_side`` (never enlarged), and the factor
    ``f`` asked for: an original pixel centre ``x`` lands at ``(x + 0.5)·f − 0.5``
    (:func:`from_downscaled` inverts it)."""
    h, w = image.shape[:2]
    f = min(1.0, max_side / max(h, w))
    if f < 1.0:
        image = cv2.resize(image, (max(1, round(w * f)), max(1, round(h * f))), interpolation=interpolation)
    return image, f


def from_downscaled(points: np.ndarray, f: float) -> np.ndarray:
    """Pixel coordinates on an image scaled by ``f`` → the original's (pixel-centre convention)."""
    return (np.asarray(points, np.float64) + 0.5) / f - 0.5


def to_unit(points: np.ndarray, size: int) -> np.ndarray:
    """Crop pixels → network target space: the crop's outer edges at −1 and +1."""
    return (np.asarray(points, dtype=np.float32) + 0.5) * (2.0 / size) - 1.0


def from_unit(points: np.ndarray, size: int) -> np.ndarray:
    """Network output space → crop pixels (inverse of :func:`to_unit`)."""
    return (np.asarray(points, dtype=np.float64) + 1.0) * (size / 2.0) - 0.5
