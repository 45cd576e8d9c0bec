"""A detector run on a window around where a face is expected, instead of on the whole image.

A tracker that lost a face knows where it was and how large: the face is back, if at all, within
about its own size of there and at about its size. Searching a window of a few times its box,
scaled so the face has a fixed size on it, costs the same on a 640 × 480 frame as on a 4K one —
a few hundred pixels of detector input instead of the whole frame at the side its smallest
faces need.
"""

from __future__ import annotations

import cv2
import numpy as np

from facemtl.detection.base import Detection, FaceDetector, as_box

#: The window's side as a multiple of the expected face's box side: a face whose centre moved by up to its
#: size and whose size doubled still lies inside it.
WINDOW = 4.0
#: The expected face's box side on the window's pixels (the network finds faces from 20 px; a face
#: half as large as expected is still found, one twice as large is ~100 px).
FACE_PX = 48.0
#: The window is never enlarged more than this: a tiny face is not invented from a few pixels.
MAX_ZOOM = 2.0


def detect_near(
    detector: FaceDetector, image_bgr: np.ndarray, box: tuple[float, float, float, float] | np.ndarray
) -> list[Detection]:
    """``detector``'s faces in a square window of :data:`WINDOW` × ``box``'s longer side centred on
    ``box``, in ``image_bgr``'s pixels (0-based, pixel centres). Parts of the window outside the image are
    mid gray, as the detector's own letterbox pads."""
    x1, y1, x2, y2 = (float(v) for v in box)
    size = max(x2 - x1, y2 - y1, 1.0)
    zoom = min(MAX_ZOOM, FACE_PX / size)  # window pixels per image pixel
    side = max(1, round(WINDOW * size * zoom))
    # window pixel u shows image pixel x = u / zoom + x0 (a pure scale and shift: pixel centres map to centres)
    x0 = (x1 + x2) / 2 - (side - 1) / 2 / zoom
    y0 = (y1 + y2) / 2 - (side - 1) / 2 / zoom
    to_window = np.array([[zoom, 0.0, -zoom * x0], [0.0, zoom, -zoom * y0]])
    window = cv2.warpAffine(
        image_bgr, to_window, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
        borderValue=(128, 128, 128),
    )  # fmt: skip
    offset = np.array([x0, y0])
    found = []
    for d in detector.detect(window):
        corners = np.asarray(d.box, np.float64).reshape(2, 2) / zoom + offset
        points = None if d.landmarks is None else np.asarray(d.landmarks, np.float64) / zoom + offset
        found.append(Detection(as_box(corners.ravel()), d.score, d.kind, points))
    return found
