"""facemtl's detectors on held-out scenes and on their mirror images: recall by face size, point
error, and the signed bias of boxes and points in each view's own frame.

    .venv/bin/python experiments/studies/detector_bias.py --detectors facemtl facemtl:runs/R/calibrated.safetensors \
        [--out experiments/results/detector_bias]

A detector that sees a face and its mirror image alike places them alike: its bias in the photo's
frame equals its bias in the mirror's (each view measured in its own frame). A bias that points the
same way in both frames — towards the up-left, say — comes from the network's grid, not from the
faces. Scenes are composed as in training (``facemtl.data.scenes``, no flips) from the photos the
shipped detector's training run held out (``--held-out-by``), each also mirrored; detections are
matched to the teacher's faces at IoU ≥ 0.5 (unsure faces count neither way). Boxes: centre offset
in % of the face size (√area); points: mean x and y offset and mean point error, in % of the
annotated inter-ocular distance, faces with annotated points only.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from facemtl.core.geometry import mirror_boxes, mirror_points
from facemtl.core.tasks import MTFL5
from facemtl.data.scenes import SceneDataset
from facemtl.detection import create_detector, match_detections
from facemtl.evaluation.benchmarks import Report, detector_held_out, detector_label
from facemtl.training.config import SceneConfig

#: Face size bins (√area, px on the 256-px scene).
BINS = ((0.0, 16.0), (16.0, 24.0), (24.0, 64.0), (64.0, np.inf))


def measure(det, scenes: SceneDataset) -> dict:
    """Per view (own, mirror) and size bin: faces, recall, box bias, point bias and error (%)."""
    rows: dict[str, list] = {"own": [], "mirror": []}
    faces = {"own": np.zeros(len(BINS)), "mirror": np.zeros(len(BINS))}
    for k in range(len(scenes)):
        s = scenes.compose(k)
        size = np.sqrt((s.boxes[:, 2] - s.boxes[:, 0]) * (s.boxes[:, 3] - s.boxes[:, 1]))
        b = np.digitize(size, [lo for lo, _ in BINS[1:]])
        for view, img in (("own", s.image), ("mirror", np.ascontiguousarray(s.image[:, ::-1]))):
            dets = det.detect(img)
            boxes = np.array([d.box for d in dets]).reshape(-1, 4)
            pts = np.array([d.landmarks for d in dets]).reshape(-1, 5, 2)
            truth, lms = s.boxes, s.landmarks
            if view == "mirror":  # the truth in the mirror's own frame
                w = img.shape[1]
                truth, lms = mirror_boxes(truth, w), mirror_points(lms, w, MTFL5.flip_permutation())
            m = match_detections(boxes, truth, s.ignore)
            np.add.at(faces[view], b[~s.ignore], 1)
            for d, j in enumerate(m.matched):
                if j < 0 or s.ignore[j]:
                    continue
                c = (boxes[d, :2] + boxes[d, 2:]) / 2 - (truth[j, :2] + truth[j, 2:]) / 2
                point = [np.nan] * 3
                if s.has_landmarks[j]:
                    iod = np.linalg.norm(lms[j, 0] - lms[j, 1])
                    off = pts[d] - lms[j]
                    point = [*(off.mean(0) / iod), np.linalg.norm(off, axis=1).mean() / iod]
                rows[view].append((b[j], *(c / size[j]), *point))
    out: dict = {}
    for view, r in rows.items():
        a = np.array(r).reshape(-1, 6)
        out[view] = []
        for i, (lo, hi) in enumerate(BINS):
            q = a[a[:, 0] == i]
            out[view].append(
                {
                    "bin": f"{lo:.0f}–{hi:.0f}" if np.isfinite(hi) else f"≥ {lo:.0f}",
                    "faces": int(faces[view][i]),
                    "recall": 100 * len(q) / max(faces[view][i], 1),
                    "box_dx": 100 * q[:, 1].mean(),
                    "box_dy": 100 * q[:, 2].mean(),
                    "points_dx": 100 * np.nanmean(q[:, 3]),
                    "points_dy": 100 * np.nanmean(q[:, 4]),
                    "points_nme": 100 * np.nanmean(q[:, 5]),
                }
            )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--detectors", nargs="+", default=["facemtl"])
    ap.add_argument("--held-out-by", default="facemtl_det", help="the detector run whose held-out photos are used")
    ap.add_argument("--scenes", type=int, default=300)
    ap.add_argument("--out", default=None, help="write OUT.md and OUT.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    photos = detector_held_out(args.held_out_by)
    scenes = SceneDataset(photos, SceneConfig(flip=0.0), seed=1, fixed=True, length=args.scenes)
    report = Report()
    figures: dict = {"scenes": args.scenes, "photos": len(photos), "detectors": {}}
    report(f"{args.scenes} held-out scenes (256 px, from {len(photos)} photos) and their mirror images\n")
    report(
        "| detector | view | face size (px) | faces | recall (%) | box centre x, y (% of size) "
        "| points x, y (% of eye distance) | point error (%) |"
    )
    report("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for spec in args.detectors:
        label = detector_label(spec, shipped="facemtl (shipped)")
        res = measure(create_detector(spec, max_side=256), scenes)
        figures["detectors"][label] = res
        for view, rows in res.items():
            for r in rows:
                report(
                    f"| {label} | {view} | {r['bin']} | {r['faces']} | {r['recall']:.1f} | "
                    f"{r['box_dx']:+.1f}, {r['box_dy']:+.1f} | {r['points_dx']:+.1f}, {r['points_dy']:+.1f} | "
                    f"{r['points_nme']:.1f} |"
                )
    if args.out:
        md, js = report.save(args.out, figures)
        print(f"\nwrote {md} and {js}")


if __name__ == "__main__":
    main()
