"""The multi-task network: a shared trunk (conv backbone + one FC feature) and one head per task.

This is hard parameter sharing as in TCDCN: every parameter outside ``heads`` is shared by all
tasks, and each head sees only its own loss.
"""

from __future__ import annotations

import torch
from torch import nn

from facemtl.models.config import ModelConfig


def _conv_stack(cfg: ModelConfig) -> tuple[nn.Sequential, int]:
    layers: list[nn.Module] = []
    ch, size = cfg.channels, cfg.input_size
    for c in cfg.convs:
        pad = c.kernel // 2 if c.padding == "same" else 0
        layers.append(nn.Conv2d(ch, c.out, c.kernel, c.stride, pad, bias=not cfg.batch_norm))
        if cfg.batch_norm:
            layers.append(nn.BatchNorm2d(c.out))
        layers.append(nn.ReLU(inplace=True))
        size = (size + 2 * pad - c.kernel) // c.stride + 1
        if c.pool:
            layers.append(nn.MaxPool2d(2))
            size //= 2
        if size < 1:
            raise ValueError(f"{cfg.name}: input {cfg.input_size} px shrinks to nothing at conv {c}")
        ch = c.out
    return nn.Sequential(*layers), ch * size * size


class SharedTrunk(nn.Module):
    """Conv backbone + fully connected shared feature (TCDCN's shared representation)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.convs, flat = _conv_stack(cfg)
        self.fc = nn.Sequential(
            nn.Flatten(), nn.Linear(flat, cfg.feature_dim), nn.ReLU(inplace=True), nn.Dropout(cfg.dropout)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.convs(x))


class MultiTaskNet(nn.Module):
    """Image crops ``(B, C, S, S)`` → ``{"landmarks": (B, K, 2) in unit crop coordinates,
    "attributes": {task: logits (B, classes)}}``."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.config = cfg
        self.trunk = SharedTrunk(cfg)
        k = cfg.tasks.landmarks.num_points
        self.heads = nn.ModuleDict({"landmarks": nn.Linear(cfg.feature_dim, 2 * k)})
        for task in cfg.tasks.attributes:
            self.heads[task.name] = nn.Linear(cfg.feature_dim, task.num_classes)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor | dict[str, torch.Tensor]]:
        f = self.trunk(x)
        lm = self.heads["landmarks"](f).view(x.shape[0], -1, 2)
        attrs = {t.name: self.heads[t.name](f) for t in self.config.tasks.attributes}
        return {"landmarks": lm, "attributes": attrs}

    def shared_parameters(self) -> list[nn.Parameter]:
        return list(self.trunk.parameters())

    def task_parameters(self, task: str) -> list[nn.Parameter]:
        return list(self.heads[task].parameters())
