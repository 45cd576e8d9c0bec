"""facemtl's face detector: a small anchor-free multi-scale CNN where detection is one more
multi-task net — per feature-map location a face score, a box and the 5 MTFL landmarks.

Backbone of depthwise-separable blocks (strides 2…32), a light top-down FPN over strides 8, 16
and 32, and one head shared by the three levels (its regressions are in units of the level's
stride, so one set of weights serves every scale — as in FCOS and YuNet). The network returns
the raw map ``(B, N, 15)`` over every location of every level (score logit, 4 box distances as
log-strides, 10 landmark offsets in strides); :func:`anchor_points` gives each location's anchor
and stride, and :mod:`facemtl.detection.net` decodes them. Nothing here depends on the input size,
so the same weights run on any image; inference pads it to a side whose grid is its own mirror
image (:attr:`DetectorConfig.canvas_extra`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, cast

import torch
from torch import nn

from facemtl.fields import check_fields, from_json, option, replace_fields

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
    at input sides 320–640 in ``bench/crowd.py``'s recall-by-size table); ``min_face`` sizes the
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


def _conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


def _separable(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    """Depthwise 3×3 (carries the stride) then pointwise 1×1: MobileNet's block."""
    return nn.Sequential(_conv_bn(cin, cin, 3, stride, groups=cin), _conv_bn(cin, cout, 1))


class FaceDetectorNet(nn.Module):
    """Image ``(B, 3, H, W)`` normalised → raw map ``(B, N, 15)``, N = Σ_levels (H/s)(W/s)."""

    def __init__(self, cfg: DetectorConfig):
        super().__init__()
        self.config = cfg
        if tuple(cfg.strides) != (8, 16, 32) or len(cfg.stages) != 4:
            raise ValueError("the detector's FPN reads strides (8, 16, 32) from four stages")
        self.stem = _conv_bn(3, cfg.stem, 3, 2)
        stages, cin = [], cfg.stem
        for cout, blocks in cfg.stages:
            layers = [_separable(cin, cout, 2)] + [_separable(cout, cout) for _ in range(blocks - 1)]
            stages.append(nn.Sequential(*layers))
            cin = cout
        self.stages = nn.ModuleList(stages)
        self.lateral = nn.ModuleList(_conv_bn(c, cfg.neck, 1) for c, _ in cfg.stages[1:])
        self.smooth = nn.ModuleList(_separable(cfg.neck, cfg.neck) for _ in cfg.strides)
        self.head = nn.Sequential(_separable(cfg.neck, cfg.neck), nn.Conv2d(cfg.neck, NUM_OUTPUTS, 1))
        out = cast(nn.Conv2d, self.head[-1])
        bias = cast(torch.Tensor, out.bias)
        nn.init.constant_(bias, 0.0)
        nn.init.constant_(bias[0], -4.6)  # prior face probability 1 %: stable early training
        nn.init.normal_(out.weight, std=0.01)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """FPN maps at strides 8, 16, 32."""
        x = self.stem(x)
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        c3, c4, c5 = feats[1:]
        p5 = self.lateral[2](c5)
        p4 = self.lateral[1](c4) + nn.functional.interpolate(p5, size=c4.shape[-2:], mode="nearest")
        p3 = self.lateral[0](c3) + nn.functional.interpolate(p4, size=c3.shape[-2:], mode="nearest")
        return [s(p) for s, p in zip(self.smooth, (p3, p4, p5), strict=True)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [self.head(f).flatten(2) for f in self.features(x)]  # (B, 15, h·w) per level
        return torch.cat(outs, 2).transpose(1, 2)


def level_shapes(height: int, width: int, strides: tuple[int, ...]) -> list[tuple[int, int]]:
    """Grid (rows, columns) of each level of an input: its output is these grids, row-major, in order."""
    return [(-(-height // s), -(-width // s)) for s in strides]


def anchor_points(height: int, width: int, strides: tuple[int, ...], anchors: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Anchor (x, y) in input pixels (0-based pixel centres; cell j of stride s at s·j, or at
    s·j + (s−1)/2 with ``cell_centre`` anchors, :data:`ANCHORS`) and stride of every location, in
    the network's output order."""
    _check_anchors(anchors)
    centres, sizes = [], []
    for s, (h, w) in zip(strides, level_shapes(height, width, strides), strict=True):
        ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        c = torch.stack([xs.flatten(), ys.flatten()], 1).float() * s + (
            (s - 1) / 2 if anchors == "cell_centre" else 0.0
        )
        centres.append(c)
        sizes.append(torch.full((h * w,), float(s)))
    return torch.cat(centres), torch.cat(sizes)


def decode_raw(raw: torch.Tensor, centres: torch.Tensor, strides: torch.Tensor) -> dict[str, torch.Tensor]:
    """Raw map → ``scores`` (B, N) probabilities, ``boxes`` (B, N, 4) xyxy and ``landmarks``
    (B, N, 5, 2), in input pixels."""
    s = strides[None, :, None]
    ltrb = torch.exp(raw[..., BOX].clamp(max=8.0)) * s
    c = centres[None]
    boxes = torch.cat([c - ltrb[..., :2], c + ltrb[..., 2:]], -1)
    pts = raw[..., POINTS].reshape(*raw.shape[:2], NUM_POINTS, 2) * s[..., None] + c[:, :, None]
    return {"scores": torch.sigmoid(raw[..., 0]), "logits": raw[..., 0], "boxes": boxes, "landmarks": pts}
