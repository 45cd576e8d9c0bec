"""Landmark models on the same held-out faces, paired: is a difference more than noise?

    python experiments/studies/paired_validation.py --models facemtl_mtfl facemtl_mtfl_celeba runs/x/best.safetensors

The faces are the landmark-annotated validation faces of the first model's recipe (its card records
the recipe); every other model's recipe must hold out the same faces (checked, by image). For each
model: its NME on them; against the first model: the mean per-face difference, the standard error of
that mean (per-face differences, paired), and how many faces it locates better. A second table reads
each attribute the same way: accuracy, the paired difference in accuracy (each face scores 1 right,
0 wrong) with its standard error, and the faces it gets right that the first model gets wrong and
the reverse. This is how a new model is compared with the default before any test figure is read.
Writes OUT.md and OUT.json.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch

from facemtl.data.dataset import FaceDataset
from facemtl.evaluation.benchmarks import Report, model_label, validation_samples
from facemtl.evaluation.evaluator import evaluate, predict_dataset
from facemtl.models import MultiTaskNet
from facemtl.models.weights import load_model

ROOT = Path(__file__).resolve().parents[2]


def attribute_hits(model: MultiTaskNet, data: FaceDataset) -> dict[str, np.ndarray]:
    """Per attribute, per labelled face: 1.0 where the model's top label is right, else 0.0 (unlabelled: NaN)."""
    probs = predict_dataset(model, data)["probs"]
    hits = {}
    for j, task in enumerate(model.config.tasks.attributes):
        labels = data.attributes[:, j]
        hit = (probs[task.name].argmax(1) == labels).astype(float)
        hit[labels < 0] = np.nan
        hits[task.name] = hit
    return hits


def paired(values: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """Mean of the per-face differences and its standard error, over faces both have a value for."""
    d = values - reference
    d = d[~np.isnan(d)]
    return float(d.mean()), float(d.std(ddof=1) / math.sqrt(len(d))) if len(d) > 1 else 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--models", nargs="+", required=True, help="shipped names or weights files; the first is the reference"
    )
    ap.add_argument(
        "--out", default=str(ROOT / "experiments/results/paired_validation"), help="writes OUT.md and OUT.json"
    )
    args = ap.parse_args()
    torch.set_num_threads(2)
    faces = validation_samples(args.models[0])
    images = [s.image.resolve() for s in faces]
    errors: dict[str, np.ndarray] = {}
    hits: dict[str, dict[str, np.ndarray]] = {}
    for i, name in enumerate(args.models):
        if i and [s.image.resolve() for s in validation_samples(name)] != images:
            raise SystemExit(f"{name}: its recipe holds out other faces than {args.models[0]}'s; no paired reading")
        model = load_model(name)
        if not isinstance(model, MultiTaskNet):
            raise SystemExit(f"{name}: not a landmark model")
        data, label = FaceDataset.for_model(faces, model.config), model_label(name)
        errors[label] = 100.0 * evaluate(model, data).landmarks.per_face
        hits[label] = attribute_hits(model, data)
    report = Report()
    ref_label, ref = next(iter(errors.items()))
    report(f"## Validation faces of {ref_label}'s recipe ({len(faces)} faces), paired against {ref_label}")
    report()
    report("| model | NME % | difference % | standard error % | faces better |")
    report("|---|---|---|---|---|")
    results = {}
    for label, e in errors.items():
        diff, se = paired(e, ref)
        better = int((e < ref).sum())
        results[label] = {"nme": float(e.mean()), "difference": diff, "se": se, "better": better}
        report(f"| {label} | {e.mean():.3f} | {diff:+.3f} | {se:.3f} | {better} of {len(e)} |")
    tasks = [t for t in hits[ref_label] if all(t in h for h in hits.values())]
    report()
    report(
        f"## Attributes on the same faces, paired against {ref_label}: accuracy % (difference ± standard error; faces won / lost)"
    )
    report()
    report("| model | " + " | ".join(tasks) + " |")
    report("|---|" + "---|" * len(tasks))
    for label, h in hits.items():
        cells = []
        results[label]["attributes"] = {}
        for t in tasks:
            acc = float(np.nanmean(h[t]) * 100)
            diff, se = paired(h[t], hits[ref_label][t])
            won = int(np.nansum((h[t] == 1) & (hits[ref_label][t] == 0)))
            lost = int(np.nansum((h[t] == 0) & (hits[ref_label][t] == 1)))
            results[label]["attributes"][t] = {
                "accuracy": acc,
                "difference": 100 * diff,
                "se": 100 * se,
                "won": won,
                "lost": lost,
            }
            cells.append(f"{acc:.1f} ({100 * diff:+.1f} ± {100 * se:.1f}; {won} / {lost})")
        report(f"| {label} | " + " | ".join(cells) + " |")
    report.save(args.out, {"faces": len(faces), "reference": ref_label, "models": results})


if __name__ == "__main__":
    main()
