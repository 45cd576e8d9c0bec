"""Drawing analysed faces onto images (OpenCV only; returns a new image, writes nothing)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from facemtl.analysis.analyzer import Face
from facemtl.core.tasks import spec_for_points
from facemtl.detection.base import box_intersection

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
    """A copy of the image with each face's box, landmarks and attribute labels (with probabilities);
    the labels are drawn last, each where it covers the fewest other faces and labels (:func:`label_positions`)."""
    out = image_bgr.copy()
    scale = max(out.shape[:2]) / 640
    thick = max(1, round(2 * scale))
    boxes, blocks = [], []
    for face in faces:
        x1, y1, x2, y2 = (round(v) for v in face.box)
        boxes.append((x1, y1, x2, y2))
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
            (tw, th), _ = cv2.getTextSize(label, FONT, font_scale, thick)
            cv2.rectangle(out, (x1, y1 - th - 8), (x1 + tw + 6, y1), (80, 220, 80), -1)
            cv2.putText(out, label, (x1 + 3, y1 - 5), FONT, font_scale, (0, 0, 0), thick, cv2.LINE_AA)
        lines = [
            f"{name}: {a.label} {a.prob:.2f}" if a.expected is None else f"{name}: {a.expected:.0f} ({a.label})"
            for name, a in face.attributes.items()
        ]
        blocks.append(_LabelBlock(lines, max(0.4, 0.5 * scale), out.shape[1]) if attributes and lines else None)
    sized = [(i, b) for i, b in enumerate(blocks) if b is not None]
    spots = label_positions([(b.width, b.height) for _, b in sized], [boxes[i] for i, _ in sized], out.shape[:2])
    for (_, block), spot in zip(sized, spots, strict=True):
        block.draw(out, spot)
    return out


FONT = cv2.FONT_HERSHEY_SIMPLEX


class _LabelBlock:
    """A face's attribute lines, white on black, measured once; the font narrowed (to 0.3 at least)
    where the lines are wider than the image."""

    def __init__(self, lines: list[str], font_scale: float, image_width: int):
        def widest(scale: float) -> int:
            return max(cv2.getTextSize(line, FONT, scale, 1)[0][0] for line in lines) + 4

        if widest(font_scale) > image_width:
            font_scale = max(0.3, font_scale * image_width / widest(font_scale))
        self.lines, self.font_scale = lines, font_scale
        (_, self.th), _ = cv2.getTextSize("Ag", FONT, font_scale, 1)
        self.width, self.height = widest(font_scale), (self.th + 8) * len(lines)

    def draw(self, out: np.ndarray, spot: tuple[int, int]) -> None:
        left, top = spot
        for k, line in enumerate(self.lines):
            y = top + k * (self.th + 8) + self.th + 3  # the text's baseline
            (tw, _), _ = cv2.getTextSize(line, FONT, self.font_scale, 1)
            cv2.rectangle(out, (left, y - self.th - 3), (left + tw + 4, y + 4), (0, 0, 0), -1)
            cv2.putText(out, line, (left + 2, y), FONT, self.font_scale, (255, 255, 255), 1, cv2.LINE_AA)


def label_positions(
    sizes: Sequence[tuple[int, int]], boxes: Sequence[tuple[int, int, int, int]], shape: tuple[int, int]
) -> list[tuple[int, int]]:
    """Where each face's label block ``(width, height)`` goes (its top-left corner): below its box,
    else above, right or left of it, slid along that side if need be — the nearest spot that covers
    no face and no label placed before it, else the one that covers least — always inside an image
    of ``shape`` (height, width). In a group photo the labels then stop covering each other and the
    next faces; with one face nothing moves (below, as before, where the image has room)."""
    h, w = shape
    steps = np.array([0, 1, -1, 2, -2, 3, -3, 4, -4])  # along a side, a quarter of the block at a time
    faces = np.asarray(boxes, np.int64).reshape(-1, 4)
    placed = np.empty((0, 4), np.int64)
    spots: list[tuple[int, int]] = []
    for (bw, bh), (x1, y1, x2, y2) in zip(sizes, boxes, strict=True):
        sides = np.array(
            [(x1, y2 + 3), (x1, y1 - 3 - bh), (x2 + 3, y1), (x1 - 3 - bw, y1)]
        )  # below, above, right, left
        along = np.zeros((len(steps), 4, 2), np.int64)
        along[:, :2, 0] = steps[:, None] * bw // 4  # below and above slide sideways
        along[:, 2:, 1] = steps[:, None] * bh // 4  # right and left slide up and down
        wanted = (sides[None] + along).reshape(-1, 2)  # step-major: the nearest spots first
        corner = np.stack([np.clip(wanted[:, 0], 0, max(w - bw, 0)), np.clip(wanted[:, 1], 0, max(h - bh, 0))], 1)
        rects = np.concatenate([corner, corner + (bw, bh)], 1)
        covered = box_intersection(rects, np.concatenate([faces, placed])).sum(1)
        away = np.abs(corner - sides[np.arange(len(rects)) % 4]).sum(1)  # slid, or pushed inside the image
        cost = covered + 2 * away + np.arange(len(rects)) % 4  # the side's order breaks ties: below first
        lx, ty = (int(v) for v in corner[int(np.argmin(cost))])
        spots.append((lx, ty))
        placed = np.concatenate([placed, [[lx, ty, lx + bw, ty + bh]]])
    return spots
