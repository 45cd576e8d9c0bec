"""Calibrate a detector on training data: the detector-box → landmark-box rule
(facemtl.detection.BoxRule) on MTFL training faces and, for facemtl's own network, the score
threshold on its training run's validation scenes.

    python scripts/calibrate_detector.py --annotations ../shared/data/MTFL/training.txt --limit 4000 [--detector haar]
    python scripts/calibrate_detector.py --annotations ../shared/data/MTFL/training.txt \
        --detector facemtl:runs/det/best.safetensors --thresholds 0.3 0.4 0.5 0.6 --out runs/det/calibrated.safetensors

For each face the detector finds (the detection whose box contains the annotated landmarks'
centre, largest if several), it records the landmark box's centre offset and its side as
fractions of the detector box, per detection kind (mirrored profiles are flipped back), and prints
the medians (for Haar and YuNet, the values of ``HAAR_BOX_RULES`` / ``YUNET_BOX_RULES``).
``--thresholds`` scores recall and precision on the validation scenes of the run that made the
weights (its card records the recipe) and keeps the best F1 (``--score-threshold`` records one chosen
elsewhere instead, with ``--chosen-on`` saying where); ``--max-side`` records the default
input side (chosen beforehand on crowds of the run's held-out photos) and fits the box rule at it;
``--small-face-threshold`` records the threshold of boxes under the weights' ``smallest_face``
(chosen on the same crowds and photos). ``--out`` writes the weights with the
fitted rule and threshold in their config (same tensors, card plus a ``calibration`` record), so
the detector uses them by default. Training faces and validation scenes only: the test set is
never used to tune anything.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from facemtl.core.geometry import crop_box_from_landmarks
from facemtl.core.images import read_image
from facemtl.data.mtfl import read_mtfl
from facemtl.detection import NetFaceDetector, create_detector
from facemtl.detection.base import FaceDetector
from facemtl.models import FaceDetectorNet, create_model
from facemtl.models.weights import card_path, load_model, save_model
from facemtl.training.config import TrainConfig


def fit_box_rules(det: FaceDetector, annotations: str, limit: int, seed: int) -> dict[str, list[float]]:
    """Median (dx, dy, scale) per detection kind over ``limit`` random faces of ``annotations``."""
    samples = read_mtfl(annotations)
    order = np.random.default_rng(seed).permutation(len(samples))[:limit]
    stats: dict[str, list[tuple[float, float, float]]] = {}
    found = 0
    for i in tqdm(order, desc="detecting"):
        s = samples[i]
        lm_box = crop_box_from_landmarks(s.landmarks, 1.0)
        hits = [d for d in det.detect(read_image(s.image)) if d.contains(lm_box.cx, lm_box.cy)]
        if not hits:
            continue
        found += 1
        d = max(hits, key=(lambda d: d.box[2] - d.box[0]) if det.name == "haar" else (lambda d: d.score))
        x1, y1, x2, y2 = d.box
        w, h = x2 - x1, y2 - y1
        dx = (lm_box.cx - (x1 + x2) / 2) / w
        if d.kind.endswith("mirrored"):
            dx = -dx
        stats.setdefault(d.kind.replace("_mirrored", ""), []).append(
            (dx, (lm_box.cy - (y1 + y2) / 2) / h, lm_box.size / w)
        )
    print(f"found {found}/{len(order)} faces")
    rules = {}
    for kind, v in sorted(stats.items()):
        a = np.array(v)
        med = np.median(a, axis=0)
        spread = np.percentile(a, 75, axis=0) - np.percentile(a, 25, axis=0)
        rules[kind] = [round(float(x), 4) for x in med]
        print(
            f"{kind:8s} n={len(a):5d}  dx {med[0]:+.4f}  dy {med[1]:+.4f}  scale {med[2]:.4f}   (IQR {spread.round(4).tolist()})"
        )
    return rules


def choose_threshold(weights: Path, thresholds: list[float]) -> tuple[float, dict[str, dict[str, float]]]:
    """The threshold of best F1 on the validation scenes of the run that made ``weights``."""
    from facemtl.models.weights import load_model
    from facemtl.training.jobs.detector import DetectorJob

    cfg = TrainConfig.from_dict(json.loads(card_path(weights).read_text())["training"]["config"])
    job = DetectorJob(replace(cfg, init=""))  # its data and scoring; the weights are loaded just below
    job.model = load_model(weights)  # type: ignore[assignment]
    val = job.prepare_data(progress=False).val
    if val is None:
        raise SystemExit(f"{weights}: its run held out no validation photos")
    scores = {}
    for t in thresholds:
        r = job.validate(val, score_threshold=t).record  # type: ignore[arg-type]
        f1 = 2 * r["recall"] * r["precision"] / max(r["recall"] + r["precision"], 1e-9)
        scores[str(t)] = {"recall": r["recall"], "precision": r["precision"], "f1": f1}
        print(f"threshold {t}: recall {r['recall']:.1f} precision {r['precision']:.1f} F1 {f1:.1f}")
    best = max(thresholds, key=lambda t: scores[str(t)]["f1"])
    return best, scores


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--annotations", required=True)
    ap.add_argument("--limit", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--detector", default="haar", help="facemtl, facemtl:WEIGHTS, haar or yunet:PATH")
    ap.add_argument("--thresholds", type=float, nargs="+", help="facemtl:WEIGHTS only: score thresholds to choose from")
    ap.add_argument("--out", type=Path, help="facemtl:WEIGHTS only: write the calibrated weights here")
    ap.add_argument(
        "--score-threshold",
        type=float,
        help="facemtl:WEIGHTS only: the threshold to record instead of --thresholds' best F1 (say where it was chosen "
        "with --chosen-on); --thresholds are still scored on the validation scenes for the record",
    )
    ap.add_argument("--chosen-on", help="where --score-threshold was chosen (recorded in the card)")
    ap.add_argument(
        "--small-face-threshold",
        type=float,
        help="facemtl:WEIGHTS only: the threshold for boxes under the weights' smallest_face to record "
        "(say where it was chosen with --small-chosen-on)",
    )
    ap.add_argument("--small-chosen-on", help="where --small-face-threshold was chosen (recorded in the card)")
    ap.add_argument(
        "--max-side",
        type=int,
        help="facemtl:WEIGHTS only: the default input side to record (chosen on crowds of held-out photos, "
        "references/benchmarks/crowd.py --pool validation); the box rule is fitted at it",
    )
    ap.add_argument(
        "--max-side-chosen-on",
        default="crowds of the run's held-out photos (references/benchmarks/crowd.py --pool validation)",
        help="where --max-side was chosen (recorded in the card)",
    )
    args = ap.parse_args()
    det = create_detector(args.detector, max_side=args.max_side)
    # the arguments are checked before the box rule's minutes of detection, not after
    calibrating = (
        args.out
        or args.thresholds
        or args.max_side
        or args.score_threshold is not None
        or args.small_face_threshold is not None
    )
    kind, _, weights = args.detector.partition(":")
    if calibrating and (kind != "facemtl" or not weights or not isinstance(det, NetFaceDetector)):
        raise SystemExit(
            "--thresholds, --score-threshold, --small-face-threshold, --max-side and --out calibrate a facemtl "
            "detector file: "
            "--detector facemtl:WEIGHTS"
        )
    if args.score_threshold is not None and not args.chosen_on:
        raise SystemExit("--score-threshold needs --chosen-on: where the threshold was chosen")
    if args.small_face_threshold is not None and not args.small_chosen_on:
        raise SystemExit("--small-face-threshold needs --small-chosen-on: where the threshold was chosen")
    rules = fit_box_rules(det, args.annotations, args.limit, args.seed)
    print(json.dumps(rules))
    if not calibrating:
        return
    assert isinstance(det, NetFaceDetector)
    config = det.config.with_overrides(box_rule=tuple(rules["net"]))
    record: dict = {"box_rule": {"faces": args.annotations, "limit": args.limit, "rule": rules["net"]}}
    if args.max_side:
        config = config.with_overrides(max_side=args.max_side)
        record["max_side"] = {
            "value": args.max_side,
            "chosen_on": args.max_side_chosen_on,
        }
    if args.thresholds or args.score_threshold is not None:
        threshold, scores = choose_threshold(Path(weights), args.thresholds) if args.thresholds else (None, {})
        chosen_on = "the run's validation scenes (best F1)"
        if args.score_threshold is not None:
            threshold, chosen_on = args.score_threshold, args.chosen_on
        config = config.with_overrides(score_threshold=threshold)
        record["score_threshold"] = {
            "split": "the run's validation scenes",
            "chosen": threshold,
            "chosen_on": chosen_on,
            "scores": scores,
        }
    if args.small_face_threshold is not None:
        config = config.with_overrides(small_face_threshold=args.small_face_threshold)
        record["small_face_threshold"] = {
            "value": args.small_face_threshold,
            "applies_to": f"boxes under smallest_face ({config.smallest_face:g} px) on the network input",
            "chosen_on": args.small_chosen_on,
        }
    if args.out:
        trained = load_model(weights)  # the PyTorch network (the detector above may run its ONNX export)
        assert isinstance(trained, FaceDetectorNet)
        model = create_model(config)
        model.load_state_dict(trained.state_dict())
        card = json.loads(card_path(weights).read_text())
        # a second calibration of calibrated weights keeps the records of what it does not redo
        record = card.get("calibration", {}) | record
        card = {k: v for k, v in card.items() if k not in ("format_version", "config")} | {"calibration": record}
        save_model(model, args.out, card)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
