"""What a model family brings to the one training loop (:class:`facemtl.training.engine.Trainer`).

The loop — batches, LR schedule, mixed precision, DDP, checkpoints and ``--resume``, the run
folder — is the same for every model. A *job* supplies the rest: the model and its multi-task
loss, the training and validation data, how validation is scored (lower is better), and any
state of its own that a checkpoint must carry (e.g. which auxiliary tasks were stopped early).
The model's registry entry decides the job: landmark + attribute nets, or the face detector.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import numpy as np
import torch

from facemtl.data.sampling import EpochDataset
from facemtl.models import DetectorConfig, FaceDetectorNet, ModelConfig, MultiTaskNet, get_config
from facemtl.models.weights import init_from
from facemtl.training.config import TrainConfig
from facemtl.training.losses import TaskLoss


@dataclass
class TrainData:
    """A job's data: datasets with ``set_epoch``, per-item draw probabilities (``None`` =
    shuffle), a one-line description of the sources for the log ("" = none)."""

    train: EpochDataset
    val: EpochDataset | None
    probabilities: np.ndarray | None = None
    summary: str = ""
    sources: np.ndarray | None = None  # per training item, the index of its source in ``cfg.train``


@dataclass
class Validation:
    """``metric``: what picks the best epoch (lower is better); ``record``: what the history keeps;
    ``task_losses``: each task's validation loss (early stopping reads them)."""

    metric: float
    record: dict[str, Any]
    task_losses: dict[str, float] = field(default_factory=dict)


class Job(Protocol):
    @property
    def model(self) -> MultiTaskNet | FaceDetectorNet: ...
    @property
    def loss(self) -> TaskLoss: ...
    @property
    def metric_name(self) -> str: ...

    def prepare_data(self, progress: bool) -> TrainData: ...
    def validate(self, data: Any, model: Any = None) -> Validation: ...
    def end_epoch(self, epoch: int, validation: Validation | None) -> dict[str, Any]: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: dict[str, Any]) -> None: ...
    def describe(self) -> str: ...
    def summary(self, record: dict[str, Any]) -> str: ...


Config = TypeVar("Config", ModelConfig, DetectorConfig)


class RecipeError(ValueError):
    """A recipe value that only the built model can check (e.g. a ``freeze`` part it lacks);
    the command line names the recipe file it came from."""


def recipe_model_config(cfg: TrainConfig, kind: type[Config]) -> Config:
    """The recipe's model config: the registry preset with ``model_overrides`` applied, of ``kind``
    (an unknown field or a bad value is a :class:`RecipeError` naming it)."""
    try:
        base = get_config(cfg.model).with_overrides(**cfg.model_overrides)
    except (TypeError, ValueError) as e:
        raise RecipeError(f"model_overrides: {e}") from None
    if not isinstance(base, kind):
        raise ValueError(f"{cfg.model}: a {base.kind} model, not a {kind.__name__}")
    return base


def start_from(model: torch.nn.Module, init: str) -> str:
    """Copy the tensors of ``init`` (weights to fine-tune from; "" = none) that fit ``model``;
    returns what the run log says about it ("" when nothing was copied)."""
    if not init:
        return ""
    return "; " + init_from(model, init).describe(init)


def freeze(model: torch.nn.Module, parts: tuple[str, ...]) -> str:
    """Hold the named submodules (``trunk``, ``heads.landmarks``, ...) fixed: no gradients, and
    :func:`keep_frozen_eval` keeps their batch-norm statistics. An unknown name is an error listing
    the model's parts. Returns what the run log says about it ("" when nothing is frozen)."""
    names = dict(model.named_modules())
    for part in parts:
        if part not in names or not part:
            tops = ", ".join(n for n in names if n and n.count(".") <= 1)
            raise RecipeError(f"freeze: the model has no part {part!r}; its parts: {tops}")
        names[part].requires_grad_(False)
    return f"; frozen: {', '.join(parts)}" if parts else ""


def keep_frozen_eval(model: torch.nn.Module) -> None:
    """After ``model.train()``: batch-norm layers with nothing to train keep their running
    statistics (in train mode they would drift to the new data and move a frozen part's output)."""
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and not any(p.requires_grad for p in m.parameters()):
            m.eval()


def create_job(cfg: TrainConfig) -> Job:
    """The job for the recipe's model (landmarks + attributes, or the face detector)."""
    if get_config(cfg.model).kind == "detector":
        from facemtl.training.jobs.detector import DetectorJob

        return DetectorJob(cfg)
    from facemtl.training.jobs.landmarks import LandmarkJob

    return LandmarkJob(cfg)
