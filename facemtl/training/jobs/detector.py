"""Training job of the face detector: scenes composed from teacher-labelled photos.

Photos (not scenes) are split into training and validation, each source on its own (so a source's
held-out photos do not depend on what else is mixed in, and a fine-tune from weights trained on one
source is never validated on photos they trained on); validation scenes show faces the detector
never trained on and are the same every epoch. Validation reports each
task's loss, recall and precision at IoU 0.5 (score ≥ 0.5, ignored faces neither found nor
missed) and the landmark error of matched annotated faces (% of the inter-ocular distance); the
best epoch is the one with the lowest λ-weighted validation loss.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from facemtl.core.types import batch_to
from facemtl.data.photos import PhotoSample, read_photos
from facemtl.data.scenes import SceneDataset
from facemtl.detection.base import match_detections
from facemtl.detection.net import decode
from facemtl.models import DetectorConfig, FaceDetectorNet, create_model
from facemtl.training.config import TrainConfig
from facemtl.training.detector_loss import TASKS, DetectionLoss
from facemtl.training.jobs import TrainData, Validation, freeze, recipe_model_config, start_from
from facemtl.training.jobs.landmarks import split_train_val

#: Validation scenes at most (a fixed set; enough for a stable loss, cheap on a CPU).
VAL_SCENES = 400


def load_photos(cfg: TrainConfig) -> list[list[PhotoSample]]:
    """Each source's photos (``limit``: the first N photos in all)."""
    sources: list[list[PhotoSample]] = []
    left = cfg.limit or None
    for spec in cfg.train:
        if spec.kind != "photos":
            raise ValueError(f"train source {spec.path!r}: a detector trains on face-photos files (kind 'photos')")
        photos = read_photos(spec.path, split=spec.split, whole=spec.whole)[:left]
        sources.append(photos)
        if left is not None:
            left -= len(photos)
    return sources


def split_photos(cfg: TrainConfig) -> tuple[list[PhotoSample], list[PhotoSample]]:
    """The recipe's training and validation photos, each source split on its own (the seeded rule
    of :func:`~facemtl.training.jobs.landmarks.split_train_val`)."""
    train: list[PhotoSample] = []
    val: list[PhotoSample] = []
    for photos in load_photos(cfg):
        train_idx, val_idx = split_train_val(photos, cfg.val_fraction, cfg.seed)
        train += [photos[i] for i in train_idx]
        val += [photos[i] for i in val_idx]
    return train, val


class DetectorJob:
    """Face score + box + 5 landmarks per location, λ-weighted (``task_weights``: score, box, landmarks)."""

    metric_name = "val loss"

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        base = recipe_model_config(cfg, DetectorConfig)
        torch.manual_seed(cfg.seed)
        self.model: FaceDetectorNet = create_model(base)
        self.initialised = start_from(self.model, cfg.init) + freeze(self.model, cfg.freeze)  # for describe()
        self.loss = DetectionLoss(base.strides, cfg.task_weights, cfg.balancing, base.anchors)

    def prepare_data(self, progress: bool) -> TrainData:
        cfg, mc = self.cfg, self.model.config
        train_photos, val_photos = split_photos(cfg)

        def scenes(photos: list[PhotoSample], **kw: Any) -> SceneDataset:
            return SceneDataset(photos, cfg.scenes, mean=mc.mean, std=mc.std, progress=progress, **kw)

        train = scenes(train_photos, seed=cfg.seed, length=cfg.scenes.per_epoch or None)
        val = None
        if val_photos:
            val = scenes(val_photos, seed=cfg.seed + 1, fixed=True, length=min(len(val_photos), VAL_SCENES))
        everything = train_photos + val_photos
        faces = sum(p.num_faces for p in everything)
        return TrainData(train, val, summary=f"{len(everything)} photos, {faces} labelled faces")

    @torch.no_grad()
    def validate(
        self, data: SceneDataset, model: FaceDetectorNet | None = None, score_threshold: float = 0.5
    ) -> Validation:
        """Validation losses, and recall / precision / landmark error at ``score_threshold``, of
        ``model`` (default: the job's own; the trainer passes its moving average)."""
        model = (self.model if model is None else model).eval()
        device = next(model.parameters()).device
        sums, counts = np.zeros(len(TASKS)), np.zeros(len(TASKS))
        tp = fp = fn = 0
        errors: list[float] = []
        for batch in DataLoader(data, batch_size=64):
            batch = batch_to(batch, device)
            raw = model(batch["image"]).float()
            assignment = self.loss.assign(batch)
            n = self.loss.label_counts(batch, assignment).cpu().numpy()
            losses = self.loss.task_losses(raw, batch, assignment=assignment)
            sums += np.array([float(losses[k]) for k in TASKS]) * n
            counts += n
            grid = self.loss.grid(batch["image"])
            centres, strides, raw = grid.centres.cpu().numpy(), grid.strides.cpu().numpy(), raw.cpu().float().numpy()
            for b in range(raw.shape[0]):
                boxes, _, pts = decode(raw[b], centres, strides, score_threshold, 0.4)
                t, f, m, e = _match(boxes, pts, {k: v[b].cpu() for k, v in batch.items()})
                tp, fp, fn = tp + t, fp + f, fn + m
                errors += e
        # plain floats: the history goes into checkpoints, which load without unpickling numpy types
        val_losses = {k: float(s / max(c, 1.0)) for k, s, c in zip(TASKS, sums, counts, strict=True)}
        metric = float(sum(self.loss.weights[k] * v for k, v in val_losses.items()))
        record = {
            "loss": metric,
            "losses": val_losses,
            "recall": 100.0 * tp / max(tp + fn, 1),
            "precision": 100.0 * tp / max(tp + fp, 1),
            "landmark_nme": 100.0 * float(np.mean(errors)) if errors else float("nan"),
            "faces": int(tp + fn),
        }
        return Validation(metric, record, val_losses)

    def end_epoch(self, epoch: int, validation: Validation | None) -> dict[str, Any]:
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    def describe(self) -> str:
        return "tasks: face score + box + 5 landmarks" + self.initialised

    def summary(self, r: dict[str, Any]) -> str:
        if "val" not in r:
            return ""
        v = r["val"]
        return (
            f"  val loss {v['loss']:.4f} (score {v['losses']['score']:.3f} box {v['losses']['box']:.3f} "
            f"landmarks {v['losses']['landmarks']:.4f})  recall {v['recall']:.1f}% precision {v['precision']:.1f}% "
            f"landmarks {v['landmark_nme']:.2f}%"
        )


def _match(boxes: np.ndarray, pts: np.ndarray, scene: dict[str, torch.Tensor]) -> tuple[int, int, int, list[float]]:
    """One scene's detections (best first) against its faces at IoU 0.5 — ignored faces count
    neither way, nor do detections overlapping one by more than 0.3: true and false positives,
    misses, and the landmark errors (/ inter-ocular distance) of matched annotated faces."""
    valid = scene["face_mask"].numpy()
    ign = scene["ignore"].numpy()[valid]
    has = scene["landmark_mask"].numpy()[valid]
    lms = scene["landmarks"].numpy()[valid]
    m = match_detections(boxes, scene["boxes"].numpy()[valid], ign, dont_care_iou=0.3)
    errors = []
    for d, j in enumerate(m.matched):
        if j >= 0 and has[j] and not ign[j]:
            iod = np.linalg.norm(lms[j, 0] - lms[j, 1])
            errors.append(float(np.linalg.norm(pts[d] - lms[j], axis=1).mean() / max(iod, 1e-6)))
    return m.true_positives, m.false_positives, m.misses, errors
