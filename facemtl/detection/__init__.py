"""Face detectors: facemtl's own network (the default), OpenCV's Haar cascades, and a
user-supplied YuNet model through OpenCV. Each returns a list of :class:`Detection`, best first."""

from facemtl.detection.base import (
    BoxRule,
    Detection,
    FaceDetector,
    Matching,
    annotated_detection,
    box_iou,
    box_rule,
    longer_sides,
    match_detections,
    mirrored,
    nms,
)
from facemtl.detection.haar import DEFAULT_MIN_FACE, HAAR_BOX_RULES, HaarFaceDetector
from facemtl.detection.net import NetFaceDetector, letterbox
from facemtl.detection.yunet import YuNetDetector


def create_detector(
    spec: str = "facemtl",
    *,
    score_threshold: float | None = None,
    small_face_threshold: float | None = None,
    min_face: float = 0.0,
    max_side: int | None = None,
    backend: str = "auto",
    flip_test: bool = False,
    threads: int = 1,
) -> FaceDetector:
    """A detector by name: ``facemtl`` (the shipped network; ``facemtl:NAME`` another shipped
    one, ``facemtl:FILE`` your own weights), ``haar``
    (OpenCV's cascades), or ``yunet:PATH`` (a user-supplied YuNet ONNX run by OpenCV).
    ``score_threshold``, ``small_face_threshold`` (facemtl's: boxes under the network's
    ``smallest_face``), ``min_face`` (px) and ``max_side`` (the longer side the image is
    downscaled to) default to each detector's own; ``backend`` runs facemtl's network with ONNX
    Runtime (``onnx``) or PyTorch (``torch``), ``auto``: the first installed
    (:func:`~facemtl.models.loading.load_network`); ``flip_test`` averages facemtl's network over the image and its mirror; ``threads``: its ONNX Runtime session's."""
    kind, _, arg = spec.partition(":")
    if flip_test and kind != "facemtl":
        raise ValueError(f"{spec}: flip_test applies to facemtl's network only")
    if kind == "facemtl":
        from facemtl.models.loading import load_network
        from facemtl.models.pretrained import DEFAULT_DETECTOR

        net = load_network(arg or None, kind="detector", default=DEFAULT_DETECTOR, backend=backend, threads=threads)
        return NetFaceDetector(
            net,  # type: ignore[arg-type]  # a detector, checked by kind
            min_face=min_face,
            max_side=max_side,
            score_threshold=score_threshold,
            small_face_threshold=small_face_threshold,
            flip_test=flip_test,
        )
    if kind == "haar" and not arg:
        return HaarFaceDetector(
            max_side=max_side or 320, min_face=max(round(min_face), 12) if min_face else DEFAULT_MIN_FACE
        )
    if kind == "yunet" and arg:
        return YuNetDetector(arg, score_threshold=score_threshold or 0.6, min_face=min_face, max_side=max_side or 0)
    raise ValueError(f"unknown detector {spec!r}: use facemtl, facemtl:WEIGHTS, haar or yunet:PATH")


__all__ = [
    "create_detector",
    "HAAR_BOX_RULES",
    "BoxRule",
    "Detection",
    "FaceDetector",
    "HaarFaceDetector",
    "NetFaceDetector",
    "YuNetDetector",
    "Matching",
    "annotated_detection",
    "box_iou",
    "box_rule",
    "longer_sides",
    "match_detections",
    "mirrored",
    "letterbox",
    "nms",
]
