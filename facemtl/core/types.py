"""The structures that cross module boundaries: batches, network outputs, JSON records.

TypedDicts, so they stay the plain dicts that DataLoader collation, ONNX export and ``json``
handle, while a type checker knows every key. Importing this module costs nothing (no torch at
run time).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypedDict, TypeVar, cast

if TYPE_CHECKING:
    from torch import Tensor


class FaceBatch(TypedDict):
    """Landmark-model training item (batched by the DataLoader: a leading batch axis)."""

    image: Tensor  # (C, S, S) float, normalised
    landmarks: Tensor  # (K, 2) in unit crop coordinates
    landmark_mask: Tensor  # () bool: whether this face has landmark annotation
    landmark_five: Tensor  # () bool: annotated with only the five MTFL points (in the first slots)
    attributes: Tensor  # (T,) int64 class index per attribute task, -1 = missing


class SceneBatch(TypedDict):
    """Detector training item: one scene, faces padded to a fixed count."""

    image: Tensor  # (3, S, S) float RGB, normalised
    boxes: Tensor  # (F, 4) x1, y1, x2, y2 px
    face_mask: Tensor  # (F,) bool: a real face (not padding)
    landmarks: Tensor  # (F, 5, 2) px
    landmark_mask: Tensor  # (F,) bool: the face has annotated points
    ignore: Tensor  # (F,) bool: neither reward nor penalty near this face


Batch = TypeVar("Batch", FaceBatch, SceneBatch)


def batch_to(batch: Batch, device: Any) -> Batch:
    """Every tensor of a batch moved to ``device``."""
    tensors: dict[str, Any] = dict(batch)
    return cast(Batch, {k: v.to(device, non_blocking=True) for k, v in tensors.items()})


class _NetOutputs(TypedDict):
    landmarks: Tensor  # (N, K, 2) unit crop coordinates
    attributes: dict[str, Tensor]  # task → (N, classes) logits


class NetOutputs(_NetOutputs, total=False):
    """What the landmark network (or its ONNX Runtime twin) returns for a batch of crops."""

    gates: dict[str, Tensor]  # MMoE only: task → (N, experts) gate weights


class _AttributeRecord(TypedDict):
    label: str
    prob: float


class AttributeRecord(_AttributeRecord, total=False):
    """One attribute of a face: its most probable class; an ordered task (age) adds the expected
    value of its classes' numbers (years)."""

    expected: float


class _FaceRecord(TypedDict):
    box: list[float]  # x1, y1, x2, y2
    score: float
    landmarks: list[list[float]]  # (K, 2)
    attributes: dict[str, AttributeRecord]


class FaceRecord(_FaceRecord, total=False):
    """One face in ``facemtl predict --json`` (0-based pixel coordinates)."""

    track_id: int  # videos: the face's track (the same in every frame it is followed through)


class _ImageRecord(TypedDict):
    image: str


class ImageRecord(_ImageRecord, total=False):
    """One line of ``facemtl predict --json``: an input and its faces, or why it failed; a video
    gives a line per frame (``image`` is ``PATH#frame=N``) with the frame's index and time."""

    faces: list[FaceRecord]
    error: str
    frame: int
    time: float  # seconds from the video's start
