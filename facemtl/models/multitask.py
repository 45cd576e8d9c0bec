"""The multi-task network: a trunk (conv backbone + task features) and one head per task.

Two sharing strategies, chosen by ``ModelConfig.trunk``:

- ``shared`` — hard parameter sharing as in TCDCN: every parameter outside ``heads`` is shared by
  all tasks, and each head sees only its own loss.
- ``mmoe`` — Multi-gate Mixture-of-Experts (Ma et al., KDD 2018): the conv backbone is shared,
  then N expert FC layers; each task mixes the experts with its own softmax gate, so tasks that
  conflict can draw on different experts.
"""

from __future__ import annotations

import torch
from torch import nn

from facemtl.core.types import NetOutputs
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


def _feature(flat: int, cfg: ModelConfig) -> nn.Sequential:
    if not cfg.feature_norm:
        return nn.Sequential(nn.Linear(flat, cfg.feature_dim), nn.ReLU(inplace=True), nn.Dropout(cfg.dropout))
    return nn.Sequential(
        nn.Linear(flat, cfg.feature_dim, bias=False),
        nn.BatchNorm1d(cfg.feature_dim),
        nn.ReLU(inplace=True),
        nn.Dropout(cfg.dropout),
    )


class SharedTrunk(nn.Module):
    """Conv backbone + fully connected shared feature (TCDCN's shared representation)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.task_names = ["landmarks", *cfg.tasks.attribute_names]
        self.convs, flat = _conv_stack(cfg)
        self.fc = nn.Sequential(nn.Flatten(), *_feature(flat, cfg))

    def forward(self, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Per-task features (here all the same tensor) and gate weights (none)."""
        f = self.fc(self.convs(x))
        return dict.fromkeys(self.task_names, f), {}


class MMoETrunk(nn.Module):
    """Shared conv backbone, ``cfg.experts`` FC experts, one softmax gate per task."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if cfg.experts < 1:
            raise ValueError(f"{cfg.name}: an MMoE trunk needs at least one expert, got {cfg.experts}")
        self.task_names = ["landmarks", *cfg.tasks.attribute_names]
        self.convs, flat = _conv_stack(cfg)
        self.experts = nn.ModuleList(_feature(flat, cfg) for _ in range(cfg.experts))
        self.gates = nn.ModuleDict({t: nn.Linear(flat, cfg.experts) for t in self.task_names})

    def forward(self, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Per-task mixtures of the experts and each task's gate weights ``(B, experts)``."""
        h = self.convs(x).flatten(1)
        e = torch.stack([expert(h) for expert in self.experts], 1)  # (B, E, D)
        gates = {t: torch.softmax(g(h), 1) for t, g in self.gates.items()}
        return {t: (g[:, :, None] * e).sum(1) for t, g in gates.items()}, gates


TRUNKS = {"shared": SharedTrunk, "mmoe": MMoETrunk}


class MultiTaskNet(nn.Module):
    """Image crops ``(B, C, S, S)`` → ``{"landmarks": (B, K, 2) in unit crop coordinates,
    "attributes": {task: logits (B, classes)}, "gates": {task: (B, experts)} (MMoE only)}``."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if cfg.trunk not in TRUNKS:
            raise ValueError(f"{cfg.name}: trunk must be one of {', '.join(TRUNKS)}; got {cfg.trunk!r}")
        self.config = cfg
        self.trunk = TRUNKS[cfg.trunk](cfg)
        k = cfg.tasks.landmarks.num_points
        self.heads = nn.ModuleDict({"landmarks": nn.Linear(cfg.feature_dim, 2 * k)})
        for task in cfg.tasks.attributes:
            self.heads[task.name] = nn.Linear(cfg.feature_dim, task.num_classes)

    def forward(self, x: torch.Tensor) -> NetOutputs:
        f, gates = self.trunk(x)
        lm = self.heads["landmarks"](f["landmarks"]).view(x.shape[0], -1, 2)
        attrs = {t.name: self.heads[t.name](f[t.name]) for t in self.config.tasks.attributes}
        for name, t in self.config.temperatures.items():  # calibrated probabilities; the arg-max is unchanged
            attrs[name] = attrs[name] / t
        out: NetOutputs = {"landmarks": lm, "attributes": attrs}
        if gates:
            out["gates"] = gates
        return out

    def shared_parameters(self) -> list[nn.Parameter]:
        return list(self.trunk.parameters())

    def task_parameters(self, task: str) -> list[nn.Parameter]:
        return list(self.heads[task].parameters())
