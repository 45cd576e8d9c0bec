"""Face detection on crowded photos the detectors never trained on, against the teacher.

    .venv/bin/python references/benchmarks/crowd.py [--photos 40] [--json references/benchmarks/results/crowd.json] [--picture docs/crowd.jpg]
    .venv/bin/python references/benchmarks/crowd.py --pool validation --detector facemtl facemtl:runs/R/best.safetensors

``--pool validation`` composes the crowds from the photos the shipped detector's training run held
out instead (``--held-out-by`` names another run; a retrained detector that keeps the recipe's
photos file, fraction and seed holds out the same photos): how detectors are compared without
reading the test crowds. ``--detector`` lists the facemtl weights to score side by side.

No crowd photos can be brought onto these machines, so the crowds are composed — from photos no
facemtl model trained on: MTFL *test* (AFLW) images and CelebA's *val* partition, scaled so their
faces are ~14 to ~110 px and scattered without overlap over a blurred photo background, 640×480.
The reference faces are the teacher's (YuNet 2023mar at full resolution, score ≥ 0.6). Recall =
reference faces ≥ 24 px that a detector finds (IoU ≥ 0.5); precision = its detections that match
a reference face (one matching a teacher face under 24 px counts neither way). Every detector
runs on one thread; facemtl's at its defaults (the input side from the photo), at its weights' own
side (352, the default until 2026-12), asked for faces of ≥ 24 px (``min_face=24``: the input side that
brings them to the network's ``smallest_face``) and at the photo's own side (640); ``--sides``, ``--thresholds`` and ``--small-thresholds`` (boxes under
``smallest_face`` on the network input) add rows. A second table gives facemtl's recall by face
size *on the network input* at several input sides: the measurement behind the weights'
``smallest_face``. On ``--pool validation`` a third scores every row on the held-out photos whole
(false detections, recall of their faces), which crowds do not measure.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from facemtl.core.images import read_image
from facemtl.data.celeba import celeba_photos
from facemtl.data.mtfl import read_mtfl
from facemtl.detection import (
    Detection,
    FaceDetector,
    NetFaceDetector,
    box_iou,
    create_detector,
    longer_sides,
    match_detections,
)
from facemtl.evaluation.benchmarks import detector_held_out, detector_label, one_thread

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"
MIN_FACE = 24.0


def asked(label: str) -> str:
    """The row of a facemtl detector asked for faces of ``MIN_FACE`` px and more."""
    return f"{label}, min_face {MIN_FACE:.0f} (input side from it)"


def compose_crowd(rng: np.random.Generator, pool: list[Path], size=(640, 480)) -> np.ndarray:
    """One crowd: a blurred photo as background, then photos scattered without overlap."""
    w, h = size
    bg = read_image(pool[int(rng.integers(len(pool)))])
    canvas = cv2.GaussianBlur(cv2.resize(bg, (w, h)), (0, 0), 12)
    placed: list[tuple[int, int, int, int]] = []
    for _ in range(int(rng.integers(12, 45))):
        img = read_image(pool[int(rng.integers(len(pool)))])
        side = float(np.exp(rng.uniform(np.log(28), np.log(180))))  # photo side; its face is ~0.6 of it
        f = side / max(img.shape[:2])
        pw, ph = max(8, round(img.shape[1] * f)), max(8, round(img.shape[0] * f))
        for _ in range(30):
            x, y = int(rng.integers(0, w - pw)), int(rng.integers(0, h - ph))
            if all(x + pw <= a or a + c <= x or y + ph <= b or b + d <= y for a, b, c, d in placed):
                canvas[y : y + ph, x : x + pw] = cv2.resize(img, (pw, ph), interpolation=cv2.INTER_AREA)
                placed.append((x, y, pw, ph))
                break
    return canvas


def match(dets: list[Detection], ref: np.ndarray) -> tuple[int, int, int]:
    """Greedy IoU ≥ 0.5 matching, surest detection first: true and false positives, misses
    (reference faces under ``MIN_FACE`` neither count as missed nor make a false positive)."""
    small = longer_sides(ref) < MIN_FACE
    m = match_detections(np.array([d.box for d in dets]).reshape(-1, 4), ref, small)
    return m.true_positives, m.false_positives, m.misses


#: bins of face size (longer box side) on the network input, px
SIZE_BINS = (8, 12, 16, 20, 24, 32, 48)


def recall_by_input_size(
    crowds: list[np.ndarray], refs: list[np.ndarray], sides=(320, 480, 640), spec: str = "facemtl"
) -> dict:
    """facemtl's recall of every teacher face by its size on the network input, at several input
    sides (a face's input size is its photo size × side / 640): where the network starts to see."""
    edges = [*SIZE_BINS, np.inf]
    labels = [f"{a}–{b}" if np.isfinite(b) else f"≥ {a}" for a, b in zip(edges[:-1], edges[1:], strict=True)]
    found, total = np.zeros(len(labels)), np.zeros(len(labels))
    print("\n| facemtl input side | " + " | ".join(f"{x} px" for x in labels) + " |")
    print("| --- |" + " --- |" * len(labels))
    out: dict = {"bins": labels, "sides": {}}
    for side in sides:
        det = create_detector(spec, max_side=side)
        found[:], total[:] = 0, 0
        for img, ref in zip(crowds, refs, strict=True):
            f = min(1.0, side / max(img.shape[:2]))
            boxes = np.array([d.box for d in det.detect(img)]).reshape(-1, 4)
            m = match_detections(boxes, ref, np.zeros(len(ref), bool))
            hit = np.zeros(len(ref), bool)
            hit[m.matched[m.matched >= 0]] = True
            size = longer_sides(ref) * f
            b = np.digitize(size, edges) - 1
            ok = b >= 0  # faces under the first bin are left out
            np.add.at(total, b[ok], 1)
            np.add.at(found, b[ok], hit[ok])
        rec = [None if t == 0 else 100 * h / t for h, t in zip(found, total, strict=True)]
        out["sides"][str(side)] = {"recall": rec, "faces": total.astype(int).tolist()}
        cells = ["–" if r is None else f"{r:.0f} ({int(t)})" for r, t in zip(rec, total, strict=True)]
        print(f"| {side} | " + " | ".join(cells) + " |")
    return out


def whole_photos(methods: dict[str, FaceDetector], photos: list) -> dict:
    """Each detector on the held-out photos whole, against their teacher labels: false detections
    (overlapping no teacher face, however unsure, by IoU ≥ 0.3 — some are real faces the teacher
    missed) and recall of the sure teacher faces of ``MIN_FACE`` px and more (IoU ≥ 0.5). What
    users' ordinary photos see, which crowds do not measure."""
    images = [read_image(p.image) for p in photos]
    print(f"\nthe {len(photos)} held-out photos whole\n")
    print(f"| detector | false detections | recall, sure faces ≥ {MIN_FACE:.0f} px (%) |")
    print("| --- | --- | --- |")
    out = {}
    for name, det in methods.items():
        false = tp = fn = 0
        for img, p in zip(images, photos, strict=True):
            boxes = np.array([d.box for d in det.detect(img)]).reshape(-1, 4)
            if len(p.boxes):
                false += int((box_iou(boxes, p.boxes).max(1) < 0.3).sum())
            else:
                false += len(boxes)
            skip = p.ignore | (longer_sides(p.boxes) < MIN_FACE)
            m = match_detections(boxes, p.boxes, skip)
            tp, fn = tp + m.true_positives, fn + m.misses
        out[name] = {"false_detections": false, "recall": 100 * tp / max(tp + fn, 1)}
        print(f"| {name} | {false} | {out[name]['recall']:.1f} |")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--teacher", default=str(SHARED / "tools/yunet/yunet_s_640_640.onnx"))
    ap.add_argument("--pool", choices=("test", "validation"), default="test", help="photos the crowds are made of")
    ap.add_argument("--held-out-by", default="facemtl_det", help="with --pool validation: the detector run")
    ap.add_argument("--detector", nargs="+", default=["facemtl"], help="facemtl detectors to score (facemtl:WEIGHTS)")
    ap.add_argument("--sides", nargs="*", type=int, default=[], help="also score facemtl at these input sides")
    ap.add_argument(
        "--thresholds", nargs="*", type=float, default=[], help="also score facemtl at these score thresholds"
    )
    ap.add_argument(
        "--small-thresholds",
        nargs="*",
        type=float,
        default=[],
        help="also score the first facemtl detector at these thresholds for boxes under its smallest_face "
        "(the rest at its own)",
    )
    ap.add_argument("--json", default=None)
    ap.add_argument("--picture", default=None, help="draw the first crowd with facemtl's boxes here")
    args = ap.parse_args()
    one_thread()
    if args.pool == "test":
        pool = [s.image for s in read_mtfl(SHARED / "data/MTFL/testing.txt")]
        pool += celeba_photos(SHARED / "data/CelebA", "val")
    else:
        pool = [p.image for p in detector_held_out(args.held_out_by)]
    rng = np.random.default_rng(args.seed)
    crowds = [compose_crowd(rng, pool) for _ in range(args.photos)]
    teacher = create_detector(f"yunet:{args.teacher}")
    refs = [np.array([d.box for d in teacher.detect(c)], np.float64).reshape(-1, 4) for c in crowds]
    methods: dict[str, FaceDetector] = {}
    labels = {spec: detector_label(spec) for spec in args.detector}
    for spec, label in labels.items():
        default = create_detector(spec)
        assert isinstance(default, NetFaceDetector)
        methods[f"{label} (default: input side from the photo)"] = default
        methods[f"{label} (input side {default.max_side}, the weights' own)"] = create_detector(
            spec, max_side=default.max_side
        )
        for side in args.sides:
            methods[f"{label} (input side {side})"] = create_detector(spec, max_side=side)
        for t in args.thresholds:
            methods[f"{label} (input side {default.max_side}, threshold {t:g})"] = create_detector(
                spec, score_threshold=t
            )
        for t in args.small_thresholds if spec == args.detector[0] else ():
            methods[f"{label} (input side {default.max_side}, small-face threshold {t:g})"] = create_detector(
                spec, small_face_threshold=t
            )
        methods[asked(label)] = create_detector(spec, min_face=MIN_FACE)
        methods[f"{label} (input side 640)"] = create_detector(spec, max_side=640)
    methods["Haar (OpenCV cascades, at 640, faces ≥ 24 px)"] = create_detector("haar", max_side=640, min_face=MIN_FACE)
    n_ref = sum(int((longer_sides(r) >= MIN_FACE).sum()) for r in refs)
    print(
        f"\n{len(crowds)} composed crowds, 640×480: {sum(len(r) for r in refs)} teacher faces, {n_ref} of ≥ {MIN_FACE:.0f} px\n"
    )
    print("| detector | recall (%) | precision (%) | F1 (%) | ms per photo (median) |")
    print("| --- | --- | --- | --- | --- |")
    res: dict = {
        "photos": len(crowds),
        "teacher_faces": sum(len(r) for r in refs),
        "reference_faces": n_ref,
        "methods": {},
    }
    for name, det in methods.items():
        tp = fp = fn = 0
        ms = []
        for img, ref in tqdm(list(zip(crowds, refs, strict=True)), desc=name, leave=False, disable=None):
            t = time.perf_counter()
            dets = det.detect(img)
            ms.append((time.perf_counter() - t) * 1e3)
            a, b, c = match(dets, ref)
            tp, fp, fn = tp + a, fp + b, fn + c
        r = {"recall": 100 * tp / max(tp + fn, 1), "precision": 100 * tp / max(tp + fp, 1), "ms": statistics.median(ms)}
        r["f1"] = 2 * r["recall"] * r["precision"] / max(r["recall"] + r["precision"], 1e-9)
        res["methods"][name] = r
        print(f"| {name} | {r['recall']:.1f} | {r['precision']:.1f} | {r['f1']:.1f} | {r['ms']:.1f} |")
    res["pool"] = args.pool
    if args.pool == "validation":
        res["held_out_photos"] = whole_photos(methods, detector_held_out(args.held_out_by))
    res["recall_by_input_size"] = recall_by_input_size(crowds, refs, spec=args.detector[0])
    if args.picture:
        img = crowds[0].copy()
        for b in refs[0]:
            cv2.rectangle(img, (round(b[0]), round(b[1])), (round(b[2]), round(b[3])), (0, 0, 255), 1, cv2.LINE_AA)
        det = methods[asked(labels[args.detector[0]])]
        assert isinstance(det, NetFaceDetector)
        for d in det.detect(crowds[0]):
            x1, y1, x2, y2 = (round(v) for v in d.box)
            cv2.rectangle(img, (x1, y1), (x2, y2), (80, 220, 80), 2, cv2.LINE_AA)
            for x, y in d.landmarks:
                cv2.circle(img, (round(x), round(y)), 1, (0, 255, 255), -1)
        cv2.imwrite(args.picture, img, [cv2.IMWRITE_JPEG_QUALITY, 88])
        print(
            f"\nwrote {args.picture} (teacher: thin red; facemtl with min_face {MIN_FACE:.0f}: green, with its 5 points)"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
