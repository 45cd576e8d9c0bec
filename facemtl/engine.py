"""Training loop: seeded, resumable, with per-epoch validation and atomic checkpoints.

Reproducibility: the data order, every augmentation and dropout are pure functions of
``(seed, epoch, sample index)``, so resuming from the checkpoint of epoch E replays exactly the
epochs an uninterrupted run would have trained.

Task-wise early stopping (after TCDCN, simplified): after each epoch, an auxiliary task whose
validation loss has not improved on its best for ``early_stop_patience`` epochs is stopped — its
λ becomes 0 for the rest of training, so it no longer shapes the shared layers.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from facemtl.config import TrainConfig
from facemtl.data.dataset import FaceDataset
from facemtl.data.mtfl import read_mtfl
from facemtl.data.samples import FaceSample
from facemtl.data.w300 import read_300w_folder
from facemtl.evaluation import evaluate
from facemtl.losses import MultiTaskLoss
from facemtl.models import MultiTaskNet, create_model, get_config
from facemtl.transforms import TrainAugment
from facemtl.weights import atomic_write, save_model

CHECKPOINT = "last.ckpt"
BEST = "best.safetensors"


def load_samples(cfg: TrainConfig) -> list[FaceSample]:
    samples: list[FaceSample] = []
    for spec in cfg.train:
        if spec.kind == "mtfl":
            samples += read_mtfl(spec.path)
        elif spec.kind == "300w":
            samples += read_300w_folder(spec.path, points=5)
        else:
            raise ValueError(f"unknown dataset kind {spec.kind!r} for {spec.path} (use 'mtfl' or '300w')")
    return samples[: cfg.limit] if cfg.limit else samples


def split_train_val(samples: list[FaceSample], fraction: float, seed: int) -> tuple[list[FaceSample], list[FaceSample]]:
    """A fixed random validation split of the training data (the test set is never touched)."""
    order = np.random.default_rng(seed).permutation(len(samples))
    n_val = int(round(len(samples) * fraction))
    return [samples[i] for i in order[n_val:]], [samples[i] for i in order[:n_val]]


def sample_weights(labels: np.ndarray, power: float) -> np.ndarray | None:
    """Per-sample weights ∝ (class frequency)^-power, for rebalancing e.g. head pose; ``None`` = uniform."""
    if power <= 0 or labels.size == 0 or (labels < 0).all():
        return None
    counts = np.bincount(labels[labels >= 0])
    w = np.ones(len(labels))
    has = labels >= 0
    w[has] = counts[labels[has]].astype(np.float64) ** -power
    w[~has] = np.median(w[has])
    return w / w.sum()


def epoch_order(n: int, seed: int, epoch: int, weights: np.ndarray | None) -> list[int]:
    rng = np.random.default_rng([seed, epoch, 7])
    if weights is None:
        return rng.permutation(n).tolist()
    return rng.choice(n, size=n, replace=True, p=weights).tolist()


def lr_at(step: int, total: int, warmup: int, base: float) -> float:
    """Linear warm-up, then cosine decay to 1 % of ``base``."""
    if step < warmup:
        return base * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return base * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * t)))


@dataclass
class TrainResult:
    best_epoch: int
    best_nme: float
    history: list[dict[str, Any]]
    best_weights: Path


class Trainer:
    """Trains a model by a :class:`TrainConfig`, writing everything into ``out_dir``."""

    def __init__(self, cfg: TrainConfig, out_dir: str | Path, *, device: str = "cpu", progress: bool | None = None):
        self.cfg = cfg
        self.out = Path(out_dir)
        self.device = torch.device(device)
        self.progress = progress
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        base = get_config(cfg.model).with_overrides(**cfg.model_overrides)
        tasks = base.tasks if cfg.tasks is None else base.tasks.subset(cfg.tasks)
        tasks = tasks.with_weights(cfg.task_weights)
        torch.manual_seed(cfg.seed)
        self.model: MultiTaskNet = create_model(base, tasks=tasks).to(self.device)
        self.loss = MultiTaskLoss(tasks, cfg.landmark_loss, cfg.landmark_norm)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.epoch = 0
        self.history: list[dict[str, Any]] = []
        self.best = (float("inf"), -1)
        self.task_state = {t.name: {"best": float("inf"), "since": 0, "stopped": None} for t in tasks.attributes}
        self._data_ready = False

    # -- data ---------------------------------------------------------------------------------
    def _prepare_data(self) -> None:
        cfg, mc = self.cfg, self.model.config
        train, val = split_train_val(load_samples(cfg), cfg.val_fraction, cfg.seed)
        show = self.progress is not False
        augment = TrainAugment(mc.tasks, mc.input_size, cfg.augment)
        self.train_data = FaceDataset.for_model(train, mc, augment=augment, seed=cfg.seed, progress=show)
        self.val_data = FaceDataset.for_model(val, mc, progress=show) if val else None
        pose = mc.tasks.attribute_names.index("pose") if "pose" in mc.tasks.attribute_names else None
        labels = self.train_data.attributes[:, pose] if pose is not None else np.empty(0, np.int64)
        self.weights = sample_weights(labels, cfg.pose_balance)
        self.steps_per_epoch = math.ceil(len(self.train_data) / cfg.batch_size)
        self._data_ready = True

    # -- checkpoints --------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "loss_weights": dict(self.loss.weights),
            "task_state": self.task_state,
            "best": list(self.best),
            "history": self.history,
            "config": self.cfg.to_dict(),
        }

    def save_checkpoint(self) -> None:
        state = self._state()
        atomic_write(self.out / CHECKPOINT, lambda tmp: torch.save(state, tmp))

    def load_checkpoint(self, path: str | Path | None = None) -> None:
        path = Path(path) if path else self.out / CHECKPOINT
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no checkpoint to resume from")
        state = torch.load(path, map_location=self.device, weights_only=True)  # no code is unpickled
        saved = TrainConfig.from_dict(state["config"]).to_dict()  # fields added since take their defaults
        if saved != self.cfg.to_dict():
            diff = sorted(k for k in saved if saved[k] != self.cfg.to_dict()[k])
            raise ValueError(f"{path}: checkpoint was trained with a different config (differs in {diff})")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.loss.weights = dict(state["loss_weights"])
        self.task_state = state["task_state"]
        self.best = (float(state["best"][0]), int(state["best"][1]))
        self.history = list(state["history"])
        self.epoch = int(state["epoch"])

    # -- training -----------------------------------------------------------------------------
    def train_epoch(self) -> dict[str, float]:
        cfg = self.cfg
        self.model.train()
        self.train_data.set_epoch(self.epoch)
        torch.manual_seed(cfg.seed * 1_000 + self.epoch)  # dropout
        order = epoch_order(len(self.train_data), cfg.seed, self.epoch, self.weights)
        loader = DataLoader(
            self.train_data,
            batch_size=cfg.batch_size,
            sampler=order,
            num_workers=cfg.workers,
            pin_memory=self.device.type == "cuda",
            drop_last=False,
        )
        total_steps = cfg.epochs * self.steps_per_epoch
        warmup = int(cfg.warmup_epochs * self.steps_per_epoch)
        sums: dict[str, float] = {}
        n = 0
        bar = tqdm(
            loader, desc=f"epoch {self.epoch + 1}/{cfg.epochs}", disable=self.progress is False or None, leave=False
        )
        for i, batch in enumerate(bar):
            step = self.epoch * self.steps_per_epoch + i
            for g in self.optimizer.param_groups:
                g["lr"] = lr_at(step, total_steps, warmup, cfg.lr)
            batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
            out = self.loss(self.model(batch["image"]), batch)
            self.optimizer.zero_grad(set_to_none=True)
            out.total.backward()
            self.optimizer.step()
            b = len(batch["image"])
            n += b
            sums["loss"] = sums.get("loss", 0.0) + float(out.total.detach()) * b
            for k, v in out.per_task.items():
                sums[k] = sums.get(k, 0.0) + float(v) * b
            bar.set_postfix(loss=f"{sums['loss'] / n:.4f}")
        return {k: v / n for k, v in sums.items()}

    def _early_stop(self, val_losses: dict[str, float]) -> list[str]:
        stopped = []
        patience = self.cfg.early_stop_patience
        if patience <= 0:
            return stopped
        for name, st in self.task_state.items():
            if st["stopped"] is not None or self.loss.weights[name] == 0:
                continue
            v = val_losses[name]
            if v < st["best"] - 1e-4:
                st["best"], st["since"] = v, 0
            else:
                st["since"] += 1
                if st["since"] >= patience:
                    st["stopped"] = self.epoch
                    self.loss.weights[name] = 0.0
                    stopped.append(name)
        return stopped

    def fit(self, *, resume: bool = False, card: dict[str, Any] | None = None, log=print) -> TrainResult:
        self.out.mkdir(parents=True, exist_ok=True)
        if resume:
            self.load_checkpoint()
            log(f"resumed from {self.out / CHECKPOINT} after epoch {self.epoch}")
        if not self._data_ready:
            self._prepare_data()
        log(
            f"training {self.cfg.model} on {len(self.train_data)} faces, validating on "
            f"{len(self.val_data) if self.val_data else 0}; tasks: landmarks + {', '.join(self.loss.tasks.attribute_names) or 'none'}"
        )
        while self.epoch < self.cfg.epochs:
            t0 = time.perf_counter()
            train_stats = self.train_epoch()
            record: dict[str, Any] = {"epoch": self.epoch + 1, "train": train_stats, "seconds": 0.0}
            if self.val_data is not None:
                rep = evaluate(self.model, self.val_data)
                record["val"] = rep.to_json() | {"losses": rep.task_losses}
                record["stopped_tasks"] = self._early_stop(rep.task_losses)
                nme = rep.landmarks.nme
            else:
                nme = train_stats["landmarks"]
            record["lambda"] = dict(self.loss.weights)
            record["seconds"] = time.perf_counter() - t0
            self.epoch += 1
            self.history.append(record)
            if nme < self.best[0]:
                self.best = (nme, self.epoch)
                save_model(self.model, self.out / BEST, self._card(card))
            self.save_checkpoint()
            text = json.dumps(self.history, indent=1)
            atomic_write(self.out / "history.json", lambda tmp, text=text: Path(tmp).write_text(text))
            log(self._summary(record))
        return TrainResult(self.best[1], self.best[0], self.history, self.out / BEST)

    def _card(self, extra: dict[str, Any] | None) -> dict[str, Any]:
        return {
            "training": {"config": self.cfg.to_dict(), "best_epoch": self.epoch},
            "pixel_convention": "0-based; the first pixel's centre is (0, 0)",
        } | (extra or {})

    def _summary(self, r: dict[str, Any]) -> str:
        s = f"epoch {r['epoch']:3d}/{self.cfg.epochs}  {r['seconds']:.0f}s  train loss {r['train']['loss']:.4f}"
        if "val" in r:
            v = r["val"]
            attrs = " ".join(f"{k} {a:.1f}%" for k, a in v["attributes"].items())
            s += f"  val NME {v['nme']:.2f}% fail {v['failure_rate']:.1f}%  {attrs}"
            if r.get("stopped_tasks"):
                s += f"  stopped: {', '.join(r['stopped_tasks'])}"
        return s
