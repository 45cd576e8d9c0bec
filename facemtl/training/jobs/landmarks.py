"""Training job of the landmark + attribute nets (TCDCN-style): crops of annotated faces.

Task-wise early stopping (after TCDCN, simplified): after each epoch, an auxiliary task whose
validation loss has not improved on its best for ``early_stop_patience`` epochs is stopped — its
λ becomes 0 for the rest of training, so it no longer shapes the shared layers.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facemtl.analysis.options import DEFAULT_VIEWS, SHIFT_TEST
from facemtl.core.files import atomic_write
from facemtl.core.images import read_image
from facemtl.core.tasks import spec_for_points
from facemtl.data.augment import TrainAugment
from facemtl.data.celeba import read_celeba
from facemtl.data.dataset import FaceDataset
from facemtl.data.fairface import read_fairface
from facemtl.data.mtfl import read_mtfl
from facemtl.data.samples import FaceSample
from facemtl.data.sampling import mixture_probabilities, pose_weights, withhold_attributes
from facemtl.data.w300 import read_300w_folder
from facemtl.detection import create_detector
from facemtl.evaluation.evaluator import evaluate
from facemtl.models import ModelConfig, MultiTaskNet, create_model
from facemtl.models.pretrained import DEFAULT_DETECTOR, get_pretrained
from facemtl.training.config import TrainConfig
from facemtl.training.jobs import TrainData, Validation, freeze, recipe_model_config, start_from
from facemtl.training.losses import MultiTaskLoss


def load_samples(cfg: TrainConfig) -> tuple[list[FaceSample], np.ndarray]:
    """All training faces and, per face, the index of its source in ``cfg.train``."""
    samples: list[FaceSample] = []
    sources: list[int] = []
    for d, spec in enumerate(cfg.train):
        if spec.kind == "photos":
            raise ValueError(f"train source {spec.path!r}: face-photos files train detectors, not {cfg.model!r}")
        if spec.kind == "mtfl":
            part = read_mtfl(spec.path)
        elif spec.kind == "fairface":
            part = read_fairface(spec.path, spec.split, locate_faces)
        elif spec.kind == "celeba":
            part = read_celeba(spec.path, spec.split, locate_faces)
            if spec.pseudo_labeller:  # a shipped model's points become landmark targets
                located = locate_landmarks([s.image for s in part], spec.pseudo_labeller)
                for sample, points in zip(part, located, strict=True):
                    sample.landmarks = points
        else:
            part = read_300w_folder(spec.path, points=cfg.landmarks, split=spec.split)
        samples += part
        sources += [d] * len(part)
    if cfg.limit:
        samples, sources = samples[: cfg.limit], sources[: cfg.limit]
    return samples, np.asarray(sources, np.int64)


def _located(
    images: list[Path], cache_name: str, what: str, make: Callable[[], Callable[[np.ndarray], list | None]]
) -> list[np.ndarray | None]:
    """Points located in each photo by ``make()``'s function (``None`` where it finds no face),
    kept in ``$FACEMTL_CACHE`` (default ``~/.cache/facemtl``) as ``cache_name``, a JSON file named
    after the weights that located them, so a second run reads them back instead of running the
    networks over thousands of photos again."""
    from tqdm import tqdm

    cache = Path(os.environ.get("FACEMTL_CACHE", Path.home() / ".cache" / "facemtl")) / cache_name
    try:
        known: dict[str, list | None] = json.loads(cache.read_text()) if cache.is_file() else {}
    except json.JSONDecodeError as e:
        raise ValueError(f"{cache}:{e.lineno}: not a located-points cache ({e.msg}); delete it to rebuild") from None
    keys = [str(Path(p).resolve()) for p in images]
    todo = [(k, p) for k, p in zip(keys, images, strict=True) if k not in known]
    if todo:
        locate = make()
        for key, path in tqdm(todo, desc=what, leave=False, disable=None, mininterval=10):
            known[key] = locate(read_image(path))
        text = json.dumps(known)
        atomic_write(cache, lambda tmp: Path(tmp).write_text(text))
    return [None if known[k] is None else np.asarray(known[k], np.float64) for k in keys]


def locate_faces(images: list[Path]) -> list[np.ndarray | None]:
    """The five points of the surest face facemtl's shipped detector finds in each photo — the
    crop inference starts from — or ``None`` where it finds none (cached, :func:`_located`)."""

    def make() -> Callable[[np.ndarray], list | None]:
        detector = create_detector("facemtl")

        def locate(image: np.ndarray) -> list | None:
            dets = detector.detect(image)  # best first
            return None if not dets or dets[0].landmarks is None else dets[0].landmarks.tolist()

        return locate

    sha = get_pretrained(DEFAULT_DETECTOR).sha256[:16]
    return _located(images, f"located-{sha}.json", "locating faces", make)


def locate_landmarks(images: list[Path], model: str) -> list[np.ndarray | None]:
    """A shipped landmark model's points on the surest face in each photo, through the
    default :class:`~facemtl.analysis.analyzer.FaceAnalyzer` (detector, first crop, re-crop, mirror view) —
    pseudo-labels for photos without landmark annotation — or ``None`` where no face is found
    (cached, :func:`_located`, per detector and landmark weights and shift-test settings)."""
    from facemtl.analysis.analyzer import FaceAnalyzer

    def make() -> Callable[[np.ndarray], list | None]:
        analyzer = FaceAnalyzer.from_pretrained(model)

        def locate(image: np.ndarray) -> list | None:
            faces = analyzer.analyze(image)  # best first
            return faces[0].landmarks.tolist() if faces else None

        return locate

    shas = get_pretrained(DEFAULT_DETECTOR).sha256[:8] + get_pretrained(model).sha256[:8]
    # the shift test's settings name the cache too: a change of predict's defaults relabels, not reuses
    return _located(images, f"landmarks-{shas}-shift{SHIFT_TEST}-{DEFAULT_VIEWS}.json", "locating landmarks", make)


def split_train_val(samples: list, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a fixed random validation split of the training data (the test set is never touched)."""
    order = np.random.default_rng(seed).permutation(len(samples))
    n_val = int(round(len(samples) * fraction))
    return order[n_val:], order[:n_val]


