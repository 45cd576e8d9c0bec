"""The face detector's config and the layout of its raw output, torch-free: what a runtime needs to
rebuild the preprocessing and decode the network's map (:mod:`facemtl.detection.net`), whether the
network runs in PyTorch (:mod:`facemtl.models.detector`) or ONNX Runtime."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from facemtl.core.fields import check_fields, from_json, option, replace_fields

#: Layout of the raw output's last axis.
SCORE, BOX, POINTS = slice(0, 1), slice(1, 5), slice(5, 15)
NUM_OUTPUTS = 15
NUM_POINTS = 5

#: Where location j of stride s measures its regressions from (``DetectorConfig.anchors``):
#: ``receptive_field``: s·j, where the location's receptive field is centred (each stride-2 layer,
#: kernel 3 and padding 1, centres output j on input 2j), so a face and its mirror image are seen
#: alike; ``cell_centre``: s·j + (s − 1)/2, the centre of the s × s block the location covers —
#: (s − 1)/2 px right of and below what it sees, which the network has to learn to make up for,
#: and which differs between a photo and its mirror image (facemtl_det's first two releases).
ANCHORS = ("receptive_field", "cell_centre")
#: The convention new detectors train with.
DEFAULT_ANCHORS = "receptive_field"


def _check_anchors(anchors: str) -> None:
    if anchors not in ANCHORS:
        raise ValueError(f"anchors must be one of {', '.join(ANCHORS)}, got {anchors!r}")


def check_threshold(name: str, value: float) -> None:
    """A score threshold is a probability strictly between 0 and 1 (0 would keep every location)."""
    if not 0 < value < 1:
        raise ValueError(f"{name} must be in (0, 1), got {value}")


@dataclass(frozen=True)
class DetectorConfig:
    """A detector preset. ``stages``: (channels, blocks) per stride 4, 8, 16, 32; ``neck``: FPN
    width; ``input_size``: the square training canvas (inference letterboxes to ``max_side``).

    These fields belong to trained weights, so a retrained detector brings its own:
    ``score_threshold`` (chosen on validation data: scenes, or crowds and photos of the held-out photos), ``box_rule``
    (dx, dy, scale of :class:`~facemtl.detection.BoxRule`: detector box → landmark box, fitted on
    MTFL training faces by ``scripts/calibrate_detector.py``) and ``smallest_face``: the face side,
    in network-input pixels, from which the network finds most faces (84–97 % of 20–24-px faces
    at input sides 320–640 in ``references/benchmarks/crowd.py``'s recall-by-size table); ``min_face`` sizes the
    input by it. ``small_face_threshold``: the score threshold of boxes whose longer side on the
    network input is under ``smallest_face`` (None: ``score_threshold``): a score is trained towards
    its box's IoU, and a pixel costs a small box more IoU, so small faces score lower.
    ``max_side`` too: the default input side chosen for the weights. ``anchors``:
    where each location's regressions are measured from (:data:`ANCHORS`; weights saved before
    the field have ``cell_centre``)."""

    name: str
    stem: int = option(16, low=1, high=1024)
    stages: tuple[tuple[int, int], ...] = option(((32, 1), (48, 2), (64, 2), (96, 2)), low=1, high=1024, items=(4, 4))
    neck: int = option(48, low=1, high=1024)
    strides: tuple[int, ...] = option((8, 16, 32), choices=((8, 16, 32),))
    input_size: int = option(256, low=32, high=4096)
    max_side: int = option(320, low=32, high=8192)
    mean: float = option(0.5, low=-1e3, high=1e3)
    std: float = option(0.5, above=0, high=1e3)
    score_threshold: float = 0.4
    box_rule: tuple[float, float, float] = option((0.0063, 0.0594, 0.5251), low=-10, high=10)
    smallest_face: float = option(20.0, above=0, high=1e4)
    small_face_threshold: float | None = None
    anchors: str = DEFAULT_ANCHORS
    kind: str = option("detector", choices=("detector",))

    def __post_init__(self) -> None:
        check_fields(self)
        if any(blocks > 16 for _, blocks in self.stages):
            raise ValueError(f"stages: at most 16 blocks a stage; got {self.stages}")
        if self.box_rule[2] <= 0:
            raise ValueError(f"box_rule's scale (its third value) must be > 0; got {self.box_rule}")
        _check_anchors(self.anchors)
        check_threshold("score_threshold", self.score_threshold)
        if self.small_face_threshold is not None:
            check_threshold("small_face_threshold", self.small_face_threshold)

    @property
    def canvas_extra(self) -> int:
        """An inference canvas is a multiple of the largest stride plus this: 1 with
        receptive-field anchors, so that on every level centre s·j mirrors onto a centre s·j'
        (canvas side − 1 divisible by every stride) and a mirrored photo meets a mirrored grid."""
        return 1 if self.anchors == "receptive_field" else 0

    def with_overrides(self, **kw: Any) -> DetectorConfig:
        """A copy with fields changed (a recipe's ``model_overrides``); unknown fields and bad
        values are ValueErrors naming the field."""
        if "stages" in kw and isinstance(kw["stages"], (list, tuple)):
            kw["stages"] = tuple(tuple(s) if isinstance(s, (list, tuple)) else s for s in kw["stages"])
        return replace_fields(self, "detector config", **kw)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], section: str = "") -> DetectorConfig:
        """A config from its JSON form, every field checked (a weights header is untrusted input)."""
        if isinstance(d, dict) and "anchors" not in d:
            d = {**d, "anchors": "cell_centre"}  # weights saved before the field existed
        return from_json(cls, d, section)


def level_shapes(height: int, width: int, strides: tuple[int, ...]) -> list[tuple[int, int]]:
    """Grid (rows, columns) of each level of an input: its output is these grids, row-major, in order."""
    return [(-(-height // s), -(-width // s)) for s in strides]


def anchor_points(height: int, width: int, strides: tuple[int, ...], anchors: str) -> tuple[np.ndarray, np.ndarray]:
    """Anchor (x, y) in input pixels (0-based pixel centres; cell j of stride s at s·j, or at
    s·j + (s−1)/2 with ``cell_centre`` anchors, :data:`ANCHORS`) and stride of every location, in
    the network's output order, as float32 arrays ``(N, 2)`` and ``(N,)``."""
    _check_anchors(anchors)
    centres, sizes = [], []
    for s, (h, w) in zip(strides, level_shapes(height, width, strides), strict=True):
        ys, xs = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
        offset = (s - 1) / 2 if anchors == "cell_centre" else 0.0
        centres.append((np.stack([xs.ravel(), ys.ravel()], 1) * s + offset).astype(np.float32))
        sizes.append(np.full(h * w, float(s), np.float32))
    return np.concatenate(centres), np.concatenate(sizes)
