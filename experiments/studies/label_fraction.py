"""How many attribute labels does partial-label training need? A CelebA label-fraction sweep (issue 14).

    .venv/bin/python experiments/studies/label_fraction.py [--config experiments/recipes/facemtl_celeba.json] [--epochs 10] \
        [--fractions 0 0.1 0.3 1] [--out runs/label_fraction]      # ≈ 10 min per fraction on 2 cores

Every row is the same recipe (``--config``, shortened to ``--epochs``), the same seed and the same
draws of faces; only the fraction of CelebA *train* faces that keep their gender, smile and glasses
labels changes (``attribute_fraction``; the others train nothing, as CelebA has no landmarks). So the
row with fraction 0 is the MTFL-only control: the same MTFL faces, the same number of updates.
Each run's weights are chosen on its validation split, then scored like ``references/benchmarks/attributes.py``:
MTFL test on ground-truth crops, CelebA val end to end. Writes experiments/results/label_fraction.{md,json};
finished runs and their scores are reused.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from sweep_runs import train_run

from facemtl.data.mtfl import read_mtfl
from facemtl.evaluation.attributes import CELEBA_TASKS, celeba_val, mtfl_test
from facemtl.evaluation.benchmarks import DATA, Report
from facemtl.models import MultiTaskNet
from facemtl.models.weights import load_model

ROOT = Path(__file__).resolve().parents[2]
MTFL_TASKS = ("gender", "smile", "glasses", "pose")


def recipe(base: dict, fraction: float, epochs: int) -> dict:
    """``base`` with the CelebA source keeping ``fraction`` of its attribute labels, ``epochs`` long."""
    if not any(s.get("kind") == "celeba" for s in base["train"]):
        raise SystemExit("the base recipe has no celeba source to thin out")
    sources = [dict(s, attribute_fraction=fraction) if s.get("kind") == "celeba" else s for s in base["train"]]
    return dict(base, train=sources, epochs=epochs)


def score(run_dir: Path, weights: Path, mtfl: list, celeba: str) -> dict:
    cached = run_dir / "scores.json"
    if cached.exists():
        return json.loads(cached.read_text())
    model = load_model(weights)
    assert isinstance(model, MultiTaskNet)
    r = {"mtfl_test": mtfl_test(model, mtfl), "celeba_val": celeba_val(model, celeba)[0]}
    cached.write_text(json.dumps(r, indent=2) + "\n")
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=str(ROOT / "experiments/recipes/facemtl_celeba.json"))
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--fractions", type=float, nargs="+", default=[0.0, 0.1, 0.3, 1.0])
    ap.add_argument("--out", default=str(ROOT / "runs/label_fraction"), help="the runs' folder")
    ap.add_argument("--mtfl-test", default=str(DATA / "MTFL/testing.txt"))
    ap.add_argument("--celeba", default=str(DATA / "CelebA"))
    ap.add_argument("--threads", type=int, default=2, help="torch threads of each training run")
    ap.add_argument(
        "--results", default=str(ROOT / "experiments/results/label_fraction"), help="writes RESULTS.md/.json"
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    base = json.loads(Path(args.config).read_text())
    mtfl = read_mtfl(args.mtfl_test)
    results: dict = {"config": args.config, "epochs": args.epochs, "seed": base.get("seed", 0), "rows": {}}
    for f in args.fractions:
        run_dir = Path(args.out) / f"fraction_{f:g}"
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "recipe.json").write_text(json.dumps(recipe(base, f, args.epochs), indent=2) + "\n")
        print(f"CelebA label fraction {f:g}: training {run_dir} ...", flush=True)
        weights = train_run(
            run_dir,
            ["--config", str(run_dir / "recipe.json"), "--threads", str(args.threads)],
            args.epochs,
            run_dir.parent / f"{run_dir.name}.log",
        )
        results["rows"][f"{f:g}"] = score(run_dir, weights, mtfl, args.celeba)
    report = Report()
    report(
        f"{Path(args.config).name}, {args.epochs} epochs, seed {results['seed']}; accuracy % (MTFL test: "
        "ground-truth crops; CelebA val: end to end); 0 % is the MTFL-only control"
    )
    report()
    report(
        "| CelebA labels kept | MTFL NME % | MTFL "
        + " | MTFL ".join(MTFL_TASKS)
        + " | CelebA "
        + " | CelebA ".join(CELEBA_TASKS)
        + " |"
    )
    report("|---" * (2 + len(MTFL_TASKS) + len(CELEBA_TASKS)) + "|")
    for f, r in results["rows"].items():
        m, c = r["mtfl_test"], r["celeba_val"]["attributes"]
        cells = [f"{m['nme']:.2f}"] + [f"{m['attributes'][t]['accuracy']:.1f}" for t in MTFL_TASKS]
        cells += [f"{c[t]['accuracy']:.1f}" for t in CELEBA_TASKS]
        report(f"| {float(f):.0%} | " + " | ".join(cells) + " |")
    md, js = report.save(args.results, results)
    print(f"\nwrote {md}, {js}")


if __name__ == "__main__":
    main()
