"""Drawing analysed faces onto images (OpenCV only; returns a new image, writes nothing)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from facemtl.inference import Face

#: BGR colours cycled over landmark indices (eyes blue/green, nose red, mouth corners yellow/magenta).
COLORS = [(255, 128, 0), (0, 200, 0), (0, 0, 255), (0, 220, 255), (255, 0, 255)]


def draw_faces(image_bgr: np.ndarray, faces: Sequence[Face], *, attributes: bool = True) -> np.ndarray:
    """A copy of the image with each face's box, landmarks and attribute labels (with probabilities)."""
    out = image_bgr.copy()
    scale = max(out.shape[:2]) / 640
    thick = max(1, round(2 * scale))
    for face in faces:
        x1, y1, x2, y2 = (round(v) for v in face.box)
        cv2.rectangle(out, (x1, y1), (x2, y2), (80, 220, 80), thick, cv2.LINE_AA)
        r = max(2, round(0.025 * (x2 - x1)))
        for k, (x, y) in enumerate(face.landmarks):
            center = (round(float(x) * 16), round(float(y) * 16))  # 4 fractional bits: sub-pixel drawing
            cv2.circle(out, center, r * 16, COLORS[k % len(COLORS)], -1, cv2.LINE_AA, shift=4)
            cv2.circle(out, center, r * 16, (0, 0, 0), 1, cv2.LINE_AA, shift=4)
        if attributes and face.attributes:
            lines = [f"{name}: {a.label} {a.prob:.2f}" for name, a in face.attributes.items()]
            font_scale = max(0.4, 0.5 * scale)
            (_, th), _ = cv2.getTextSize("Ag", cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
            y = y2 + th + 6
            for line in lines:
                (tw, _), _ = cv2.getTextSize(line, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
                cv2.rectangle(out, (x1, y - th - 3), (x1 + tw + 4, y + 4), (0, 0, 0), -1)
                cv2.putText(
                    out, line, (x1 + 2, y), cv2.FONT_HERSHEY_SIMPLEX, font_scale, (255, 255, 255), 1, cv2.LINE_AA
                )
                y += th + 8
    return out
