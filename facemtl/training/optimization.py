"""How one training step updates the weights: AdamW on a warm-up + cosine schedule, AMP loss
scaling, and an optional moving average of the weights — apart from the loop that feeds it batches
(:mod:`facemtl.training.engine`), so every model's job shares one update rule and one checkpoint layout."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from facemtl.training import distributed
from facemtl.training.config import TrainConfig


def lr_at(step: int, total: int, warmup: int, base: float) -> float:
    """Linear warm-up, then cosine decay to 1 % of ``base``."""
    if step < warmup:
        return base * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return base * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * t)))


class Optimization:
    """The optimiser state of a run: AdamW over the model (and, without weight decay, any learned
    loss weights), the AMP gradient scaler, and with ``cfg.ema_decay`` a moving average of the
    weights and batch-norm statistics (torch's own :class:`AveragedModel`) — updated after every
    step on every process alike, so late-schedule jitter does not pick the epoch that is kept."""

    def __init__(self, model: nn.Module, loss: nn.Module, cfg: TrainConfig, *, amp: bool):
        self.cfg = cfg
        self.loss_parameters = list(loss.parameters())
        groups: list[dict[str, Any]] = [{"params": [p for p in model.parameters() if p.requires_grad]}]
        if self.loss_parameters:
            groups.append({"params": self.loss_parameters, "weight_decay": 0.0})
        self.optimizer = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.scaler = torch.amp.GradScaler("cuda", enabled=amp)
        self.average = (
            AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay), use_buffers=True)
            if cfg.ema_decay
            else None
        )

    def lr(self, step: int, steps_per_epoch: int) -> float:
        """The learning rate at global ``step`` of a run of ``cfg.epochs`` epochs."""
        warmup = int(self.cfg.warmup_epochs * steps_per_epoch)
        return lr_at(step, self.cfg.epochs * steps_per_epoch, warmup, self.cfg.lr)

    def step(self, total_loss: torch.Tensor, model: nn.Module, lr: float) -> None:
        """Back-propagate ``total_loss`` and update ``model`` (and its moving average) at ``lr``."""
        for g in self.optimizer.param_groups:
            g["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total_loss).backward()
        distributed.average_gradients(self.loss_parameters)  # DDP averages only the model's
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.average is not None:
            self.average.update_parameters(model)

    def scored(self, model: nn.Module) -> nn.Module:
        """The weights validation scores and a run keeps: the moving average, if any, else ``model``."""
        return self.average.module if self.average is not None else model

    def state_dict(self) -> dict[str, Any]:
        """The checkpoint entries (``ema`` is ``{}`` when no average is kept)."""
        return {
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "ema": self.average.state_dict() if self.average is not None else {},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        if "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])
        if self.average is not None:
            self.average.load_state_dict(state["ema"])
