"""Drawing analysed faces onto images (OpenCV only; returns a new image, writes nothing)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from facemtl.analysis.analyzer import Face
from facemtl.core.tasks import spec_for_points

#: BGR colours cycled over landmark indices (eyes blue/green, nose red, mouth corners yellow/magenta).
COLORS = [(255, 128, 0), (0, 200, 0), (0, 0, 255), (0, 220, 255), (255, 0, 255)]
#: Many-point markups (68) are drawn as their contours (jaw, brows, nose, eyes, lips) in one colour.
CONTOUR_COLOR = (0, 220, 255)


def contours(k: int) -> tuple[tuple[int, ...], ...]:
    """The index chains joined when drawing a ``k``-point markup (none for 5 points)."""
    try:
        return spec_for_points(k).contours
    except ValueError:
        return ()


def draw_faces(image_bgr: np.ndarray, faces: Sequence[Face], *, attributes: bool = True) -> np.ndarray:
    """A copy of the image with each face's box, landmarks and attribute labels (with probabilities)."""
    out = image_bgr.copy()
    scale = max(out.shape[:2]) / 640
    thick = max(1, round(2 * scale))
    for face in faces:
        x1, y1, x2, y2 = (round(v) for v in face.box)
        cv2.rectangle(out, (x1, y1), (x2, y2), (80, 220, 80), thick, cv2.LINE_AA)
        fixed = np.round(np.asarray(face.landmarks, np.float64) * 16).astype(np.int32)  # 4 fractional bits
        chains = contours(len(fixed))
        if chains:
            polylines = [fixed[list(c)].reshape(-1, 1, 2) for c in chains]
            cv2.polylines(out, polylines, False, CONTOUR_COLOR, max(1, thick // 2), cv2.LINE_AA, shift=4)
            r = max(1, round(0.008 * (x2 - x1)))
        else:
            r = max(2, round(0.025 * (x2 - x1)))
        for k, center in enumerate(map(tuple, fixed.tolist())):
            color = CONTOUR_COLOR if chains else COLORS[k % len(COLORS)]
            cv2.circle(out, center, r * 16, color, -1, cv2.LINE_AA, shift=4)
            if not chains:
                cv2.circle(out, center, r * 16, (0, 0, 0), 1, cv2.LINE_AA, shift=4)
        if face.track_id is not None:  # a video's track: its ID above the box
            label = f"#{face.track_id}"
            font_scale = max(0.5, 0.6 * scale)
            (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thick)
            cv2.rectangle(out, (x1, y1 - th - 8), (x1 + tw + 6, y1), (80, 220, 80), -1)
            cv2.putText(
                out, label, (x1 + 3, y1 - 5), cv2.FONT_HERSHEY_SIMPLEX, font_scale, (0, 0, 0), thick, cv2.LINE_AA
            )
        if attributes and face.attributes:
            lines = [
                f"{name}: {a.label} {a.prob:.2f}" if a.expected is None else f"{name}: {a.expected:.0f} ({a.label})"
                for name, a in face.attributes.items()
            ]
            _draw_label_block(out, lines, (x1, y1, x2, y2), max(0.4, 0.5 * scale))
    return out


def _draw_label_block(out: np.ndarray, lines: list[str], box: tuple[int, int, int, int], font_scale: float) -> None:
    """White-on-black text lines under the box, or above it where the image ends below, kept inside
    the image (a portrait's face reaches its bottom edge; a face at the right edge would cut its
    lines), the font shrunk (to 0.3 at least) where the lines are wider than the image."""
    h, w = out.shape[:2]
    font = cv2.FONT_HERSHEY_SIMPLEX
    widest = max(cv2.getTextSize(line, font, font_scale, 1)[0][0] for line in lines) + 4
    if widest > w:
        font_scale = max(0.3, font_scale * w / widest)
        widest = max(cv2.getTextSize(line, font, font_scale, 1)[0][0] for line in lines) + 4
    (_, th), _ = cv2.getTextSize("Ag", font, font_scale, 1)
    step = th + 8
    block = step * len(lines)
    x1, y1, _, y2 = box
    top = y2 + 3 if y2 + 3 + block <= h else y1 - 3 - block  # below the box, else above it
    top = min(max(top, 0), max(h - block, 0))  # else as far down as the image allows
    left = min(max(x1, 0), max(w - widest, 0))
    for k, line in enumerate(lines):
        y = top + k * step + th + 3  # the text's baseline
        (tw, _), _ = cv2.getTextSize(line, font, font_scale, 1)
        cv2.rectangle(out, (left, y - th - 3), (left + tw + 4, y + 4), (0, 0, 0), -1)
        cv2.putText(out, line, (left + 2, y), font, font_scale, (255, 255, 255), 1, cv2.LINE_AA)
