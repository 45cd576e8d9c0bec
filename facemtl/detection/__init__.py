"""Face detectors: facemtl's own network (the default), OpenCV's Haar cascades, and a
user-supplied YuNet model through OpenCV. Each returns :class:`Detection` s, best first."""

from facemtl.detection.base import BoxRule, Detection, FaceDetector, box_rule, nms
from facemtl.detection.haar import HAAR_BOX_RULES, HaarFaceDetector
from facemtl.detection.net import NetFaceDetector, letterbox
from facemtl.detection.yunet import YuNetDetector

__all__ = [
    "HAAR_BOX_RULES",
    "BoxRule",
    "Detection",
    "FaceDetector",
    "HaarFaceDetector",
    "NetFaceDetector",
    "YuNetDetector",
    "box_rule",
    "letterbox",
    "nms",
]
