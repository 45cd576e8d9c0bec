"""Landmark models on the same held-out faces, paired: is a difference more than noise?

    python bench/paired_validation.py --models facemtl_mtfl facemtl_mtfl_celeba runs/x/best.safetensors

The faces are the landmark-annotated validation faces of the first model's recipe (its card records
the recipe); every other model's recipe must hold out the same faces (checked, by image). For each
model: its NME on them; against the first model: the mean per-face difference, the standard error of
that mean (per-face differences, paired), and how many faces it locates better. This is how a new
model is compared with the default before any test figure is read. Writes OUT.md and OUT.json.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch
from common import Report, model_label, validation_samples

from facemtl.data.dataset import FaceDataset
from facemtl.evaluation import evaluate
from facemtl.models import MultiTaskNet
from facemtl.weights import load_model

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--models", nargs="+", required=True, help="shipped names or weights files; the first is the reference"
    )
    ap.add_argument("--out", default=str(ROOT / "bench/results/paired_validation"), help="writes OUT.md and OUT.json")
    args = ap.parse_args()
    torch.set_num_threads(2)
    faces = validation_samples(args.models[0])
    images = [s.image.resolve() for s in faces]
    errors: dict[str, np.ndarray] = {}
    for i, name in enumerate(args.models):
        if i and [s.image.resolve() for s in validation_samples(name)] != images:
            raise SystemExit(f"{name}: its recipe holds out other faces than {args.models[0]}'s; no paired reading")
        model = load_model(name)
        if not isinstance(model, MultiTaskNet):
            raise SystemExit(f"{name}: not a landmark model")
        rep = evaluate(model, FaceDataset.for_model(faces, model.config))
        errors[model_label(name)] = 100.0 * rep.landmarks.per_face
    report = Report()
    ref_label, ref = next(iter(errors.items()))
    report(f"## Validation faces of {ref_label}'s recipe ({len(faces)} faces), paired against {ref_label}")
    report()
    report("| model | NME % | difference % | standard error % | faces better |")
    report("|---|---|---|---|---|")
    results = {}
    for label, e in errors.items():
        d = e - ref
        se = float(d.std(ddof=1) / math.sqrt(len(d))) if label != ref_label else 0.0
        better = int((d < 0).sum())
        results[label] = {"nme": float(e.mean()), "difference": float(d.mean()), "se": se, "better": better}
        report(f"| {label} | {e.mean():.3f} | {d.mean():+.3f} | {se:.3f} | {better} of {len(d)} |")
    report.save(args.out, {"faces": len(faces), "reference": ref_label, "models": results})


if __name__ == "__main__":
    main()
