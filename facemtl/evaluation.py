"""Run a model over cropped faces and score it (used by validation and ``facemtl evaluate``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from facemtl.data.dataset import FaceDataset
from facemtl.geometry import from_unit
from facemtl.losses import MultiTaskLoss
from facemtl.metrics import LandmarkReport, attribute_accuracy, landmark_report
from facemtl.models import MultiTaskNet


@dataclass
class EvalReport:
    landmarks: LandmarkReport
    attributes: dict[str, dict[str, float]]  # task → accuracy, majority, n
    task_losses: dict[str, float]

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
        }

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
        rows += [f"| error: {name} | {v:.2f} |" for name, v in lm.per_landmark.items()]
        rows += [
            f"| accuracy: {k} (majority baseline) | {v['accuracy']:.2f} % ({v['majority']:.2f} %) |"
            for k, v in self.attributes.items()
        ]
        return "\n".join(rows)


@torch.no_grad()
def predict_dataset(model: MultiTaskNet, data: FaceDataset, batch_size: int = 256) -> dict[str, Any]:
    """Landmarks in crop pixels ``(N, K, 2)``, attribute probabilities, and mean task losses."""
    model.eval()
    device = next(model.parameters()).device
    loss_fn = MultiTaskLoss(model.config.tasks, "l2")
    lms, probs = [], {t.name: [] for t in model.config.tasks.attributes}
    sums: dict[str, float] = {}
    for batch in DataLoader(data, batch_size=batch_size, shuffle=False):
        batch = {k: v.to(device) for k, v in batch.items()}
        out = model(batch["image"])
        for k, v in loss_fn.task_losses(out, batch).items():
            sums[k] = sums.get(k, 0.0) + float(v) * len(batch["image"])
        lms.append(out["landmarks"].float().cpu().numpy())
        for name, logits in out["attributes"].items():
            probs[name].append(torch.softmax(logits.float(), 1).cpu().numpy())
    return {
        "landmarks": from_unit(np.concatenate(lms), data.input_size),
        "probs": {k: np.concatenate(v) for k, v in probs.items()},
        "task_losses": {k: v / len(data) for k, v in sums.items()},
    }


def evaluate(model: MultiTaskNet, data: FaceDataset, batch_size: int = 256) -> EvalReport:
    """Score a model on deterministic (landmark-rule) crops. The error is normalised by the
    inter-ocular distance, so measuring it in crop pixels equals measuring it in the image."""
    p = predict_dataset(model, data, batch_size)
    lm = landmark_report(p["landmarks"], data.points, model.config.tasks.landmarks)
    attrs = {}
    for j, task in enumerate(model.config.tasks.attributes):
        acc, maj, n = attribute_accuracy(p["probs"][task.name].argmax(1), data.attributes[:, j])
        if n:
            attrs[task.name] = {"accuracy": acc, "majority": maj, "n": n}
    return EvalReport(lm, attrs, p["task_losses"])


def dumps(report: EvalReport) -> str:
    return json.dumps(report.to_json(), indent=2)
