"""Aligned face crops: a similarity transform (rotation, uniform scale, shift) from a face's five
points to a named template, the way face-recognition and face-generation pipelines expect their
input (ArcFace's 112 × 112 crop; a looser FFHQ-style crop at any size).

The transform travels with the crop (``matrix``: image pixels → crop pixels, OpenCV's 2 × 3 form,
0-based pixel centres on both sides), so a result on the crop maps back to the photo.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from facemtl.core.tasks import IBUG68, MTFL5, LandmarkSpec

if TYPE_CHECKING:
    from facemtl.analysis.analyzer import Face

#: ArcFace's five points on its 112 × 112 crop (insightface's ``arcface_dst``), in MTFL's order
#: (image-left eye first).
_ARCFACE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]]
)


def _ffhq_template() -> np.ndarray:
    """The ArcFace points placed in FFHQ's crop rule (Karras et al.'s ``align_images``): centred a
    tenth of the eye-to-mouth vector below the eyes' midpoint, side twice max(2 × eye distance,
    1.8 × eye-to-mouth distance); in fractions of the side."""
    p = _ARCFACE_112
    eyes, mouth = p[:2].mean(0), p[3:].mean(0)
    eye_to_eye, eye_to_mouth = p[1] - p[0], mouth - eyes
    half = max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    centre = eyes + eye_to_mouth * 0.1
    return (p - (centre - half)) / (2 * half)


#: Templates by name: the five points in fractions of the crop side (× ``size`` → crop pixels).
TEMPLATES: dict[str, np.ndarray] = {"arcface": _ARCFACE_112 / 112.0, "ffhq": _ffhq_template()}


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The least-squares similarity (no reflection) taking points ``src`` ``(N, 2)`` onto ``dst``,
    as a 2 × 3 matrix (Umeyama, 1991)."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    flip = np.diag([1.0, 1.0 if np.linalg.det(u) * np.linalg.det(vt) > 0 else -1.0])
    rot = u @ flip @ vt
    var = (s**2).sum() / len(src)
    if var <= 0:
        raise ValueError("the five points coincide: no transform")
    scale = float(np.trace(np.diag(sig) @ flip)) / var
    m = np.empty((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - m[:, :2] @ mu_s
    return m


@dataclass(frozen=True)
class AlignedFace:
    """A face's aligned crop and the transform that made it."""

    image: np.ndarray  # (size, size[, 3]) the crop, in the photo's channel layout
    matrix: np.ndarray  # (2, 3) photo pixels → crop pixels
    template: str
    size: int

    def to_photo(self, points: np.ndarray) -> np.ndarray:
        """Crop pixels ``(..., 2)`` back to the photo's pixels."""
        inverse = cv2.invertAffineTransform(self.matrix)
        return np.asarray(points, np.float64) @ inverse[:, :2].T + inverse[:, 2]

    def to_dict(self) -> dict:
        """The transform as JSON: ``matrix`` maps photo pixels to crop pixels (x' = M · [x, y, 1])."""
        return {"template": self.template, "size": self.size, "matrix": np.round(self.matrix, 6).tolist()}


_SPECS: tuple[LandmarkSpec, ...] = (MTFL5, IBUG68)


def five_points(landmarks: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """A face's five MTFL points from its landmarks in any shipped markup (5 or 68 points)."""
    for spec in _SPECS:
        if spec.names == tuple(names):
            return np.asarray(spec.mtfl5(np.asarray(landmarks, np.float64)))
    raise ValueError(f"no five-point rule for a markup of {len(names)} points")


def align(image: np.ndarray, points5: np.ndarray, *, size: int = 112, template: str = "arcface") -> AlignedFace:
    """The ``size`` × ``size`` crop of ``image`` that puts the five points ``(5, 2)`` (photo pixels,
    MTFL order) onto ``template`` (:data:`TEMPLATES`)."""
    if template not in TEMPLATES:
        raise ValueError(f"template must be one of {', '.join(TEMPLATES)}, got {template!r}")
    if not 8 <= size <= 4096:
        raise ValueError(f"size must be in [8, 4096] px, got {size}")
    m = similarity_transform(points5, TEMPLATES[template] * size)
    crop = cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return AlignedFace(crop, m, template, size)


def align_face(image: np.ndarray, face: Face, *, size: int = 112, template: str = "arcface") -> AlignedFace:
    """:func:`align` for an analysed :class:`~facemtl.analysis.analyzer.Face` of ``image``."""
    return align(image, five_points(face.landmarks, face.landmark_names), size=size, template=template)
