"""What a training run leaves in its folder, every file written atomically so a run killed at any
moment leaves the previous complete file: ``last.ckpt`` (to ``--resume``), ``best.safetensors``
with its model card, and ``history.json`` (one record per epoch)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from facemtl.config import TrainConfig
from facemtl.models import FaceDetectorNet, MultiTaskNet
from facemtl.weights import atomic_write, save_model

CHECKPOINT = "last.ckpt"
BEST = "best.safetensors"
HISTORY = "history.json"

#: Execution choices that may change between a run and its resumption.
EXECUTION_FIELDS = ("workers", "threads", "cache")


class RunFolder:
    """A run's folder. Only the process that ``writes`` (rank 0 under DDP) touches the disk; every
    process reads the same checkpoint to resume."""

    def __init__(self, path: str | Path, *, writes: bool = True):
        self.path = Path(path)
        self.writes = writes

    @property
    def checkpoint(self) -> Path:
        return self.path / CHECKPOINT

    @property
    def best(self) -> Path:
        return self.path / BEST

    def create(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)

    def save_checkpoint(self, state: dict[str, Any]) -> None:
        if self.writes:
            atomic_write(self.checkpoint, lambda tmp: torch.save(state, tmp))

    def load_checkpoint(self, cfg: TrainConfig, device: torch.device, path: str | Path | None = None) -> dict[str, Any]:
        """A checkpoint's state, refused when it was trained by another recipe (execution fields aside)."""
        path = Path(path) if path else self.checkpoint
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no checkpoint to resume from")
        state = torch.load(path, map_location=device, weights_only=True)  # no code is unpickled
        saved = TrainConfig.from_dict(state["config"]).to_dict()  # fields added since take their defaults
        now = cfg.to_dict()
        diff = sorted(k for k in saved if saved[k] != now[k] and k not in EXECUTION_FIELDS)
        if diff:
            raise ValueError(f"{path}: checkpoint was trained with a different config (differs in {diff})")
        return state

    def save_best(self, model: MultiTaskNet | FaceDetectorNet, card: dict[str, Any]) -> None:
        if self.writes:
            save_model(model, self.best, card)

    def write_history(self, history: list[dict[str, Any]]) -> None:
        if self.writes:
            text = json.dumps(history, indent=1)
            atomic_write(self.path / HISTORY, lambda tmp: Path(tmp).write_text(text))
