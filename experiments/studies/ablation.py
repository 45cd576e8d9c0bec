"""TCDCN's central claim on our model: do auxiliary tasks help landmark accuracy?

    .venv/bin/python experiments/studies/ablation.py --out runs/ablation --epochs 40 --seeds 0 1 --jobs 2

Trains the same recipe (experiments/recipes/facemtl_mtfl_v1.json, the v1 recipe with every λ = 1, with ``--epochs`` overriding its length) with
landmarks only, landmarks + each auxiliary task, and all tasks, for each seed; selects each run's
weights on its validation split; evaluates them on MTFL test; prints a Markdown table of
mean ± spread over seeds and writes ``OUT/ablation.json``. Runs already finished are reused.
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from sweep_runs import add_sweep_arguments, train_then_test

VARIANTS = {
    "landmarks only": "",
    "+ gender": "gender",
    "+ smile": "smile",
    "+ glasses": "glasses",
    "+ pose": "pose",
    "all tasks": "gender,smile,glasses,pose",
}


def run(out: Path, name: str, tasks: str, seed: int, args: argparse.Namespace) -> dict:
    d = out / f"{name.replace(' ', '_').replace('+_', 'plus_')}_s{seed}"
    train = [
        "--config",
        args.config,
        "--epochs",
        str(args.epochs),
        "--seed",
        str(seed),
        "--threads",
        "1",
        "--tasks",
        tasks,
    ]
    return train_then_test(d, train, args.epochs, args.test, out / f"{d.name}.log")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_sweep_arguments(ap, out="runs/ablation", epochs=40)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(name, tasks, seed) for seed in args.seeds for name, tasks in VARIANTS.items()]
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda j: run(out, *j, args), jobs))
    table: dict[str, list[dict]] = {}
    for (name, _, _), r in zip(jobs, results, strict=True):
        table.setdefault(name, []).append(r)
    n = len(args.seeds)
    print(f"MTFL test (2,995 faces), {args.epochs}-epoch recipe, {n} seed(s): mean (± half the range over seeds)\n")
    print("| tasks | mean error (%) | failure rate (%) | AUC@0.1 | gender | smile | glasses | pose |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")

    def cell(values: list[float], fmt: str = ".2f") -> str:
        v = np.array(values)
        return f"{v.mean():{fmt}}" + (f" ± {(v.max() - v.min()) / 2:{fmt}}" if len(v) > 1 else "")

    for name, rs in table.items():
        attrs = [
            cell([r["attributes"][t] for r in rs], ".1f") if t in rs[0]["attributes"] else "–"
            for t in ("gender", "smile", "glasses", "pose")
        ]
        print(
            f"| {name} | {cell([r['nme'] for r in rs])} | {cell([r['failure_rate'] for r in rs])} | {cell([r['auc'] for r in rs], '.3f')} | {' | '.join(attrs)} |"
        )
    (out / "ablation.json").write_text(json.dumps({k: v for k, v in table.items()}, indent=2) + "\n")


if __name__ == "__main__":
    main()
