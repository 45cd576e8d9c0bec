"""How much of the shared feature a multi-task model uses, and what its heads can read from it.

    .venv/bin/python experiments/studies/feature_units.py --models facemtl_mtfl runs/mtfl_celeba/best.safetensors \
        [--recipe experiments/recipes/facemtl_mtfl_celeba_scratch.json] [--out experiments/results/feature_units]

For each model (a shared-trunk landmark model): how many units of the shared FC feature are
*dead* (never positive on any validation face of the recipe — a ReLU unit that stopped firing
gets no gradient and never comes back), and per attribute a linear probe (logistic regression on
standardised features, fitted on up to 6,000 of the recipe's training faces, scored on its
validation faces) on the conv features versus on the shared feature the heads read. A task whose
information is in the conv features but not in the shared feature was squeezed out of it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from facemtl.data.dataset import FaceDataset
from facemtl.evaluation.benchmarks import model_label, one_thread
from facemtl.models import MultiTaskNet
from facemtl.models.weights import load_model
from facemtl.training.config import TrainConfig
from facemtl.training.jobs.landmarks import train_val_samples

ROOT = Path(__file__).resolve().parents[2]


@torch.no_grad()
def features(model: MultiTaskNet, data: FaceDataset) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Conv features (flattened), the shared feature and the attribute labels of every face."""
    conv, shared, labels = [], [], []
    for i in range(0, len(data), 256):
        items = [data[j] for j in range(i, min(len(data), i + 256))]
        h = model.trunk.convs(torch.stack([t["image"] for t in items]))
        conv.append(h.flatten(1))
        shared.append(model.trunk.fc(h))
        labels.append(torch.stack([t["attributes"] for t in items]))
    return torch.cat(conv), torch.cat(shared), torch.cat(labels)


def probe(x: torch.Tensor, y: torch.Tensor, xv: torch.Tensor, yv: torch.Tensor, classes: int) -> float:
    """Validation accuracy (%) of an L2-regularised logistic regression fitted by L-BFGS."""
    keep, keep_v = y >= 0, yv >= 0
    x, y, xv, yv = x[keep], y[keep], xv[keep_v], yv[keep_v]
    mu, sd = x.mean(0), x.std(0) + 1e-6
    x, xv = (x - mu) / sd, (xv - mu) / sd
    w = torch.zeros(x.shape[1], classes, requires_grad=True)
    b = torch.zeros(classes, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=500, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(x @ w + b, y) + 1e-3 * w.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return 100 * float(((xv @ w + b).argmax(1) == yv).float().mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", required=True, help="shipped names or .safetensors files")
    ap.add_argument(
        "--recipe", default="experiments/recipes/facemtl_mtfl_celeba_scratch.json", help="its train/val split is used"
    )
    ap.add_argument("--train-faces", type=int, default=6000)
    ap.add_argument("--out", default=str(ROOT / "experiments/results/feature_units"), help="writes OUT.md and OUT.json")
    args = ap.parse_args()
    one_thread()
    train, _, val = train_val_samples(TrainConfig.from_json(args.recipe))
    pick = np.random.default_rng(0).permutation(len(train))[: args.train_faces]
    train = [train[i] for i in pick]
    results, lines = {}, []
    for name in args.models:
        model = load_model(name).eval()
        if not isinstance(model, MultiTaskNet) or model.config.trunk != "shared":
            raise SystemExit(f"{name}: not a shared-trunk landmark model")
        c = model.config
        tasks = c.tasks.attributes
        if not lines:
            header = ["model", "dead units", *(f"{t.name}: conv / shared" for t in tasks)]
            lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            print("\n".join(lines))
        tr = features(model, FaceDataset.for_model(train, c))
        va = features(model, FaceDataset.for_model(val, c))
        dead = int((va[1].max(0).values <= 0).sum())
        row: dict = {"units": c.feature_dim, "dead": dead, "probe": {}}
        for j, t in enumerate(tasks):
            k = len(t.labels)
            row["probe"][t.name] = {
                "conv": probe(tr[0], tr[2][:, j], va[0], va[2][:, j], k),
                "shared": probe(tr[1], tr[2][:, j], va[1], va[2][:, j], k),
            }
        label = model_label(name)
        results[label] = row
        cells = [f"{row['probe'][t.name]['conv']:.1f} / {row['probe'][t.name]['shared']:.1f}" for t in tasks]
        lines.append(f"| {label} | {dead} of {c.feature_dim} | " + " | ".join(cells) + " |")
        print(lines[-1])
    out = Path(args.out)
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    out.with_suffix(".json").write_text(json.dumps({"recipe": args.recipe, "models": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
