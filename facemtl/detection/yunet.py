"""A user-supplied YuNet ONNX model (Wu, Peng, Yu 2023) run by OpenCV's ``cv2.FaceDetectorYN``.

facemtl ships no third-party model: this is ``--detector yunet:PATH`` for users who have the file
(e.g. OpenCV Zoo's ``face_detection_yunet_2023mar.onnx``), and the teacher that labels training
photos for facemtl's own detector (``scripts/label_faces.py``). YuNet's five points are the
person's right eye, left eye, nose, right and left mouth corner: in image terms MTFL's order.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from facemtl.core.geometry import downscale, from_downscaled
from facemtl.detection.base import BoxRule, Detection

#: Fitted by ``scripts/calibrate_detector.py --detector yunet:PATH --limit 3000`` on MTFL training
#: faces with YuNet 2023mar (3,000 of 3,000 found): the landmark box from YuNet's box.
YUNET_BOX_RULES = {"yunet": BoxRule(-0.0037, 0.0569, 0.5203)}


class YuNetDetector:
    """``cv2.FaceDetectorYN`` on the whole image (downscaled so its longer side is at most
    ``max_side``, 0 = never); faces below ``min_face`` px (original pixels) are dropped."""

    name = "yunet"

    def __init__(
        self,
        path: str | Path,
        *,
        score_threshold: float = 0.6,
        nms_threshold: float = 0.3,
        max_side: int = 0,
        min_face: float = 0.0,
        box_rules: dict[str, BoxRule] | None = None,
    ):
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: YuNet model file not found")
        try:
            self._det = cv2.FaceDetectorYN.create(str(path), "", (320, 320), score_threshold, nms_threshold)
        except cv2.error as e:
            raise ValueError(f"{path}: OpenCV cannot load it as a YuNet model ({str(e).strip()[:200]})") from None
        self.max_side, self.min_face = max_side, min_face
        self.box_rules = dict(YUNET_BOX_RULES if box_rules is None else box_rules)

    def detect(self, image_bgr: np.ndarray) -> list[Detection]:
        img, f = downscale(image_bgr, self.max_side) if self.max_side else (image_bgr, 1.0)
        if img.ndim == 2:
            img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        self._det.setInputSize((img.shape[1], img.shape[0]))
        _, rows = self._det.detect(np.ascontiguousarray(img))
        if rows is None:
            return []
        out = []
        for r in sorted(rows, key=lambda r: -float(r[14])):
            x, y, bw, bh = (float(v) / f for v in r[:4])
            if max(bw, bh) < self.min_face:
                continue
            points = from_downscaled(np.asarray(r[4:14], np.float64).reshape(5, 2), f)
            out.append(Detection((x, y, x + bw, y + bh), float(r[14]), "yunet", points))
        return out
