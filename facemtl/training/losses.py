"""Multi-task loss: landmark regression + λ-weighted auxiliary cross-entropies, with masks.

A sample without a task's label (attribute ``-1``, or ``landmark_mask`` False) contributes
nothing to that task's loss, so that task's head gets no gradient from it — but the sample still
trains the shared trunk through every task it *does* have. Each task's loss is a mean over the
samples that carry its label; a batch with none gives exactly 0 for that task.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from facemtl.core.tasks import MTFL5, LandmarkSpec, TaskSet, ordinal_targets
from facemtl.core.types import FaceBatch, NetOutputs
from facemtl.training.balancing import LossBalancer, create_balancer


def l2_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-sample mean squared error over all coordinates (TCDCN's objective)."""
    return ((pred - target) ** 2).flatten(1).mean(1)


def l1_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (pred - target).abs().flatten(1).mean(1)


def wing_loss(
    pred: torch.Tensor, target: torch.Tensor, w: float = 10.0, eps: float = 2.0, unit: float = 32.0
) -> torch.Tensor:
    """Wing loss (Feng et al., CVPR 2018), per sample. ``unit`` converts the unit-crop
    coordinates to pixels of a 64-px crop, the scale ``w`` and ``eps`` were designed for."""
    x = (pred - target).abs() * unit
    c = w - w * math.log(1 + w / eps)
    loss = torch.where(x < w, w * torch.log1p(x / eps), x - c)
    return loss.flatten(1).mean(1)


#: Inter-ocular distance of a frontal face in unit crop coordinates under the 2.2× crop rule.
TYPICAL_IOD = 0.8

LANDMARK_LOSSES = {"l2": l2_loss, "l1": l1_loss, "wing": wing_loss}


def masked_mean(values: torch.Tensor, mask: torch.Tensor, count: torch.Tensor | float | None = None) -> torch.Tensor:
    """Mean of ``values`` where ``mask``; 0 (still in the graph) where no sample has the label.

    ``count`` replaces the local number of labelled samples as the denominator: a process
    holding one shard of a global batch passes (global count / number of processes), so the
    average of the shards' losses equals the loss of the whole batch.
    """
    m = mask.to(values.dtype)
    return (values * m).sum() / (m.sum().clamp(min=1.0) if count is None else count)


@dataclass
class LossOutput:
    """The scalar to minimise plus each task's unweighted loss (for logging and early stopping)."""

    total: torch.Tensor
    per_task: dict[str, torch.Tensor] = field(default_factory=dict)


class TaskLoss(nn.Module):
    """What the training loop needs of a model family's multi-task loss: λ per task
    (``weights``, changeable while training), the :mod:`~facemtl.training.balancing` strategy, how many
    samples of a batch carry each task's label (for means over a distributed batch), and
    ``(outputs, batch, counts) → LossOutput``."""

    weights: dict[str, float]
    balancer: LossBalancer

    def label_counts(self, batch: Any) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, outputs: Any, batch: Any, counts: torch.Tensor | None = None) -> LossOutput:
        raise NotImplementedError


class MultiTaskLoss(TaskLoss):
    """``λ_lm · L_landmarks + Σ_t λ_t · CE_t`` with per-sample masks, combined by a
    :mod:`~facemtl.training.balancing` strategy (``fixed`` is exactly the sum above).

    ``landmark_norm="iod"`` measures landmark errors in units of each face's inter-ocular distance.
    A face annotated with only the five MTFL points (``landmark_five``) training a model of more
    points is compared with the model's five derived points (:meth:`LandmarkSpec.mtfl5`: eye
    centres are means of the eye contours), so it trains every point that enters them.

    ``weights`` (task → λ) start from the :class:`TaskSet` and may be changed while training
    (e.g. set to 0 when a task is stopped early).
    """

    def __init__(
        self, tasks: TaskSet, landmark_loss: str = "l2", landmark_norm: str = "none", balancing: str = "fixed"
    ):
        super().__init__()
        if landmark_loss not in LANDMARK_LOSSES:
            raise ValueError(f"landmark_loss must be one of {sorted(LANDMARK_LOSSES)}, got {landmark_loss!r}")
        if landmark_norm not in ("none", "iod"):
            raise ValueError(f"landmark_norm must be 'none' or 'iod', got {landmark_norm!r}")
        self.tasks = tasks
        self.landmark_loss = LANDMARK_LOSSES[landmark_loss]
        self.landmark_norm = landmark_norm
        self.weights = {"landmarks": tasks.landmark_weight} | {t.name: t.weight for t in tasks.attributes}
        self.balancer: LossBalancer = create_balancer(balancing, list(self.weights))

    def label_counts(self, batch: FaceBatch) -> torch.Tensor:
        """How many samples of ``batch`` carry each task's label, in :attr:`weights` order."""
        lm = batch["landmark_mask"].sum()[None]
        return torch.cat([lm, (batch["attributes"] >= 0).sum(0)]).to(torch.float64)

    def task_losses(
        self, outputs: NetOutputs, batch: FaceBatch, counts: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Each task's masked mean loss, unweighted; ``counts`` as in :func:`masked_mean`."""
        c = [None] * (1 + len(self.tasks.attributes)) if counts is None else counts.tolist()
        spec = self.tasks.landmarks
        lm = self._landmark_loss(outputs["landmarks"], batch["landmarks"], spec)
        five = batch.get("landmark_five")
        if spec.to_mtfl5 is not None and five is not None and bool(five.any()):
            lm5 = self._landmark_loss(spec.mtfl5(outputs["landmarks"]), batch["landmarks"][:, :5], MTFL5)
            lm = torch.where(five, lm5, lm)
        losses = {"landmarks": masked_mean(lm, batch["landmark_mask"], c[0])}
        labels = batch["attributes"]
        for j, task in enumerate(self.tasks.attributes):
            y = labels[:, j]
            present = y >= 0
            logits = outputs["attributes"][task.name]
            if task.values is not None:  # an ordered task: the label spread over its neighbours
                soft = self._ordinal(task.num_classes, logits)[y.clamp(min=0)]
                ce = -(soft * F.log_softmax(logits, -1)).sum(-1)
            else:
                ce = F.cross_entropy(logits, y.clamp(min=0), reduction="none")
            losses[task.name] = masked_mean(ce, present, c[1 + j])
        return losses

    @staticmethod
    def _ordinal(num_classes: int, like: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(ordinal_targets(num_classes), dtype=like.dtype, device=like.device)

    def _landmark_loss(self, pred: torch.Tensor, target: torch.Tensor, spec: LandmarkSpec) -> torch.Tensor:
        """Per-sample landmark loss of ``(B, K, 2)`` points in ``spec``'s markup."""
        if self.landmark_norm == "iod":
            # Errors in units of each face's inter-ocular distance, as the metric counts them
            # (rescaled to a typical frontal face; clamped so near-profiles cannot dominate).
            g = spec.iod_groups
            iod = (target[:, list(g[0])].mean(1) - target[:, list(g[1])].mean(1)).norm(dim=1)
            scale = (TYPICAL_IOD / iod.clamp(min=1e-6)).clamp(0.5, 4.0).detach()[:, None, None]
            pred, target = pred * scale, target * scale
        return self.landmark_loss(pred, target)

    def forward(self, outputs: NetOutputs, batch: FaceBatch, counts: torch.Tensor | None = None) -> LossOutput:
        losses = self.task_losses(outputs, batch, counts)
        total = self.balancer(losses, self.weights)
        return LossOutput(total, {k: v.detach() for k, v in losses.items()})
