"""The one training loop: seeded, resumable, with per-epoch validation and atomic checkpoints.

Every model trains here — the landmark + attribute nets and the face detector alike. What differs
between them (model, multi-task loss, data, how validation is scored) is a *job*
(:mod:`facemtl.training.jobs`); this module owns what does not: batches and their order, mixed precision,
DDP, checkpoints, ``--resume`` and the run folder. How a step updates the weights (optimiser,
learning-rate schedule, weight average) is :mod:`facemtl.training.optimization`.

Reproducibility: the data order, every augmentation and dropout are pure functions of
``(seed, epoch, sample index)``, so resuming from the checkpoint of epoch E replays exactly the
epochs an uninterrupted run would have trained.

Distributed (``torchrun``): every process computes the same global batches and trains on its
interleaved share of each (:mod:`facemtl.data.sampling`); each task's loss is divided by the
*global* count of its labels, so DDP's gradient average equals the gradient of the whole batch —
N processes reach the single-process weights, up to float summation order.
Only rank 0 writes; every rank resumes from the same checkpoint.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from facemtl.core.types import batch_to
from facemtl.data.sampling import epoch_order, global_batches, rank_batches
from facemtl.models import FaceDetectorNet, MultiTaskNet
from facemtl.training import distributed
from facemtl.training.config import TrainConfig
from facemtl.training.distributed import Dist
from facemtl.training.jobs import Job, create_job, keep_frozen_eval
from facemtl.training.optimization import Optimization
from facemtl.training.run_folder import RunFolder


def _silent(*_: Any) -> None:
    pass


def _to_float(outputs: Any) -> Any:
    """Mixed-precision outputs back to float32, so every loss is computed in full precision."""
    if isinstance(outputs, dict):
        return {k: _to_float(v) for k, v in outputs.items()}
    return outputs.float()


@dataclass
class TrainResult:
    best_epoch: int
    best_metric: float  # the job's validation metric (landmarks: NME %; detector: validation loss)
    history: list[dict[str, Any]]
    best_weights: Path
    #: What :attr:`best_metric` is: ``val`` + the job's metric, or the last epoch's training loss
    #: where there was no validation data (``val_fraction`` 0: the last epoch is kept).
    metric_name: str = "val metric"


class Trainer:
    """Trains a model by a :class:`TrainConfig`, writing everything into ``out_dir``.

    ``device``: ``auto`` (CUDA when present), ``cpu``, ``cuda`` or ``cuda:N``; ``dist``: this
    process's place in a ``torchrun`` job (default: read from the environment; the process group
    must already be initialised, see :func:`facemtl.training.distributed.init`).
    """

    def __init__(
        self,
        cfg: TrainConfig,
        out_dir: str | Path,
        *,
        device: str = "cpu",
        progress: bool | None = None,
        dist: Dist | None = None,
    ):
        self.cfg = cfg
        self.dist = dist or Dist.from_env()
        self.folder = RunFolder(out_dir, writes=self.dist.is_main)
        self.device = distributed.resolve_device(device, self.dist.local_rank)
        self.progress = progress if self.dist.is_main else False
        self.amp = cfg.amp and self.device.type == "cuda"
        self.channels_last = cfg.channels_last and self.device.type == "cuda"
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.job: Job = create_job(cfg)
        model = self.job.model
        if (
            self.dist.enabled
            and self.device.type == "cuda"
            and any(isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d) for m in model.modules())
        ):
            # Batch statistics over the global batch. PyTorch's SyncBatchNorm is GPU-only; on CPU
            # each process normalises by its own share of the batch (DDP keeps rank 0's buffers).
            # (converts the model's BN layers in place: its top module is never a BN layer)
            nn.SyncBatchNorm.convert_sync_batchnorm(model)
        model.to(self.device)  # in place, as nn.Module.to is
        self.model = model
        if self.channels_last:
            model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch's stubs omit it
        self.net = DistributedDataParallel(self.model) if self.dist.enabled else self.model
        self.loss = self.job.loss.to(self.device)
        self.optimization = Optimization(self.model, self.loss, cfg, amp=self.amp)
        self.epoch = 0
        self.history: list[dict[str, Any]] = []
        self.best = (float("inf"), -1)
        self._data_ready = False

    # -- data ---------------------------------------------------------------------------------
    def _prepare_data(self) -> None:
        data = self.job.prepare_data(self.progress is not False)
        self.train_data, self.val_data = data.train, data.val
        self.probabilities, self.mixture_summary, self.sources = data.probabilities, data.summary, data.sources
        self.steps_per_epoch = len(global_batches(range(len(self.train_data)), self.cfg.batch_size, self.dist.world))
        self._data_ready = True

    def _batches(self, epoch: int) -> tuple[list[list[int]], list[int]]:
        """This process's index lists for each global batch of ``epoch``, and the global sizes."""
        order = epoch_order(len(self.train_data), self.cfg.seed, epoch, self.probabilities)
        batches = global_batches(order, self.cfg.batch_size, self.dist.world)
        return rank_batches(batches, self.dist.rank, self.dist.world), [len(b) for b in batches]

    # -- checkpoints --------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        return (
            {
                "epoch": self.epoch,
                "model": self.model.state_dict(),
                "loss": self.loss.state_dict(),
                "loss_weights": dict(self.loss.weights),
                "best": list(self.best),
                "history": self.history,
                "config": self.cfg.to_dict(),
            }
            | self.optimization.state_dict()
            | self.job.state_dict()
        )

    def save_checkpoint(self) -> None:
        if self.folder.writes:
            self.folder.save_checkpoint(self._state())

    def load_checkpoint(self, path: str | Path | None = None) -> None:
        state = self.folder.load_checkpoint(self.cfg, self.device, path)
        self.model.load_state_dict(state["model"])
        self.optimization.load_state_dict(state)
        if "loss" in state:
            self.loss.load_state_dict(state["loss"])
        self.loss.weights = dict(state["loss_weights"])
        self.job.load_state_dict(state)
        self.best = (float(state["best"][0]), int(state["best"][1]))
        self.history = list(state["history"])
        self.epoch = int(state["epoch"])

    # -- training -----------------------------------------------------------------------------
    def train_epoch(self) -> tuple[dict[str, float], dict[str, list[float]]]:
        """One epoch; returns each task's mean training loss and (MMoE) each task's mean gates."""
        cfg, d = self.cfg, self.dist
        self.net.train()
        keep_frozen_eval(self.model)
        self.train_data.set_epoch(self.epoch)
        torch.manual_seed(cfg.seed * 1_000 + self.epoch + 1_000_003 * d.rank)  # dropout
        batches, sizes = self._batches(self.epoch)
        loader = DataLoader(
            self.train_data,
            batch_sampler=batches,
            num_workers=cfg.workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=False,
        )
        names = ["loss", *self.loss.weights]
        sums = torch.zeros(len(names), dtype=torch.float64)
        gate_sums: dict[str, torch.Tensor] = {}
        n = 0
        bar = tqdm(
            loader, desc=f"epoch {self.epoch + 1}/{cfg.epochs}", disable=self.progress is False or None, leave=False
        )
        for i, batch in enumerate(bar):
            batch = batch_to(batch, self.device)
            if self.channels_last:
                batch["image"] = batch["image"].contiguous(memory_format=torch.channels_last)
            counts = None
            if d.enabled:  # each task's loss over the global batch: divide by its global label count
                counts = distributed.all_reduce_sum(self.loss.label_counts(batch))
                counts = counts.clamp(min=1.0) / d.world
            with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
                outputs = self.net(batch["image"])
            outputs = _to_float(outputs) if self.amp else outputs
            out = self.loss(outputs, batch, counts)
            step = self.epoch * self.steps_per_epoch + i
            self.optimization.step(out.total, self.model, self.optimization.lr(step, self.steps_per_epoch))
            b = sizes[i]  # the loss is a mean over the global batch, on every process
            n += b
            values = [float(out.total.detach()), *(float(out.per_task[k]) for k in self.loss.weights)]
            sums += torch.tensor(values, dtype=torch.float64) * b
            gates = outputs.get("gates", {}) if isinstance(outputs, dict) else {}
            for name, g in gates.items():
                gate_sums[name] = gate_sums.get(name, 0.0) + g.detach().sum(0).double().cpu()
            bar.set_postfix(loss=f"{sums[0].item() / n:.4f}")
        sums = distributed.all_reduce_sum(sums) / (d.world * n)
        stats = dict(zip(names, sums.tolist(), strict=True))
        gates = {k: (distributed.all_reduce_sum(v) / n).tolist() for k, v in gate_sums.items()}
        return stats, gates

    def fit(
        self, *, resume: bool = False, overwrite: bool = False, card: dict[str, Any] | None = None, log=print
    ) -> TrainResult:
        """Train to ``cfg.epochs``. A folder holding an earlier run needs ``resume`` (continue it)
        or ``overwrite`` (start again)."""
        if not self.dist.is_main:
            log = _silent
        self.folder.create(resume=resume, overwrite=overwrite)
        if resume:
            self.load_checkpoint()
            log(f"resumed from {self.folder.checkpoint} after epoch {self.epoch}")
        if not self._data_ready:
            self._prepare_data()
        where = f" on {self.device}" + (f" × {self.dist.world} processes" if self.dist.enabled else "")
        log(
            f"training {self.cfg.model}{where} on {len(self.train_data)} items, validating on "
            f"{len(self.val_data) if self.val_data else 0}; {self.job.describe()}; balancing: {self.cfg.balancing}"
        )
        if self.mixture_summary:
            log(f"sources: {self.mixture_summary}")
        while self.epoch < self.cfg.epochs:
            t0 = time.perf_counter()
            train_stats, gates = self.train_epoch()
            record: dict[str, Any] = {"epoch": self.epoch + 1, "train": train_stats, "seconds": 0.0}
            if gates:
                record["train_gates"] = gates
            validation = self.job.validate(self.val_data, self.scored) if self.val_data is not None else None
            if validation is not None:
                record["val"] = validation.record
            record |= self.job.end_epoch(self.epoch, validation)
            metric = validation.metric if validation is not None else train_stats["loss"]
            record["lambda"] = dict(self.loss.weights)
            record["balance"] = self.loss.balancer.task_weights()  # the multipliers on λ this epoch
            self.loss.balancer.end_epoch(train_stats)
            record["seconds"] = time.perf_counter() - t0
            self.epoch += 1
            self.history.append(record)
            # without validation data nothing tells epochs apart: best.safetensors follows the last one
            if validation is None or metric < self.best[0]:
                self.best = (metric, self.epoch)
                self.folder.save_best(self.scored, self._card(card))
            self.save_checkpoint()
            self.folder.write_history(self.history)
            log(self._summary(record))
        # every rank finishes its collectives (and rank 0 its writes) before any returns, so none
        # tears the group down under a peer ("terminate called without an active exception")
        distributed.barrier()
        name = f"val {self.job.metric_name}" if self.val_data is not None else "training loss (no validation data)"
        return TrainResult(self.best[1], self.best[0], self.history, self.folder.best, name)

    @property
    def scored(self) -> MultiTaskNet | FaceDetectorNet:
        """The weights validation scores and best.safetensors holds: the moving average, if any."""
        return cast(MultiTaskNet | FaceDetectorNet, self.optimization.scored(self.model))

    def _card(self, extra: dict[str, Any] | None) -> dict[str, Any]:
        return {
            "training": {"config": self.cfg.to_dict(), "best_epoch": self.epoch},
            "pixel_convention": "0-based; the first pixel's centre is (0, 0)",
        } | (extra or {})

    def _summary(self, r: dict[str, Any]) -> str:
        s = f"epoch {r['epoch']:3d}/{self.cfg.epochs}  {r['seconds']:.0f}s  train loss {r['train']['loss']:.4f}"
        s += self.job.summary(r)
        if self.cfg.balancing != "fixed":
            s += "  weights " + " ".join(f"{k} {w:.2f}" for k, w in r["balance"].items())
        return s
