"""Temperature-scale a trained model's attribute probabilities on faces it never trained on.

    python scripts/calibrate_attributes.py runs/celeba --out runs/celeba/calibrated.safetensors
    python scripts/calibrate_attributes.py weights/facemtl_mtfl.safetensors --faces celeba:../shared/data/CelebA@train \
        --out runs/mtfl_calibrated.safetensors

Reads the recipe from the model card (of RUN/best.safetensors, or of a weights file), predicts the
faces the recipe held out for validation — or, with ``--faces``, every face of sources the recipe
never trained on (faces more like the ones the model will meet than its own validation split; a
source the recipe trained on is refused) — fits one temperature per attribute task
(:func:`facemtl.evaluation.calibration.fit_temperature`) and writes the model with those temperatures in its
config (same tensors, same card plus a ``calibration`` section). Never the test sets. Prints each
task's expected calibration error before and after.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from facemtl.data.dataset import FaceDataset
from facemtl.evaluation.calibration import fit_temperature, reliability
from facemtl.evaluation.evaluator import predict_dataset
from facemtl.models import MultiTaskNet, create_model
from facemtl.models.weights import card_path, load_model, save_model
from facemtl.training.config import TrainConfig, parse_source
from facemtl.training.jobs.landmarks import load_samples, train_val_samples


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "run", type=Path, help="a training run folder (its best.safetensors) or a weights file, with its card"
    )
    ap.add_argument("--faces", nargs="+", metavar="SOURCE", help="fit on these sources (e.g. celeba:ROOT@train)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    weights = args.run / "best.safetensors" if args.run.is_dir() else args.run
    card = json.loads(card_path(weights).read_text())
    cfg = TrainConfig.from_dict(card["training"]["config"])
    model = load_model(weights)
    assert isinstance(model, MultiTaskNet)
    if model.config.temperatures:
        raise SystemExit(f"{weights}: already calibrated ({model.config.temperatures})")
    if args.faces:
        specs = tuple(parse_source(f) for f in args.faces)
        trained = [
            s
            for s in specs
            if any(
                (s.kind, Path(s.path).resolve(), s.split) == (t.kind, Path(t.path).resolve(), t.split)
                for t in cfg.train
            )
        ]
        if trained:
            raise SystemExit(
                f"{weights}: its recipe trained on {trained[0].path} ({trained[0].kind}, {trained[0].split})"
            )
        faces, split = load_samples(replace(cfg, train=specs))[0], " + ".join(args.faces)
    else:
        faces, split = train_val_samples(cfg)[2], "the recipe's validation split"
    data = FaceDataset.for_model(faces, model.config, progress=True)
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
            f"{task.name:8s} T = {t:.3f}  ECE {before:.2f} % → {after:.2f} % on {report[task.name]['faces']} faces of {split}"
        )
    calibrated = create_model(model.config.with_overrides(temperatures=temperatures))
    calibrated.load_state_dict(model.state_dict())
    card = {k: v for k, v in card.items() if k not in ("format_version", "config")}
    card["calibration"] = {"split": split, "tasks": report}
    save_model(calibrated, args.out, card)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
