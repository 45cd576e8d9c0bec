"""Loss balancing: how per-task losses become the one scalar that training minimises.

Three strategies, chosen by ``TrainConfig.balancing``:

- ``fixed`` (default, TCDCN): ``Σ_t λ_t L_t`` with hand-set λ.
- ``uncertainty`` (Kendall, Gal & Cipolla, CVPR 2018): each task gets a learned log-variance
  ``s_t`` and contributes ``exp(-s_t) L_t + s_t``. The optimum is ``exp(-s_t) = 1 / L_t``, so a
  task whose loss stays high (noisy, or unlearnable) is automatically weighted down.
- ``dwa`` (dynamic weight averaging, Liu, Johns & Davison, CVPR 2019): weights follow each
  task's rate of descent over the last two epochs — a task whose loss has stalled gets more weight.
  Gradient-free and parameter-free, so it costs nothing per step.

λ still multiplies every strategy's per-task term, so λ = 0 (a task stopped early, or excluded)
removes a task under any strategy. Every balancer is linear in each task's loss for fixed
weights, which is what lets distributed training split a batch across processes exactly.
"""

from __future__ import annotations

import math
from typing import cast

import torch
from torch import nn

from facemtl.training.config import BALANCING

STRATEGIES = BALANCING  # declared with the recipe, which must not import torch


class LossBalancer(nn.Module):
    """Combines unweighted per-task losses (and each task's λ) into the training objective."""

    def __init__(self, task_names: list[str]):
        super().__init__()
        self.task_names = list(task_names)

    def forward(self, losses: dict[str, torch.Tensor], lambdas: dict[str, float]) -> torch.Tensor:
        w = self.task_weights()
        return cast(torch.Tensor, sum(lambdas[t] * w[t] * losses[t] for t in self.task_names))

    def task_weights(self) -> dict[str, float]:
        """Each task's current multiplier on top of λ (logged every epoch)."""
        return dict.fromkeys(self.task_names, 1.0)

    def end_epoch(self, train_losses: dict[str, float]) -> None:
        """Called once per epoch with each task's mean training loss."""


class FixedWeights(LossBalancer):
    """TCDCN: ``Σ λ_t L_t``."""


class UncertaintyWeights(LossBalancer):
    """Kendall et al. 2018, in the common ``exp(-s) L + s`` form (s = log σ², learned)."""

    def __init__(self, task_names: list[str]):
        super().__init__(task_names)
        self.log_vars = nn.Parameter(torch.zeros(len(self.task_names)))

    def forward(self, losses: dict[str, torch.Tensor], lambdas: dict[str, float]) -> torch.Tensor:
        terms = [
            lambdas[t] * (torch.exp(-self.log_vars[i]) * losses[t] + self.log_vars[i])
            for i, t in enumerate(self.task_names)
        ]
        return cast(torch.Tensor, sum(terms))

    def task_weights(self) -> dict[str, float]:
        w = torch.exp(-self.log_vars.detach()).tolist()
        return dict(zip(self.task_names, w, strict=True))


class DynamicWeightAverage(LossBalancer):
    """Liu et al. 2019: ``w_t = K softmax_t(r_t / T)`` with ``r_t = L_t(e-1) / L_t(e-2)``;
    all weights are 1 for the first two epochs."""

    def __init__(self, task_names: list[str], temperature: float = 2.0):
        super().__init__(task_names)
        self.temperature = temperature
        self.recent: list[dict[str, float]] = []  # the last two epochs' mean training losses
        self.weights = dict.fromkeys(self.task_names, 1.0)

    def task_weights(self) -> dict[str, float]:
        return dict(self.weights)

    def end_epoch(self, train_losses: dict[str, float]) -> None:
        self.recent = (self.recent + [{t: float(train_losses[t]) for t in self.task_names}])[-2:]
        if len(self.recent) < 2:
            return
        prev, last = self.recent
        r = {t: last[t] / max(prev[t], 1e-12) for t in self.task_names}
        e = {t: math.exp(r[t] / self.temperature) for t in self.task_names}
        z = sum(e.values())
        self.weights = {t: len(self.task_names) * e[t] / z for t in self.task_names}

    def get_extra_state(self) -> dict:
        return {"recent": self.recent, "weights": self.weights}

    def set_extra_state(self, state: dict) -> None:
        self.recent = [dict(r) for r in state["recent"]]
        self.weights = dict(state["weights"])


def create_balancer(strategy: str, task_names: list[str]) -> LossBalancer:
    if strategy == "fixed":
        return FixedWeights(task_names)
    if strategy == "uncertainty":
        return UncertaintyWeights(task_names)
    if strategy == "dwa":
        return DynamicWeightAverage(task_names)
    raise ValueError(f"balancing must be one of {', '.join(STRATEGIES)}; got {strategy!r}")
