"""Temperature-scale a trained model's attribute probabilities on its recipe's validation split.

    python scripts/calibrate_attributes.py runs/celeba --out runs/celeba/calibrated.safetensors

Reads the run's recipe from its model card, predicts the faces the recipe held out for validation
(never the test sets), fits one temperature per attribute task (:func:`facemtl.calibration.fit_temperature`)
and writes the model with those temperatures in its config (same tensors, same card plus a
``calibration`` section). Prints each task's expected calibration error before and after.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from facemtl.calibration import fit_temperature, reliability
from facemtl.config import TrainConfig
from facemtl.data.dataset import FaceDataset
from facemtl.evaluation import predict_dataset
from facemtl.jobs.landmarks import train_val_samples
from facemtl.models import MultiTaskNet, create_model
from facemtl.weights import card_path, load_model, save_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path, help="a training run folder (its best.safetensors and card)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    weights = args.run / "best.safetensors"
    card = json.loads(card_path(weights).read_text())
    cfg = TrainConfig.from_dict(card["training"]["config"])
    model = load_model(weights)
    assert isinstance(model, MultiTaskNet)
    if model.config.temperatures:
        raise SystemExit(f"{weights}: already calibrated ({model.config.temperatures})")
    _, _, val = train_val_samples(cfg)
    data = FaceDataset.for_model(val, model.config, progress=True)
    p = predict_dataset(model, data)
    temperatures, report = {}, {}
    for j, task in enumerate(model.config.tasks.attributes):
        labels = data.attributes[:, j]
        if not (labels >= 0).any():
            continue
        logits = np.log(np.clip(p["probs"][task.name], 1e-12, 1.0))  # log-softmax: logits up to a constant
        t = fit_temperature(logits, labels)
        scaled = np.exp(logits / t)
        scaled /= scaled.sum(1, keepdims=True)
        before, after = reliability(np.exp(logits), labels).ece, reliability(scaled, labels).ece
        temperatures[task.name] = round(t, 4)
        report[task.name] = {"temperature": round(t, 4), "ece_before": before, "ece_after": after,
                             "faces": int((labels >= 0).sum())}  # fmt: skip
        print(
            f"{task.name:8s} T = {t:.3f}  ECE {before:.2f} % → {after:.2f} % on {report[task.name]['faces']} validation faces"
        )
    calibrated = create_model(model.config.with_overrides(temperatures=temperatures))
    calibrated.load_state_dict(model.state_dict())
    card = {k: v for k, v in card.items() if k not in ("format_version", "config")}
    card["calibration"] = {"split": "the recipe's validation split", "tasks": report}
    save_model(calibrated, args.out, card)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
