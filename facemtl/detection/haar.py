"""OpenCV's Haar cascades: an offline detector from the cascades OpenCV 4.x wheels ship
(``cv2.data.haarcascades``): the frontal cascade, plus the profile cascade on the image and on its
mirror for faces turned away. It works on a downscaled copy and skips faces smaller than
``min_face`` px. Kept as ``--detector haar``; facemtl's own network is the default.
"""

from __future__ import annotations

import cv2
import numpy as np

from facemtl.core.geometry import downscale
from facemtl.detection.base import BoxRule, Detection, as_box, nms

#: Fitted by ``scripts/calibrate_detector.py`` on MTFL training faces (see its docstring).
#: 3,000 random training faces, 2,979 found; interquartile ranges ≤ 0.06 of the box.
#: Smallest face searched by default, px of the original image.
DEFAULT_MIN_FACE = 40
HAAR_BOX_RULES = {
    "frontal": BoxRule(0.002, 0.0776, 0.4254),
    "profile": BoxRule(-0.1586, 0.0948, 0.3785),
}


class HaarFaceDetector:
    """OpenCV Haar cascades (shipped in the opencv-python wheels): frontal + profile + mirrored profile.

    ``max_side``: the image is downscaled so its longer side is at most this (speed);
    ``min_face``: smallest face searched, in pixels of the *original* image;
    ``profile``: ``"always"``, ``"fallback"`` (only when the frontal cascade finds nothing) or ``"never"``;
    ``retry_min_neighbors``: when nothing is found, search once more (frontal + both profiles) with
    this lower threshold at ``retry_scale_factor`` and keep only the single best box (``None`` = off).
    On padded MTFL test faces this lifts recall from 85.0 % to 93.1 % (references/benchmarks/end_to_end.py); the
    price is that a photo without a face can yield one weak box.
    """

    name = "haar"

    def __init__(
        self,
        *,
        max_side: int = 320,
        min_face: int = DEFAULT_MIN_FACE,
        scale_factor: float = 1.15,
        min_neighbors: int = 3,
        profile: str = "fallback",
        retry_min_neighbors: int | None = 1,
        retry_scale_factor: float = 1.1,
        box_rules: dict[str, BoxRule] | None = None,
    ):
        if profile not in ("always", "fallback", "never"):
            raise ValueError(f"profile must be 'always', 'fallback' or 'never', got {profile!r}")
        root = cv2.data.haarcascades  # type: ignore[attr-defined]  # missing from OpenCV's stubs
        self.frontal = cv2.CascadeClassifier(root + "haarcascade_frontalface_default.xml")
        self.profile_cascade = cv2.CascadeClassifier(root + "haarcascade_profileface.xml")
        if self.frontal.empty() or self.profile_cascade.empty():
            raise RuntimeError(
                f"OpenCV's Haar cascade files are missing under {root} (opencv-python-headless<5 ships them)"
            )
        self.max_side, self.min_face = max_side, min_face
        self.scale_factor, self.min_neighbors = scale_factor, min_neighbors
        self.profile = profile
        self.retry_min_neighbors, self.retry_scale_factor = retry_min_neighbors, retry_scale_factor
        self.box_rules = dict(HAAR_BOX_RULES if box_rules is None else box_rules)

    def _run(
        self, cascade: cv2.CascadeClassifier, gray: np.ndarray, min_size: int, min_neighbors: int, scale: float
    ) -> tuple[np.ndarray, np.ndarray]:
        rects, neighbours = cascade.detectMultiScale2(
            gray, scaleFactor=scale, minNeighbors=min_neighbors, minSize=(min_size, min_size)
        )
        if len(rects) == 0:
            return np.empty((0, 4)), np.empty(0)
        r = np.asarray(rects, dtype=np.float64)
        return np.column_stack([r[:, 0], r[:, 1], r[:, 0] + r[:, 2], r[:, 1] + r[:, 3]]), np.asarray(neighbours, float)

    def detect(self, image_bgr: np.ndarray) -> list[Detection]:
        gray = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY) if image_bgr.ndim == 3 else image_bgr
        gray, f = downscale(gray, self.max_side)
        gray = cv2.equalizeHist(gray)
        min_size = max(12, round(self.min_face * f))
        found = self._passes(gray, min_size, self.min_neighbors, self.scale_factor, self.profile)
        retry = False
        if not any(len(b) for b, _, _ in found) and self.retry_min_neighbors is not None:
            found = self._passes(gray, min_size, self.retry_min_neighbors, self.retry_scale_factor, "always")
            retry = True
        boxes = np.concatenate([x[0] for x in found])
        if len(boxes) == 0:
            return []
        scores = np.concatenate([x[1] for x in found])
        kinds = [k for x in found for k in [x[2]] * len(x[0])]
        # frontal boxes win ties: they frame the face more consistently than profile ones
        bonus = np.array([0.5 if k == "frontal" else 0.0 for k in kinds])
        keep = nms(boxes, scores + bonus, 0.3)[: 1 if retry else None]
        inv = 1.0 / f
        # pixel-centre convention: a downscaled pixel i covers original [i/f - 0.5, (i+1)/f - 0.5)
        return [Detection(as_box(boxes[i] * inv - 0.5), float(scores[i]), kinds[i]) for i in keep]

    def _passes(
        self, gray: np.ndarray, min_size: int, neighbours: int, scale: float, profile: str
    ) -> list[tuple[np.ndarray, np.ndarray, str]]:
        """Frontal cascade, then (per ``profile``) the profile cascade on the image and its mirror."""
        b, s = self._run(self.frontal, gray, min_size, neighbours, scale)
        found = [(b, s, "frontal")]
        if profile == "always" or (profile == "fallback" and len(b) == 0):
            b, s = self._run(self.profile_cascade, gray, min_size, neighbours, scale)
            found.append((b, s, "profile"))
            b, s = self._run(self.profile_cascade, gray[:, ::-1].copy(), min_size, neighbours, scale)
            gw = gray.shape[1]
            mirrored = np.column_stack([gw - b[:, 2], b[:, 1], gw - b[:, 0], b[:, 3]]) if len(b) else b
            found.append((mirrored, s, "profile_mirrored"))
        return found
