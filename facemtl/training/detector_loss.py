"""The detector's multi-task loss: face score, box and 5 landmarks, with per-face masks.

Assignment (FCOS-style, anchor-free): a location of stride ``s`` is a positive for a face when
the face's size lies in the level's range and the location's anchor point
(:func:`~facemtl.models.detector.anchor_points`) lies within ``1.5 s`` of the face centre (and inside the box); a location claimed by several faces takes the smallest. Every
face gets at least its nearest location on its best level, so tiny faces are never unassigned.
Locations near an *ignored* face (teacher unsure, too small, cut off) count for nothing.

Tasks, each a masked mean like :mod:`facemtl.training.losses`:
- ``score``: quality focal loss (Li et al., GFL 2020): the score's target is the IoU of the
  predicted box with its face at positives, 0 elsewhere, so a score ranks localisation quality
  (what non-maximum suppression keeps);
- ``box``: GIoU loss at positives;
- ``landmarks``: L1 point error in units of the face's size, at positives whose face carries
  annotated landmarks (teacher-only faces train score and box, not points).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from facemtl.core.types import SceneBatch
from facemtl.models.detector import DEFAULT_ANCHORS, anchor_points, decode_raw
from facemtl.training.balancing import LossBalancer, create_balancer
from facemtl.training.losses import LossOutput, TaskLoss

#: Face sizes (√area, input px) each stride is responsible for; neighbouring ranges overlap.
LEVEL_RANGES = {8: (0.0, 64.0), 16: (32.0, 128.0), 32: (80.0, 1e9)}
CENTRE_RADIUS = 1.5
TASKS = ("score", "box", "landmarks")


def box_iou_pairs(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """IoU and GIoU of matching rows of two ``(..., 4)`` xyxy tensors."""
    lt, rb = torch.maximum(a[..., :2], b[..., :2]), torch.minimum(a[..., 2:], b[..., 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area_a = (a[..., 2:] - a[..., :2]).clamp(min=0).prod(-1)
    area_b = (b[..., 2:] - b[..., :2]).clamp(min=0).prod(-1)
    union = area_a + area_b - inter + 1e-7
    iou = inter / union
    hull = (torch.maximum(a[..., 2:], b[..., 2:]) - torch.minimum(a[..., :2], b[..., :2])).clamp(min=0).prod(-1)
    return iou, iou - (hull - union) / (hull + 1e-7)


class Grid(NamedTuple):
    """Every output location of one input size: centre (N, 2), stride (N,), and the range of face
    sizes its level is responsible for (``lo``, ``hi``: (N,))."""

    centres: torch.Tensor
    strides: torch.Tensor
    lo: torch.Tensor
    hi: torch.Tensor


class Assignment:
    """Which face each location of a batch learns from: ``face`` (B, N) index (−1 = negative),
    ``positive`` (B, N), ``ignored`` (B, N) (no score loss)."""

    def __init__(self, batch: SceneBatch, grid: Grid):
        centres, strides, lo, hi = grid
        boxes, valid, ign = batch["boxes"], batch["face_mask"], batch["ignore"]
        cxy = (boxes[..., :2] + boxes[..., 2:]) / 2  # (B, M, 2)
        wh = (boxes[..., 2:] - boxes[..., :2]).clamp(min=1e-3)
        size = wh.prod(-1).sqrt()  # (B, M)
        p = centres[None, :, None, :]  # (1, N, 1, 2)
        d = (p - cxy[:, None]).abs()  # (B, N, M, 2)
        r = torch.minimum(CENTRE_RADIUS * strides[None, :, None, None], wh[:, None] / 2)
        inside = (d < r).all(-1)
        in_range = (size[:, None] > lo[None, :, None]) & (size[:, None] <= hi[None, :, None])
        real = (valid & ~ign)[:, None]
        cand = inside & in_range & real
        # the nearest location on the level whose range centre (log scale) is nearest the face size
        mid = (lo.clamp(min=8.0) * hi.clamp(max=256.0)).sqrt()
        level_fit = (size[:, None].log() - mid[None, :, None].log()).abs()  # (B, N, M)
        dist = d.pow(2).sum(-1).sqrt() / strides[None, :, None] + 100.0 * level_fit
        nearest = dist.masked_fill(~real, float("inf")).argmin(1)  # (B, M)
        b_idx = torch.arange(boxes.shape[0], device=boxes.device)[:, None].expand_as(nearest)
        m_idx = torch.arange(boxes.shape[1], device=boxes.device)[None].expand_as(nearest)
        cand[b_idx[real[:, 0]], nearest[real[:, 0]], m_idx[real[:, 0]]] = True
        area = size.pow(2)[:, None].expand_as(cand).masked_fill(~cand, float("inf"))
        best_area, face = area.min(-1)
        self.positive = torch.isfinite(best_area)
        self.face = torch.where(self.positive, face, torch.full_like(face, -1))
        near_ignored = (inside & (valid & ign)[:, None]).any(-1)
        self.ignored = near_ignored & ~self.positive


class DetectionLoss(TaskLoss):
    """``λ_score · QFL + λ_box · GIoU + λ_landmarks · L1`` over a batch of scenes, combined by a
    :mod:`~facemtl.training.balancing` strategy (``fixed`` is exactly this sum; ``uncertainty`` learns it).

    ``weights`` (task → λ) may be changed while training, like :class:`facemtl.training.losses.MultiTaskLoss`.
    """

    def __init__(
        self,
        strides: tuple[int, ...],
        weights: dict[str, float] | None = None,
        balancing: str = "fixed",
        anchors: str = DEFAULT_ANCHORS,
    ):
        super().__init__()
        self.strides = tuple(strides)
        self.anchors = anchors
        self.weights = {"score": 1.0, "box": 2.0, "landmarks": 5.0} | dict(weights or {})
        unknown = set(self.weights) - set(TASKS)
        if unknown:
            raise ValueError(f"unknown detector task(s) {sorted(unknown)}; the tasks are {', '.join(TASKS)}")
        self.balancer: LossBalancer = create_balancer(balancing, list(TASKS))
        self._grids: dict[tuple[int, int, str], Grid] = {}

    def grid(self, image: torch.Tensor) -> Grid:
        """The locations of ``image``'s size (computed once per size and device)."""
        key = (image.shape[-2], image.shape[-1], str(image.device))
        if key not in self._grids:
            c, s = anchor_points(key[0], key[1], self.strides, self.anchors)
            lo = torch.tensor([LEVEL_RANGES[int(v)][0] for v in s.tolist()])
            hi = torch.tensor([LEVEL_RANGES[int(v)][1] for v in s.tolist()])
            self._grids[key] = Grid(*(t.to(image.device) for t in (c, s, lo, hi)))
        return self._grids[key]

    def assign(self, batch: SceneBatch) -> Assignment:
        return Assignment(batch, self.grid(batch["image"]))

    def label_counts(self, batch: SceneBatch, assignment: Assignment | None = None) -> torch.Tensor:
        """Positives for score and box, positives with landmarks: the denominators of each task."""
        a = assignment or self.assign(batch)
        lm = torch.gather(batch["landmark_mask"], 1, a.face.clamp(min=0)) & a.positive
        n = a.positive.sum().double()
        return torch.stack([n, n, lm.sum().double()])

    def task_losses(
        self,
        raw: torch.Tensor,
        batch: SceneBatch,
        counts: torch.Tensor | None = None,
        assignment: Assignment | None = None,
    ) -> dict[str, torch.Tensor]:
        """Each task's masked mean loss; ``assignment``: the batch's, when already computed."""
        grid = self.grid(batch["image"])
        a = assignment or Assignment(batch, grid)
        pred = decode_raw(raw, grid.centres, grid.strides)
        idx = a.face.clamp(min=0)
        gt_boxes = torch.gather(batch["boxes"], 1, idx[..., None].expand(-1, -1, 4))
        gt_pts = torch.gather(batch["landmarks"], 1, idx[..., None, None].expand(-1, -1, 5, 2))
        has_lm = torch.gather(batch["landmark_mask"], 1, idx) & a.positive
        pos = a.positive
        iou, giou = box_iou_pairs(pred["boxes"], gt_boxes)
        n_pos = pos.sum().clamp(min=1).float() if counts is None else counts[0].float().clamp(min=1)
        n_lm = has_lm.sum().clamp(min=1).float() if counts is None else counts[2].float().clamp(min=1)
        target = torch.where(pos, iou.detach().clamp(min=0.0), torch.zeros_like(iou))
        logits = pred["logits"]
        qfl = F.binary_cross_entropy_with_logits(logits, target, reduction="none") * (logits.sigmoid() - target).pow(2)
        score = (qfl * (~a.ignored).float()).sum() / n_pos
        box = ((1 - giou) * pos.float()).sum() / n_pos
        side = (gt_boxes[..., 2:] - gt_boxes[..., :2]).clamp(min=1.0).prod(-1).sqrt()
        err = (pred["landmarks"] - gt_pts).abs().mean((-1, -2)) / side
        landmarks = (err * has_lm.float()).sum() / n_lm
        return {"score": score, "box": box, "landmarks": landmarks}

    def forward(self, raw: torch.Tensor, batch: SceneBatch, counts: torch.Tensor | None = None) -> LossOutput:
        losses = self.task_losses(raw, batch, counts)
        total = self.balancer(losses, self.weights)
        return LossOutput(total, {k: v.detach() for k, v in losses.items()})
