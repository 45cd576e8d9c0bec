"""Fit the detector-box → landmark-box rule (facemtl.detection.BoxRule) on MTFL training faces.

    python scripts/calibrate_detector.py --annotations ../shared/data/MTFL/training.txt --limit 4000 [--detector haar]

For each face the detector finds (the detection whose box contains the annotated landmarks'
centre, largest if several), it records the landmark box's centre offset and its side as
fractions of the detector box, per detection kind (mirrored profiles are flipped back), and prints
the medians to paste into the detector's module (``HAAR_BOX_RULES``, ``NET_BOX_RULES``,
``YUNET_BOX_RULES``). Training faces only: the test set is never used to tune anything.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from tqdm import tqdm

from facemtl.data.mtfl import read_mtfl
from facemtl.detection import create_detector
from facemtl.geometry import crop_box_from_landmarks
from facemtl.imageio import read_image


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--annotations", required=True)
    ap.add_argument("--limit", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--detector", default="haar", help="facemtl, facemtl:WEIGHTS, haar or yunet:PATH")
    args = ap.parse_args()
    samples = read_mtfl(args.annotations)
    order = np.random.default_rng(args.seed).permutation(len(samples))[: args.limit]
    det = create_detector(args.detector)
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
    print(json.dumps(rules))


if __name__ == "__main__":
    main()
