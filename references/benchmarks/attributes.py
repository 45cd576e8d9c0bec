"""Attributes users can trust: accuracy and calibration of facemtl's models, side by side.

    python references/benchmarks/attributes.py --models facemtl_mtfl runs/celeba/best.safetensors weights/facemtl_celeba.safetensors

Prints Markdown tables and writes references/benchmarks/results/attributes.md, references/benchmarks/results/attributes.json and the
reliability plot docs/calibration.png (the last model). About 3 min per model on 2 cores.

- **MTFL test** (2,995 AFLW faces, ground-truth crops, what ``facemtl evaluate`` scores): landmark
  error and each attribute's accuracy and expected calibration error (ECE, 15 bins of the top
  probability; a perfectly calibrated 0.9 is right 90 % of the time).
- **CelebA val** (the 1,000 photos of the official val partition in ``../shared``: 200 identities
  that share no one with the train partition), end to end as ``facemtl predict`` runs: facemtl's
  detector, the crop from its five points, one re-crop; the surest face of each photo is scored
  (a photo without a detected face counts as wrong). Gender, smile and glasses (CelebA has no pose).
Neither set was used to train or select any model here; temperatures are fitted on each recipe's
validation split (``scripts/calibrate_attributes.py``). The JSON also keeps each model's figures on its
own recipe's validation split at the chosen epoch (``validation``: how models are compared before
any test figure is looked at; only models trained on the same data share a split).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from facemtl.data.mtfl import read_mtfl
from facemtl.evaluation.attributes import CELEBA_TASKS, celeba_val, mtfl_test
from facemtl.evaluation.benchmarks import DATA, Report, model_label
from facemtl.evaluation.plots import plot_reliability
from facemtl.models import MultiTaskNet
from facemtl.models.pretrained import DEFAULT_LANDMARKS, resolve_weights
from facemtl.models.weights import card_path, load_model

ROOT = Path(__file__).resolve().parents[2]


def validation(name: str) -> dict | None:
    """The model's figures on its recipe's validation split at the chosen epoch (a shipped card's
    record, or the run's history beside its weights); splits differ between recipes' data."""
    path = card_path(resolve_weights(name, DEFAULT_LANDMARKS))
    card = json.loads(path.read_text())
    if "validation_at_best_epoch" in card:
        v = card["validation_at_best_epoch"]
    else:
        history = path.parent / "history.json"
        epoch = card.get("training", {}).get("best_epoch")
        if not history.is_file() or epoch is None:
            return None
        v = next(r["val"] for r in json.loads(history.read_text()) if r["epoch"] == int(epoch))
    return {"faces": v.get("n"), "nme": v["nme"], "attributes": v["attributes"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=["facemtl_mtfl"], help="shipped names or weights files")
    ap.add_argument("--mtfl-test", default=str(DATA / "MTFL/testing.txt"))
    ap.add_argument("--celeba", default=str(DATA / "CelebA"))
    ap.add_argument(
        "--out", default=str(ROOT / "references/benchmarks/results/attributes"), help="writes OUT.md and OUT.json"
    )
    ap.add_argument("--plot", default=str(ROOT / "docs/calibration.png"))
    args = ap.parse_args()
    torch.set_num_threads(2)
    mtfl = read_mtfl(args.mtfl_test)
    results, last_rels = {}, {}
    for name in args.models:
        model = load_model(name)
        if not isinstance(model, MultiTaskNet):
            sys.exit(f"{name}: not a landmark model")
        label = model_label(name)
        if model.config.temperatures:
            label += " (temperature-scaled)"
        print(f"scoring {label} ...", flush=True)
        celeba, last_rels = celeba_val(model, args.celeba)
        results[label] = {"weights": name, "mtfl_test": mtfl_test(model, mtfl), "celeba_val": celeba}
        results[label]["validation"] = validation(name)
    lines = [
        f"## MTFL test ({len(mtfl)} faces, ground-truth crops): accuracy % (ECE %)",
        "",
        "| model | landmarks NME % | gender | smile | glasses | pose |",
        "|---|---|---|---|---|---|",
    ]
    for label, r in results.items():
        a = r["mtfl_test"]["attributes"]
        cells = [f"{a[t]['accuracy']:.1f} ({a[t]['ece']:.1f})" for t in ("gender", "smile", "glasses", "pose")]
        lines.append(f"| {label} | {r['mtfl_test']['nme']:.2f} | " + " | ".join(cells) + " |")
    first = next(iter(results.values()))["celeba_val"]
    lines += [
        "",
        f"## CelebA val ({first['photos']} photos, end to end as `facemtl predict`): accuracy % (ECE %)",
        "",
        "| model | face found % | gender | smile | glasses |",
        "|---|---|---|---|---|",
    ]
    for label, r in results.items():
        c = r["celeba_val"]
        cells = [f"{c['attributes'][t]['accuracy']:.1f} ({c['attributes'][t]['ece']:.1f})" for t in CELEBA_TASKS]
        lines.append(f"| {label} | {c['found']:.1f} | " + " | ".join(cells) + " |")
    print()
    report = Report()
    for line in lines:
        report(line)
    md, js = report.save(args.out, results)
    plot_reliability(last_rels, args.plot, title=f"CelebA val end to end, {list(results)[-1]}")
    print(f"wrote {md}, {js}, {args.plot}")


if __name__ == "__main__":
    main()
