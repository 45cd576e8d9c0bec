"""What a training run leaves in its folder, every file written atomically so a run killed at any
moment leaves the previous complete file: ``last.ckpt`` (to ``--resume``), ``best.safetensors``
with its model card, and ``history.json`` (one record per epoch)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from facemtl.core.files import atomic_write, named_os_error
from facemtl.models import FaceDetectorNet, MultiTaskNet
from facemtl.models.weights import save_model
from facemtl.training.config import TrainConfig

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

    @property
    def run_files(self) -> list[Path]:
        """The files of a run already in the folder (empty for a new run)."""
        return [
            p for p in (self.checkpoint, self.best, self.best.with_suffix(".json"), self.path / HISTORY) if p.exists()
        ]

    def create(self, *, resume: bool = False, overwrite: bool = False) -> None:
        """Make the folder, refusing to start a new run over an earlier one's files: ``resume``
        continues it, ``overwrite`` deletes them first (so a new run never mixes with an old one)."""
        if self.path.exists() and not self.path.is_dir():
            raise ValueError(f"{self.path}: is a file, not a run folder (choose another --out)")
        existing = self.run_files
        if existing and not resume:
            if not overwrite:
                names = ", ".join(p.name for p in existing)
                raise FileExistsError(
                    f"{self.path}: holds a training run ({names}); pass --resume to continue it or "
                    "--overwrite to start again (its files are replaced)"
                )
            if self.writes:
                for p in existing:
                    p.unlink()
        if self.writes:
            try:
                self.path.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise named_os_error(e, f"{self.path}: cannot make the run folder ({e.strerror or e})") from None

    def save_checkpoint(self, state: dict[str, Any]) -> None:
        if self.writes:
            atomic_write(self.checkpoint, lambda tmp: torch.save(state, tmp))

    def load_checkpoint(self, cfg: TrainConfig, device: torch.device, path: str | Path | None = None) -> dict[str, Any]:
        """A checkpoint's state, refused when it was trained by another recipe (execution fields aside)."""
        path = Path(path) if path else self.checkpoint
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no checkpoint to resume from")
        try:
            state = torch.load(path, map_location=device, weights_only=True)  # no code is unpickled
            saved = TrainConfig.from_dict(state["config"]).to_dict()  # fields added since take their defaults
        except Exception as e:  # noqa: BLE001  # zip, pickle and key errors of a truncated or foreign file alike
            raise ValueError(
                f"{path}: not a readable facemtl checkpoint ({type(e).__name__}: {str(e)[:200]}); a killed run leaves "
                "the previous complete one, so this file was cut or replaced: start again with --overwrite"
            ) from None
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
