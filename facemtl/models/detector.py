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

from typing import cast

import torch
from torch import nn

from facemtl.models.detector_config import (
    ANCHORS,
    BOX,
    DEFAULT_ANCHORS,
    NUM_OUTPUTS,
    NUM_POINTS,
    POINTS,
    SCORE,
    DetectorConfig,
    level_shapes,
)
from facemtl.models.detector_config import anchor_points as _anchor_arrays

__all__ = [
    "ANCHORS",
    "BOX",
    "DEFAULT_ANCHORS",
    "NUM_POINTS",
    "POINTS",
    "SCORE",
    "DetectorConfig",
    "FaceDetectorNet",
    "anchor_points",
    "decode_raw",
    "level_shapes",
]


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


def anchor_points(height: int, width: int, strides: tuple[int, ...], anchors: str) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`facemtl.models.detector_config.anchor_points` as tensors (training's loss and decoding)."""
    centres, sizes = _anchor_arrays(height, width, strides, anchors)
    return torch.from_numpy(centres), torch.from_numpy(sizes)


def decode_raw(raw: torch.Tensor, centres: torch.Tensor, strides: torch.Tensor) -> dict[str, torch.Tensor]:
    """Raw map → ``scores`` (B, N) probabilities, ``boxes`` (B, N, 4) xyxy and ``landmarks``
    (B, N, 5, 2), in input pixels."""
    s = strides[None, :, None]
    ltrb = torch.exp(raw[..., BOX].clamp(max=8.0)) * s
    c = centres[None]
    boxes = torch.cat([c - ltrb[..., :2], c + ltrb[..., 2:]], -1)
    pts = raw[..., POINTS].reshape(*raw.shape[:2], NUM_POINTS, 2) * s[..., None] + c[:, :, None]
    return {"scores": torch.sigmoid(raw[..., 0]), "logits": raw[..., 0], "boxes": boxes, "landmarks": pts}
