"""Attributes for everyone: FairFace faces end to end through ``facemtl predict``'s defaults, by age bin
and by race group.

    .venv/bin/python references/benchmarks/fairface.py [--models facemtl_mtfl_celeba] [--split val]

Each photo (FairFace's 112 × 112 "padding 0.25" crops: the face fills most of the frame) goes through
the analyzer as a user's photo would; a photo where no face is found counts as wrong for every
attribute. Scored on the fixed validation fifth of ``../shared/data/FairFace`` by default
(:func:`facemtl.data.fairface.in_validation`; ``--split all`` for every file). Gender accuracy
overall, per FairFace age bin and per race group; where a model has an ``age`` task, its exact-bin
and within-one-bin accuracy too. Writes OUT.md and OUT.json.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

from facemtl.analysis.analyzer import FaceAnalyzer
from facemtl.data.fairface import AGE_BINS, RACES, in_validation, read_fairface_labels
from facemtl.evaluation.benchmarks import DATA, Report, model_label

ROOT = Path(__file__).resolve().parents[2]


def score(analyzer: FaceAnalyzer, root: Path, split: str) -> dict:
    labels = [
        lab for lab in read_fairface_labels(root) if split == "all" or in_validation(lab.name) == (split == "val")
    ]
    has_age = "age" in analyzer.model.config.tasks.attribute_names
    hits: dict[str, list[bool]] = defaultdict(list)
    found = 0
    for lab in labels:
        faces = analyzer.analyze(root / lab.name)
        found += bool(faces)
        face = faces[0] if faces else None
        gender_ok = face is not None and face.attributes["gender"].label == ("male", "female")[lab.gender]
        groups = ["all", f"age {AGE_BINS[lab.age]}"] + ([f"race {lab.race}"] if lab.race else [])
        for g in groups:
            hits[f"gender|{g}"].append(gender_ok)
        if has_age:
            guess = AGE_BINS.index(face.attributes["age"].label) if face is not None else -10
            for g in groups:
                hits[f"age exact|{g}"].append(guess == lab.age)
                hits[f"age ±1 bin|{g}"].append(abs(guess - lab.age) <= 1)
    pct = {k: 100.0 * sum(v) / len(v) for k, v in hits.items()}
    return {"photos": len(labels), "found": 100.0 * found / max(1, len(labels)), "accuracy": pct}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=["facemtl_mtfl_celeba"])
    ap.add_argument("--root", default=str(DATA / "FairFace"))
    ap.add_argument("--split", choices=["val", "train", "all"], default="val")
    ap.add_argument("--out", default=str(ROOT / "references/benchmarks/results/fairface"))
    args = ap.parse_args()
    root = Path(args.root)
    results = {model_label(m): score(FaceAnalyzer.from_pretrained(m), root, args.split) for m in args.models}
    report = Report()
    n = next(iter(results.values()))["photos"]
    report(f"## FairFace {args.split} part ({n} photos), end to end as `facemtl predict`: accuracy %\n")
    groups = ["all", *(f"age {b}" for b in AGE_BINS), *(f"race {r}" for r in RACES)]
    metrics = sorted(
        {k.split("|")[0] for r in results.values() for k in r["accuracy"]},
        key=["gender", "age exact", "age ±1 bin"].index,
    )
    report(
        "| model | face found | "
        + " | ".join(f"{m}: {g}" if g == "all" else g for m in metrics[:1] for g in groups)
        + " |"
    )
    report("|" + " --- |" * (2 + len(groups)))
    for label, r in results.items():
        cells = [f"{r['accuracy'].get(f'gender|{g}', float('nan')):.1f}" for g in groups]
        report(f"| {label} | {r['found']:.1f} | " + " | ".join(cells) + " |")
    if len(metrics) > 1:
        report("\n## Age (models with an age head): exact bin and within one bin, %\n")
        report("| model | " + " | ".join(groups) + " |")
        report("|" + " --- |" * (1 + len(groups)))
        for label, r in results.items():
            if "age exact|all" not in r["accuracy"]:
                continue  # no age head
            for m in metrics[1:]:
                cells = [f"{r['accuracy'].get(f'{m}|{g}', float('nan')):.1f}" for g in groups]
                report(f"| {label} ({m}) | " + " | ".join(cells) + " |")
    md, js = report.save(args.out, {"split": args.split, "models": results})
    print(f"wrote {md} and {js}")


if __name__ == "__main__":
    main()
