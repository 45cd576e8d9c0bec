"""Run a model over cropped faces and score it (used by validation and ``facemtl evaluate``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Subset

from facemtl.analysis.views import test_time_averaged
from facemtl.core.geometry import from_unit
from facemtl.core.tasks import MTFL5
from facemtl.core.types import batch_to
from facemtl.data.dataset import FaceDataset
from facemtl.evaluation.metrics import LandmarkReport, attribute_accuracy, landmark_report
from facemtl.models import MultiTaskNet
from facemtl.models.arrays import array_net, to_tensors
from facemtl.training.distributed import all_gather
from facemtl.training.losses import MultiTaskLoss


@dataclass
class EvalReport:
    """Landmark errors (NME, failure rate, CED) and attribute accuracies of one evaluation run;
    ``table()`` prints it, ``to_json()`` is what ``facemtl evaluate --json`` writes."""

    landmarks: LandmarkReport
    attributes: dict[str, dict[str, float]]  # task → accuracy, majority, n
    task_losses: dict[str, float]
    gates: dict[str, list[float]] = field(default_factory=dict)  # MMoE: each task's mean gate weights
    #: Faces annotated with only the five MTFL points, scored on a many-point model's five derived
    #: points, when the data mixes them with fully annotated faces (``landmarks`` has the others).
    five_point: LandmarkReport | None = None

    def to_json(self) -> dict[str, Any]:
        lm = self.landmarks
        return {
            "nme": lm.nme,
            "failure_rate": lm.failure_rate,
            "auc": lm.auc,
            "per_landmark": lm.per_landmark,
            "attributes": {k: v["accuracy"] for k, v in self.attributes.items()},
            "attribute_majority_baseline": {k: v["majority"] for k, v in self.attributes.items()},
            "n": lm.n,
        } | ({} if self.five_point is None else {"five_point": _summary(self.five_point)})

    def table(self) -> str:
        """A Markdown table, readable in a terminal."""
        lm = self.landmarks
        rows = [
            "| metric | value |",
            "| --- | --- |",
            f"| faces | {lm.n} |",
            f"| mean error (% inter-ocular) | {lm.nme:.2f} |",
            f"| failure rate (error > 10%) | {lm.failure_rate:.2f} % |",
            f"| AUC@0.1 | {lm.auc:.4f} |",
        ]
        if len(lm.per_landmark) <= 5:
            rows += [f"| error: {name} | {v:.2f} |" for name, v in lm.per_landmark.items()]
        else:  # 68 points: one row per region instead of 68
            rows += [f"| error: {r} ({len(v)} points) | {np.mean(v):.2f} |" for r, v in lm.per_region().items()]
        if self.five_point is not None:
            f = self.five_point
            rows.append(f"| 5-point faces ({f.n}): mean error of the 5 derived points | {f.nme:.2f} |")
        rows += [
            f"| accuracy: {k} (majority baseline) | {v['accuracy']:.2f} % ({v['majority']:.2f} %) |"
            for k, v in self.attributes.items()
        ]
        return "\n".join(rows)


@torch.no_grad()
def predict_dataset(
    model: MultiTaskNet,
    data: FaceDataset,
    batch_size: int = 256,
    indices: Sequence[int] | np.ndarray | None = None,
    *,
    flip_test: bool = False,
    shift_test: float = 0.0,
) -> dict[str, Any]:
    """Landmarks in crop pixels ``(N, K, 2)``, attribute probabilities, summed task losses and
    label counts (sums, so shards of a dataset can be merged), for ``indices`` (default: all).
    ``flip_test`` / ``shift_test`` average each crop's predictions over its mirror image / shifted
    copies (:mod:`facemtl.analysis.views`)."""
    model.eval()
    device = next(model.parameters()).device
    net = array_net(model)
    loss_fn = MultiTaskLoss(model.config.tasks, "l2")
    names = list(loss_fn.weights)
    lms: list[np.ndarray] = []
    probs: dict[str, list[np.ndarray]] = {t.name: [] for t in model.config.tasks.attributes}
    gates: dict[str, list[np.ndarray]] = {}
    sums, counts = np.zeros(len(names)), np.zeros(len(names))
    subset = data if indices is None else Subset(data, list(indices))
    for batch in DataLoader(subset, batch_size=batch_size, shuffle=False):
        batch = batch_to(batch, device)
        if flip_test or shift_test:
            views = test_time_averaged(
                net, batch["image"].cpu().numpy(), model.config.tasks, flip=flip_test, shift=shift_test
            )
            out = to_tensors(views, device)
        else:
            out = model(batch["image"])
        n = loss_fn.label_counts(batch).cpu().numpy()
        losses = loss_fn.task_losses(out, batch)
        sums += np.array([float(losses[k]) for k in names]) * n
        counts += n
        lms.append(out["landmarks"].float().cpu().numpy())
        for name, logits in out["attributes"].items():
            probs[name].append(torch.softmax(logits.float(), 1).cpu().numpy())
        for name, g in out.get("gates", {}).items():
            gates.setdefault(name, []).append(g.float().cpu().numpy())
    k = model.config.tasks.landmarks.num_points
    return {
        "landmarks": from_unit(np.concatenate(lms), data.input_size) if lms else np.empty((0, k, 2), np.float32),
        "probs": {k: np.concatenate(v) if v else np.empty((0, 0)) for k, v in probs.items()},
        "gates": {k: np.concatenate(v) for k, v in gates.items()},
        "loss_sums": dict(zip(names, sums.tolist(), strict=True)),
        "label_counts": dict(zip(names, counts.tolist(), strict=True)),
    }


def _merge_shards(parts: list[tuple[np.ndarray, dict[str, Any]]], n: int) -> dict[str, Any]:
    """Reassemble per-process predictions on interleaved shards into dataset order."""
    if len(parts) == 1:
        return parts[0][1]
    first = parts[0][1]
    out: dict[str, Any] = {"landmarks": np.empty((n,) + first["landmarks"].shape[1:], np.float32)}
    out["probs"] = {k: np.empty((n, v.shape[1]), np.float32) for k, v in first["probs"].items()}
    out["gates"] = {k: np.empty((n, v.shape[1]), np.float32) for k, v in first["gates"].items()}
    for idx, p in parts:
        out["landmarks"][idx] = p["landmarks"]
        for group in ("probs", "gates"):
            for k, v in p[group].items():
                if len(idx):
                    out[group][k][idx] = v
    for key in ("loss_sums", "label_counts"):
        out[key] = {k: sum(p[key][k] for _, p in parts) for k in first[key]}
    return out


def evaluate(
    model: MultiTaskNet, data: FaceDataset, batch_size: int = 256, *, flip_test: bool = False, shift_test: float = 0.0
) -> EvalReport:
    """Score a model on deterministic (landmark-rule) crops. The error is normalised by the
    inter-ocular distance, so measuring it in crop pixels equals measuring it in the image.

    Under ``torchrun`` each process predicts an interleaved shard and every process gets the
    same merged report. ``flip_test``, ``shift_test``: see :mod:`facemtl.analysis.views`."""
    rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
    idx = np.arange(rank, len(data), world)
    p = _merge_shards(
        all_gather((idx, predict_dataset(model, data, batch_size, idx, flip_test=flip_test, shift_test=shift_test))),
        len(data),
    )
    spec, pred = model.config.tasks.landmarks, p["landmarks"]
    if not data.annotated.any():
        raise ValueError("no face with annotated landmarks to score")
    five, full = data.five & data.annotated, ~data.five & data.annotated
    five_point = landmark_report(spec.mtfl5(pred[five]), data.points[five, :5], MTFL5) if five.any() else None
    if five_point is not None and not full.any():
        lm, five_point = five_point, None
    else:
        lm = landmark_report(pred[full], data.points[full], spec)
    attrs = {}
    for j, task in enumerate(model.config.tasks.attributes):
        acc, maj, n = attribute_accuracy(p["probs"][task.name].argmax(1), data.attributes[:, j])
        if n:
            attrs[task.name] = {"accuracy": acc, "majority": maj, "n": n}
    losses = {k: v / max(p["label_counts"][k], 1.0) for k, v in p["loss_sums"].items()}
    gates = {k: v.mean(0).tolist() for k, v in p["gates"].items()}
    return EvalReport(lm, attrs, losses, gates, five_point)


def _summary(r: LandmarkReport) -> dict[str, Any]:
    return {"nme": r.nme, "failure_rate": r.failure_rate, "auc": r.auc, "n": r.n}


def dumps(report: EvalReport) -> str:
    return json.dumps(report.to_json(), indent=2)
