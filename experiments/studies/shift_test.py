"""Test-time views on ground-truth crops: each shipped landmark model on the faces its training held
out and on its test faces, one pass against the flip test, the shift test and both, with what each
costs per face.

    .venv/bin/python experiments/studies/shift_test.py [--models facemtl_mtfl_celeba facemtl_mtfl facemtl_300w68]

The shift test (``facemtl.analysis.views``) averages each crop with four copies shifted by a
fraction of its side; ``FaceAnalyzer`` and ``facemtl predict`` run it at
:data:`~facemtl.analysis.views.SHIFT_TEST`. Validation faces: the landmark-annotated faces the
model's recipe held out (its card records the recipe). Test faces: MTFL test for the 5-point
models, 300-W's fixed held-out part for the 68-point one. Paired: the mean per-face difference
from one pass and its standard error. Time: the network on one crop, eager PyTorch, one thread.
Writes OUT.md and OUT.json.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from paired_validation import paired

from facemtl.analysis.options import SHIFT_TEST
from facemtl.analysis.views import test_time_averaged
from facemtl.data.dataset import FaceDataset
from facemtl.data.mtfl import read_mtfl
from facemtl.data.w300 import read_300w_folder
from facemtl.evaluation.benchmarks import DATA, Report, median_ms, one_thread, validation_samples
from facemtl.evaluation.evaluator import evaluate
from facemtl.models import MultiTaskNet
from facemtl.models.arrays import array_net
from facemtl.models.weights import load_model

ROOT = Path(__file__).resolve().parents[2]

#: (label, flip, shift): the views compared, one pass first.
VIEWS = (
    ("one pass", False, 0.0),
    ("flip test", True, 0.0),
    ("shift test 0.03", False, 0.03),
    (f"shift test {SHIFT_TEST}", False, SHIFT_TEST),
    ("shift test 0.07", False, 0.07),
    (f"flip + shift test {SHIFT_TEST}", True, SHIFT_TEST),
)


def test_faces(num_points: int, mtfl: str, w300: str) -> tuple[str, list]:
    """The model's test faces: MTFL test (5 points) or 300-W's fixed held-out part (68)."""
    if num_points == 68:
        return "300-W held-out part", read_300w_folder(w300, split="holdout")
    return "MTFL test", read_mtfl(mtfl)


def per_face_ms(model: MultiTaskNet, flip: bool, shift: float) -> float:
    """The network with these views on one crop (eager PyTorch, the caller's threads)."""
    cfg, net = model.config, array_net(model)
    crop = np.zeros((1, cfg.channels, cfg.input_size, cfg.input_size), np.float32)
    return median_ms(lambda: test_time_averaged(net, crop, cfg.tasks, flip=flip, shift=shift))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=["facemtl_mtfl_celeba", "facemtl_mtfl", "facemtl_300w68"])
    ap.add_argument("--mtfl-test", default=str(DATA / "MTFL/testing.txt"))
    ap.add_argument("--w300", default=str(DATA / "300W_train"))
    ap.add_argument("--out", default=str(ROOT / "experiments/results/shift_test"), help="writes OUT.md and OUT.json")
    args = ap.parse_args()
    one_thread()
    report, figures = Report(), {"shift_test_default": SHIFT_TEST, "models": {}}
    report("| model | faces | views | NME % | paired vs one pass | failures > 10 % | ms per face |")
    report("|---|---|---|---|---|---|---|")
    for name in args.models:
        model = load_model(name)
        cfg = model.config
        sets = {"validation": validation_samples(name)}
        test_name, sets["test"] = test_faces(cfg.tasks.landmarks.num_points, args.mtfl_test, args.w300)
        figures["models"][name] = {"test_set": test_name}
        ms = {label: per_face_ms(model, flip, shift) for label, flip, shift in VIEWS}  # the same crop for both sets
        for split, faces in sets.items():
            data = FaceDataset.for_model(faces, cfg)
            rows, base = {}, None
            for label, flip, shift in VIEWS:
                r = evaluate(model, data, flip_test=flip, shift_test=shift).landmarks
                per_face = np.asarray(r.per_face) * 100
                base = per_face if base is None else base
                diff, se = paired(per_face, base)
                rows[label] = {
                    "nme": r.nme,
                    "difference": diff,
                    "se": se,
                    "failure_rate": r.failure_rate,
                    "ms": ms[label],
                }
                where = f"{split} ({test_name})" if split == "test" else split
                report(
                    f"| {name} | {where}, {len(faces):,} | {label} | {r.nme:.2f} | {diff:+.3f} ± {se:.3f} "
                    f"| {r.failure_rate:.2f} | {ms[label]:.2f} |"
                )
            figures["models"][name][split] = rows
    md, js = report.save(args.out, figures)
    print(f"wrote {md} and {js}")


if __name__ == "__main__":
    main()
