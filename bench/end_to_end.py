"""End to end on MTFL test: Haar detector → crop → landmarks, against the ground-truth crop.

    .venv/bin/python bench/end_to_end.py [--weights W] [--flip-test] [--json bench/results/end_to_end.json]
    .venv/bin/python bench/end_to_end.py --weights runs/R/best.safetensors --validation

``--validation`` scores the held-out validation split of the run that made ``--weights`` (the recipe
its card records) instead of MTFL test, so runs can be chosen on end-to-end accuracy without
looking at the test set.

Protocol (as the peers in issue 5 were measured): each 150×150 AFLW test image is padded on every
side with a replicated border of half its size, so the detector has background. A face counts as
found when a detection's box contains the annotated landmarks' centre (largest score wins).
Error = mean of the 5 point distances / the distance between the two eye landmarks. Printed for
refine = 0 (crop from the calibrated detector box only) and refine = 1 (re-crop once from the
predicted landmarks) and refine = 2, beside the same weights on ground-truth landmark crops.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from common import found_index, pad
from tqdm import tqdm

from facemtl.config import TrainConfig
from facemtl.data.mtfl import read_mtfl
from facemtl.engine import train_val_samples
from facemtl.imageio import read_image
from facemtl.inference import FaceAnalyzer
from facemtl.metrics import point_errors
from facemtl.weights import DEFAULT_WEIGHTS, card_path, load_model


def validation_samples(weights: str | Path) -> list:
    """The faces a training run held out for model selection (its card records the recipe)."""
    cfg = TrainConfig.from_dict(json.loads(card_path(weights).read_text())["training"]["config"])
    return train_val_samples(cfg)[2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", default=None)
    ap.add_argument("--annotations", default="../shared/data/MTFL/testing.txt")
    ap.add_argument("--validation", action="store_true", help="score the run's validation split, not --annotations")
    ap.add_argument("--flip-test", action="store_true", help="average each prediction with the mirror image's")
    ap.add_argument("--json", default=None)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model(args.weights)
    analyzer = FaceAnalyzer(model, refine=0, flip_test=args.flip_test)
    spec = model.config.tasks.landmarks
    samples = validation_samples(args.weights or DEFAULT_WEIGHTS) if args.validation else read_mtfl(args.annotations)
    name = "validation split" if args.validation else Path(args.annotations).name
    gt, pred_gt, found = [], [], []
    passes: list[list[np.ndarray]] = [[], [], []]  # after refine = 0, 1, 2; NaN where not found
    det_time = 0.0
    for s in tqdm(samples, desc="faces", mininterval=10):
        img, border = pad(read_image(s.image))
        truth = s.landmarks + border
        gt.append(truth)
        pred_gt.append(analyzer.recrop(img, truth[None])[0][0])
        t = time.perf_counter()
        dets = analyzer.detector.detect(img)
        det_time += time.perf_counter() - t
        i = found_index(dets, truth)
        found.append(i is not None)
        if i is None:
            for p in passes:
                p.append(np.full_like(truth, np.nan))
            continue
        lm, _ = analyzer.predict_boxes(img, [analyzer.crop_box(dets[i])])
        passes[0].append(lm[0])
        for p in passes[1:]:
            lm, _ = analyzer.recrop(img, lm)
            p.append(lm[0])
    gt, found = np.stack(gt), np.array(found)
    e_gt = point_errors(np.stack(pred_gt), gt, spec).mean(1)
    e0, e1, e2 = (point_errors(np.stack(p)[found], gt[found], spec).mean(1) for p in passes)
    res = {
        "faces": len(samples),
        "found": int(found.sum()),
        "detection_rate": float(found.mean() * 100),
        "nme_gt_crop_all": float(e_gt.mean() * 100),
        "nme_gt_crop_found": float(e_gt[found].mean() * 100),
        "nme_detector_refine0": float(e0.mean() * 100),
        "nme_detector_refine1": float(e1.mean() * 100),
        "nme_detector_refine2": float(e2.mean() * 100),
        "failure_rate_refine1": float((e1 > 0.1).mean() * 100),
        "failure_rate_refine2": float((e2 > 0.1).mean() * 100),
        "detector_ms_per_image": det_time / len(samples) * 1e3,
    }
    rows = {
        "ground-truth landmarks (all faces)": e_gt,
        "ground-truth landmarks (faces the detector found)": e_gt[found],
        "Haar box (refine = 0)": e0,
        "Haar box + 1 re-crop (refine = 1)": e1,
        "Haar box + 2 re-crops (refine = 2, the default)": e2,
    }
    print(
        f"\n{name}, padded: Haar found {res['found']}/{res['faces']} faces ({res['detection_rate']:.1f} %), {res['detector_ms_per_image']:.1f} ms/image\n"
    )
    print("| crop from | faces | mean error (%) | failure rate (%) |")
    print("| --- | --- | --- | --- |")
    for label, e in rows.items():
        print(f"| {label} | {len(e)} | {e.mean() * 100:.2f} | {(e > 0.1).mean() * 100:.2f} |")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