def train_val_samples(cfg: TrainConfig) -> tuple[list[FaceSample], np.ndarray, list[FaceSample]]:
    """A recipe's training faces with their source indices, and the faces it holds out for
    validation (also what a benchmark scores to choose between runs without the test set).

    Each source is split on its own (the same seeded rule as a one-source recipe), so a source's
    held-out faces do not depend on what else is mixed in: a model started from weights trained on
    one source (``init``) is never validated on faces those weights trained on. Held-out faces of a
    source with ``pseudo_landmarks`` keep their attributes only: validation NME is always scored
    on annotated landmarks."""
    samples, sources = load_samples(cfg)
    train_idx, val_idx = [], []
    for d in range(len(cfg.train)):
        mine = np.flatnonzero(sources == d)
        tr, va = split_train_val(list(mine), cfg.val_fraction, cfg.seed)
        train_idx.append(mine[tr])
        val_idx.append(mine[va])
    tr_all, va_all = np.concatenate(train_idx), np.concatenate(val_idx)
    pseudo = [spec.pseudo_landmarks for spec in cfg.train]
    val = [replace(samples[i], landmarks=None) if pseudo[sources[i]] else samples[i] for i in va_all]
    return [samples[i] for i in tr_all], sources[tr_all], val


class LandmarkJob:
    """Landmarks (main task) + λ-weighted attribute tasks on face crops; selects on validation NME."""

    metric_name = "val NME"

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        base = recipe_model_config(cfg, ModelConfig)
        tasks = base.tasks if cfg.tasks is None else base.tasks.subset(cfg.tasks)
        tasks = tasks.with_weights(cfg.task_weights)
        if cfg.landmarks != tasks.landmarks.num_points:
            tasks = replace(tasks, landmarks=spec_for_points(cfg.landmarks))
        torch.manual_seed(cfg.seed)
        self.model: MultiTaskNet = create_model(base, tasks=tasks)
        self.initialised = start_from(self.model, cfg.init) + freeze(self.model, cfg.freeze)  # for describe()
        moving = [
            p
            for n, p in self.model.named_parameters()
            if not n.startswith("heads.") or n.startswith("heads.landmarks.")
        ]
        #: the landmarks cannot change (frozen trunk and landmark head): select on the attribute tasks' loss
        self.landmarks_fixed = not any(p.requires_grad for p in moving)
        if self.landmarks_fixed:
            self.metric_name = "val attribute loss"
        self.loss = MultiTaskLoss(tasks, cfg.landmark_loss, cfg.landmark_norm, cfg.balancing)
        self.task_state: dict[str, dict[str, Any]] = {
            t.name: {"best": float("inf"), "since": 0, "stopped": None} for t in tasks.attributes
        }

    def prepare_data(self, progress: bool) -> TrainData:
        cfg, mc = self.cfg, self.model.config
        train, sources, val = train_val_samples(cfg)
        for d, spec in enumerate(cfg.train):  # withhold attribute labels of training faces only
            if spec.attribute_fraction < 1:
                mine = np.flatnonzero(sources == d)
                kept = withhold_attributes([train[i] for i in mine], spec.attribute_fraction, cfg.seed + d)
                for i, s in zip(mine, kept, strict=True):
                    train[i] = s
        augment = TrainAugment(mc.tasks, mc.input_size, cfg.augment)
        train_data = FaceDataset.for_model(
            train, mc, augment=augment, seed=cfg.seed, cache=cfg.cache, progress=progress
        )
        val_data = FaceDataset.for_model(val, mc, cache=cfg.cache, progress=progress) if val else None
        pose = mc.tasks.attribute_names.index("pose") if "pose" in mc.tasks.attribute_names else None
        within = None
        if pose is not None and cfg.pose_balance > 0:  # rebalance head pose inside each source
            within = np.ones(len(train))
            for d in range(len(cfg.train)):
                m = sources == d
                w = pose_weights(train_data.attributes[m, pose], cfg.pose_balance)
                if w is not None:
                    within[m] = w
        p = mixture_probabilities(sources, [s.weight for s in cfg.train], within)
        summary = ""
        if len(cfg.train) > 1 or any(s.attribute_fraction < 1 for s in cfg.train):
            parts = []
            for d, spec in enumerate(cfg.train):
                m = sources == d
                share = m.mean() if p is None else p[m].sum()
                labelled = int((train_data.attributes[m] >= 0).any(1).sum())
                parts.append(
                    f"{Path(spec.path).name}: {m.sum()} faces, {share:.0%} of draws, {labelled} with attributes"
                )
            summary = "; ".join(parts)
        return TrainData(train_data, val_data, p, summary, sources)

    def validate(self, data: FaceDataset, model: MultiTaskNet | None = None) -> Validation:
        """Scores ``model`` (default: the job's own; the trainer passes its moving average)."""
        rep = evaluate(self.model if model is None else model, data)
        record = rep.to_json() | {"losses": rep.task_losses}
        if rep.gates:
            record["gates"] = rep.gates
        if self.landmarks_fixed:  # λ-weighted, as training weighs them
            metric = sum(t.weight * rep.task_losses[t.name] for t in self.loss.tasks.attributes)
            return Validation(metric, record, rep.task_losses)
        return Validation(rep.landmarks.nme, record, rep.task_losses)

    def end_epoch(self, epoch: int, validation: Validation | None) -> dict[str, Any]:
        """Task-wise early stopping; returns what the epoch's history record adds."""
        if validation is None:
            return {}
        stopped = []
        patience = self.cfg.early_stop_patience
        for name, st in self.task_state.items():
            if patience <= 0 or st["stopped"] is not None or self.loss.weights[name] == 0:
                continue
            v = validation.task_losses[name]
            if v < st["best"] - 1e-4:
                st["best"], st["since"] = v, 0
            else:
                st["since"] += 1
                if st["since"] >= patience:
                    st["stopped"] = epoch
                    self.loss.weights[name] = 0.0
                    stopped.append(name)
        return {"stopped_tasks": stopped}

    def state_dict(self) -> dict[str, Any]:
        return {"task_state": self.task_state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.task_state = state["task_state"]

    def describe(self) -> str:
        k = self.loss.tasks.landmarks.num_points
        return f"tasks: {k} landmarks + {', '.join(self.loss.tasks.attribute_names) or 'none'}" + self.initialised

    def summary(self, r: dict[str, Any]) -> str:
        if "val" not in r:
            return ""
        v = r["val"]
        attrs = " ".join(f"{k} {a:.1f}%" for k, a in v["attributes"].items())
        s = f"  val NME {v['nme']:.2f}% fail {v['failure_rate']:.1f}%  {attrs}"
        if "five_point" in v:
            s += f"  5-point faces {v['five_point']['nme']:.2f}%"
        if r.get("stopped_tasks"):
            s += f"  stopped: {', '.join(r['stopped_tasks'])}"
        return s
