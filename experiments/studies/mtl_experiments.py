"""Multi-task strategies on MTFL: loss balancing, MMoE, mixed sources, partial attribute labels.

    .venv/bin/python experiments/studies/mtl_experiments.py --out runs/mtl --epochs 30 --jobs 2

Every variant is the v1 recipe (experiments/recipes/facemtl_mtfl_v1.json: every λ = 1; shortened to ``--epochs``, seed 0)
with one thing changed; each run's weights are selected on its own validation split and
evaluated on MTFL test (2,995 faces). Prints Markdown tables and writes ``OUT/mtl_experiments.json``.
Finished runs are reused, so an interrupted sweep continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sweep_runs import add_sweep_arguments, train_then_test

from facemtl.evaluation.benchmarks import DATA

MTFL = str(DATA / "MTFL/training.txt")
W300 = str(DATA / "300W_train")


def _mtfl(**kw) -> list[dict]:
    return [{"path": MTFL, "kind": "mtfl", **kw}]


#: name → (group, changes to the recipe)
VARIANTS: dict[str, tuple[str, dict]] = {
    "fixed λ = 1 (TCDCN)": ("balancing", {"balancing": "fixed"}),
    "uncertainty weighting (Kendall 2018)": ("balancing", {"balancing": "uncertainty"}),
    "dynamic weight averaging (Liu 2019)": ("balancing", {"balancing": "dwa"}),
    "MMoE, 4 experts, fixed λ": ("sharing", {"model_overrides": {"trunk": "mmoe", "experts": 4}}),
    "MTFL + 300-W (landmarks only), by size": ("data", {"train": _mtfl() + [{"path": W300, "kind": "300w"}]}),
    "MTFL + 300-W, 300-W drawn 30 %": (
        "data",
        {"train": _mtfl(weight=0.7) + [{"path": W300, "kind": "300w", "weight": 0.3}]},
    ),
    "attribute labels on 50 % of MTFL": ("labels", {"train": _mtfl(attribute_fraction=0.5)}),
    "attribute labels on 10 % of MTFL": ("labels", {"train": _mtfl(attribute_fraction=0.1)}),
    "attribute labels on 0 % (landmarks only)": ("labels", {"train": _mtfl(attribute_fraction=0.0)}),
}


def _no_attribute_labels(changes: dict) -> bool:
    return all(src.get("attribute_fraction", 1.0) == 0 for src in changes.get("train", [{}]))


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")[:48]


def run(out: Path, name: str, changes: dict, args: argparse.Namespace) -> dict:
    d = out / slug(name)
    d.mkdir(parents=True, exist_ok=True)
    recipe = json.loads(Path(args.config).read_text()) | {"epochs": args.epochs, "threads": 1, "seed": args.seed}
    (d / "config.json").write_text(json.dumps(recipe | changes, indent=1))
    r = train_then_test(d, ["--config", str(d / "config.json")], args.epochs, args.test, d / "train.log")
    if "final_task_weights" not in r:  # what the strategy learned, from the last epoch's record
        last = json.loads((d / "history.json").read_text())[-1]
        r["final_task_weights"] = last.get("balance", {})
        r["val_gates"] = last.get("val", {}).get("gates", {})
        (d / "test.json").write_text(json.dumps(r, indent=2))
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_sweep_arguments(ap, out="runs/mtl", epochs=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", nargs="*", help="run only the variants whose name contains one of these")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = [n for n in VARIANTS if not args.only or any(o in n for o in args.only)]
    with ThreadPoolExecutor(args.jobs) as pool:
        results = dict(zip(names, pool.map(lambda n: run(out, n, VARIANTS[n][1], args), names), strict=True))

    print(f"MTFL test (2,995 faces), {args.epochs}-epoch recipe, seed {args.seed}, weights selected on validation\n")
    print("| group | variant | mean error (%) | failure (%) | gender | smile | glasses | pose |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, r in results.items():
        a = {} if _no_attribute_labels(VARIANTS[name][1]) else r["attributes"]  # heads never trained
        cells = " | ".join(f"{a[t]:.1f}" if t in a else "–" for t in ("gender", "smile", "glasses", "pose"))
        print(f"| {VARIANTS[name][0]} | {name} | {r['nme']:.2f} | {r['failure_rate']:.2f} | {cells} |")
    learned = {n: r["final_task_weights"] for n, r in results.items() if set(r["final_task_weights"].values()) != {1.0}}
    if learned:
        print("\nTask weights at the last epoch (multipliers on λ):\n")
        tasks = list(next(iter(learned.values())))
        print("| variant | " + " | ".join(tasks) + " |")
        print("| --- |" + " --- |" * len(tasks))
        for n, w in learned.items():
            print(f"| {n} | " + " | ".join(f"{w[t]:.2f}" for t in tasks) + " |")
    gated = {n: r["val_gates"] for n, r in results.items() if r["val_gates"]}
    for n, g in gated.items():
        print(f"\n{n}: mean gate weight per expert on validation faces\n")
        print("| task | " + " | ".join(f"expert {i}" for i in range(len(next(iter(g.values()))))) + " |")
        print("| --- |" + " --- |" * len(next(iter(g.values()))))
        for t, w in g.items():
            print(f"| {t} | " + " | ".join(f"{v:.2f}" for v in w) + " |")
    (out / "mtl_experiments.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
