"""Face detection on real photos of people (hands, knees, streets, groups), against the teacher.

    python scripts/label_faces.py --teacher ../shared/tools/yunet/yunet_s_640_640.onnx \
        --people ../shared/data/people --out runs/teacher/people.jsonl          # once: the teacher's faces
    .venv-bench/bin/python references/benchmarks/people.py \
        --out references/benchmarks/results/people --picture docs/people_worst.jpg

The photos are the fixed validation fifth of ``../shared/data/people`` (by file name,
:func:`facemtl.data.splits.in_validation`), which no facemtl detector trains on, each scored at its
own size. Reference faces: the teacher's (YuNet 2023mar at the photo's size, score ≥ 0.6). Faces
it is unsure of (0.3–0.6), faces it finds only on the photo enlarged twice, and faces under 24 px
count neither way: a detection on one is neither true nor false. Recall = sure teacher faces of
24 px and more found (IoU ≥ 0.5), also by size; precision = detections that match such a face among
those that match one or overlap no reference face at all (IoU < 0.3); "false per faceless photo":
detections on the photos where the teacher finds no face at any score, at either size.

Every method runs on one thread where it can be told (ONNX Runtime, OpenCV, PyTorch; dlib is
single-threaded; MediaPipe is not told). Peers (MTCNN, dlib's HOG, MediaPipe's full-range
detector) come from ``.venv-bench`` (``references/benchmarks/setup_peers.sh``); a missing one is
skipped with a line saying so. The speed table times each detector alone on one photo scaled to
0.3, 1, 3 and 12 MP, idle and with two CPU-burner processes beside it (``--busy``): facemtl at its
default (the input side from the photo), YuNet at full resolution.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from facemtl.core.images import read_image
from facemtl.data.photos import PhotoSample, read_photos
from facemtl.detection import NetFaceDetector, box_iou, create_detector, longer_sides, match_detections
from facemtl.evaluation.benchmarks import Report, burners, detector_held_out, detector_label, one_thread

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"
MIN_FACE = 24.0
SIZE_BINS = (24, 32, 64, np.inf)
MEGAPIXELS = (0.3, 1.0, 3.0, 12.0)

Boxes = np.ndarray  # (N, 4) xyxy, 0-based pixels
emit = Report()  # the printed tables, saved as OUT.md beside OUT.json


@dataclass
class Row:
    name: str
    detect: Callable[[np.ndarray], Boxes]
    speed: bool = True  # in the speed table


def facemtl_rows(spec: str, thresholds: list[float]) -> list[Row]:
    label = detector_label(spec)
    default = create_detector(spec)
    assert isinstance(default, NetFaceDetector)
    old = create_detector(spec, max_side=default.config.max_side)
    asked = create_detector(spec, min_face=MIN_FACE)

    def boxes(det) -> Callable[[np.ndarray], Boxes]:
        return lambda img: np.array([d.box for d in det.detect(img)]).reshape(-1, 4)

    return [
        Row(f"{label} (default: input side from the photo)", boxes(default)),
        Row(f"{label} (input side {default.config.max_side}, the weights' own)", boxes(old), False),
        Row(f"{label} (min_face {MIN_FACE:.0f})", boxes(asked), False),
    ] + [Row(f"{label} (threshold {t:g})", boxes(create_detector(spec, score_threshold=t)), False) for t in thresholds]


def peer_rows() -> list[Row]:
    """MTCNN, dlib's HOG detector and MediaPipe's full-range detector, where installed."""
    rows = []
    try:
        import torch

        sys.path.insert(0, str(ROOT / "references/benchmarks/peers/torchvision_nms"))  # see its docstring
        from facenet_pytorch import MTCNN

        torch.set_num_threads(1)
        mtcnn = MTCNN(keep_all=True, device="cpu")

        def mtcnn_boxes(img: np.ndarray) -> Boxes:
            b, _ = mtcnn.detect(np.ascontiguousarray(img[:, :, ::-1]))
            return np.zeros((0, 4)) if b is None else np.asarray(b, np.float64)

        rows.append(Row("MTCNN (facenet-pytorch)", mtcnn_boxes))
    except ImportError as e:
        print(f"skipping MTCNN: {e}; run references/benchmarks/setup_peers.sh")
    try:
        import dlib

        hog = dlib.get_frontal_face_detector()

        def dlib_boxes(img: np.ndarray) -> Boxes:
            rects, _, _ = hog.run(np.ascontiguousarray(img[:, :, ::-1]), 1, 0.0)
            return np.array([(r.left(), r.top(), r.right(), r.bottom()) for r in rects], np.float64).reshape(-1, 4)

        rows.append(Row("dlib HOG (upsample 1)", dlib_boxes))
    except ImportError as e:
        print(f"skipping dlib: {e}; run references/benchmarks/setup_peers.sh")
    try:
        import mediapipe as mp

        full = mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.5)

        def mediapipe_boxes(img: np.ndarray) -> Boxes:
            h, w = img.shape[:2]
            res = full.process(np.ascontiguousarray(img[:, :, ::-1]))
            out = []
            for d in res.detections or []:
                b = d.location_data.relative_bounding_box
                out.append((b.xmin * w, b.ymin * h, (b.xmin + b.width) * w, (b.ymin + b.height) * h))
            return np.array(out, np.float64).reshape(-1, 4)

        rows.append(Row("MediaPipe face detection (full range)", mediapipe_boxes))
    except ImportError as e:
        print(f"skipping MediaPipe: {e}; run references/benchmarks/setup_peers.sh")
    return rows


@dataclass
class Score:
    found: np.ndarray  # per size bin
    total: np.ndarray
    true: int = 0
    false: int = 0
    faceless_false: int = 0


def score_photo(boxes: Boxes, p: PhotoSample, s: Score) -> tuple[int, int]:
    """Adds one photo to ``s``; returns its false detections and misses."""
    sizes = longer_sides(p.boxes)
    dont_care = p.ignore | (sizes < MIN_FACE)
    m = match_detections(boxes, p.boxes, dont_care, dont_care_iou=0.3)
    # an unmatched detection overlapping no reference face (however unsure) by 0.3 is false
    overlap = box_iou(boxes, p.boxes).max(1) if len(p.boxes) else np.zeros(len(boxes))
    false = int(((m.matched < 0) & (overlap < 0.3)).sum())
    hit = np.zeros(len(p.boxes), bool)
    hit[m.matched[m.matched >= 0]] = True
    sure = ~dont_care
    b = np.digitize(sizes[sure], SIZE_BINS) - 1
    np.add.at(s.total, b, 1)
    np.add.at(s.found, b, hit[sure])
    s.true += m.true_positives
    s.false += false
    if not len(p.boxes):
        s.faceless_false += len(boxes)
    return false, int((sure & ~hit).sum())


def accuracy(rows: list[Row], photos: list[PhotoSample], images: list[np.ndarray]) -> tuple[dict, dict]:
    bins = [
        f"{a:.0f}–{b:.0f}" if np.isfinite(b) else f"≥ {a:.0f}"
        for a, b in zip(SIZE_BINS[:-1], SIZE_BINS[1:], strict=True)
    ]
    faceless = sum(1 for p in photos if not len(p.boxes))
    emit(
        f"\n{len(photos)} held-out photos of people ({faceless} where the teacher finds no face), each at its own size\n"
    )
    emit(
        f"| detector | recall ≥ {MIN_FACE:.0f} px (%) | "
        + " | ".join(f"recall {b} px (%)" for b in bins)
        + " | precision (%) | false per photo | false per faceless photo | ms per photo (median) |"
    )
    emit("| --- |" + " --- |" * (len(bins) + 5))
    out, worst = {}, {}
    for row in rows:
        s = Score(np.zeros(len(bins)), np.zeros(len(bins)))
        ms, per_photo = [], []
        for img, p in zip(images, photos, strict=True):
            t = time.perf_counter()
            boxes = row.detect(img)
            ms.append((time.perf_counter() - t) * 1e3)
            per_photo.append(score_photo(boxes, p, s))
        r = {
            "recall": 100 * s.found.sum() / max(s.total.sum(), 1),
            "recall_by_size": {b: 100 * f / t if t else None for b, f, t in zip(bins, s.found, s.total, strict=True)},
            "faces_by_size": dict(zip(bins, s.total.astype(int).tolist(), strict=True)),
            "precision": 100 * s.true / max(s.true + s.false, 1),
            "false_per_photo": s.false / len(photos),
            "false_per_faceless_photo": s.faceless_false / max(faceless, 1),
            "ms": statistics.median(ms),
        }
        out[row.name] = r
        worst[row.name] = int(np.argmax([f + m for f, m in per_photo]))
        cells = " | ".join("–" if v is None else f"{v:.1f}" for v in r["recall_by_size"].values())
        emit(
            f"| {row.name} | {r['recall']:.1f} | {cells} | {r['precision']:.1f} | {r['false_per_photo']:.2f} | "
            f"{r['false_per_faceless_photo']:.2f} | {r['ms']:.1f} |"
        )
    return out, worst


def scaled(image: np.ndarray, megapixels: float) -> np.ndarray:
    f = np.sqrt(megapixels * 1e6 / (image.shape[0] * image.shape[1]))
    return cv2.resize(image, None, fx=f, fy=f, interpolation=cv2.INTER_CUBIC if f > 1 else cv2.INTER_AREA)


def speed(rows: list[Row], photo: np.ndarray, repeats: int, busy: bool) -> dict:
    emit(
        f"\n## ms per photo, one thread (median of {repeats}, fewer past 10 s; detector alone), {'busy: two CPU burners beside it' if busy else 'idle'}\n"
    )
    emit("| detector | " + " | ".join(f"{mp:g} MP" for mp in MEGAPIXELS) + " |")
    emit("| --- |" + " --- |" * len(MEGAPIXELS))
    images = [scaled(photo, mp) for mp in MEGAPIXELS]
    procs = burners(2 if busy else 0)
    out: dict = {}
    try:
        for row in (r for r in rows if r.speed):
            times = []
            for img in images:
                row.detect(img)  # warm-up (sessions, caches)
                ms: list[float] = []
                while len(ms) < repeats and sum(ms) < 10_000:  # a slow peer at 12 MP: fewer runs
                    t = time.perf_counter()
                    row.detect(img)
                    ms.append((time.perf_counter() - t) * 1e3)
                times.append(statistics.median(ms))
            out[row.name] = dict(zip((f"{mp:g}" for mp in MEGAPIXELS), times, strict=True))
            emit(f"| {row.name} | " + " | ".join(f"{t:.1f}" for t in times) + " |")
    finally:
        for p in procs:
            p.kill()
    return out


def draw_worst(path: str, image: np.ndarray, p: PhotoSample, boxes: Boxes) -> None:
    """Teacher faces (red: sure, orange: unsure or under 24 px) and detections (green)."""
    img = image.copy()
    small = longer_sides(p.boxes) < MIN_FACE
    for b, ign, sm in zip(p.boxes, p.ignore, small, strict=True):
        colour = (0, 140, 255) if ign or sm else (0, 0, 255)
        cv2.rectangle(img, (round(b[0]), round(b[1])), (round(b[2]), round(b[3])), colour, 1, cv2.LINE_AA)
    for b in boxes:
        cv2.rectangle(img, (round(b[0]), round(b[1])), (round(b[2]), round(b[3])), (80, 220, 80), 2, cv2.LINE_AA)
    big = cv2.resize(img, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
    cv2.imwrite(path, big, [cv2.IMWRITE_JPEG_QUALITY, 90])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--labels", default=str(ROOT / "runs/teacher/people.jsonl"), help="the teacher's faces (see above)")
    ap.add_argument("--teacher", default=str(SHARED / "tools/yunet/yunet_s_640_640.onnx"))
    ap.add_argument("--detector", nargs="+", default=["facemtl"], help="facemtl detectors to score (facemtl:WEIGHTS)")
    ap.add_argument("--no-peers", action="store_true", help="leave MTCNN, dlib and MediaPipe out")
    ap.add_argument(
        "--pool",
        choices=("test", "validation"),
        default="test",
        help="test: the validation fifth no run trains on; validation: the people photos the run behind "
        "--held-out-by held out from its training part, for choosing between runs and thresholds",
    )
    ap.add_argument("--held-out-by", default="facemtl_det", help="with --pool validation: the detector run")
    ap.add_argument("--thresholds", nargs="*", type=float, default=[], help="also score facemtl at these thresholds")
    ap.add_argument("--repeats", type=int, default=7, help="speed: timed runs per photo size (0: no speed table)")
    ap.add_argument("--busy", action="store_true", help="speed: also with two CPU burners beside it")
    ap.add_argument("--out", default=None, help="write OUT.md (the printed tables, docs copy them) and OUT.json")
    ap.add_argument("--picture", default=None, help="draw the first facemtl row's worst photo here")
    args = ap.parse_args()
    if not Path(args.labels).is_file():
        raise SystemExit(f"{args.labels}: no teacher labels; make them with the command in this script's docstring")
    one_thread()
    if args.pool == "test":
        photos = read_photos(args.labels, split="val")
    else:
        photos = [p for p in detector_held_out(args.held_out_by) if p.whole]
    images = [read_image(p.image) for p in photos]
    rows = [r for spec in args.detector for r in facemtl_rows(spec, args.thresholds)]
    teacher = create_detector(f"yunet:{args.teacher}")
    rows.append(
        Row(
            "YuNet at full resolution (the teacher: the reference, not scored)",
            lambda img: np.array([d.box for d in teacher.detect(img)]).reshape(-1, 4),
        )
    )
    if not args.no_peers:
        rows += peer_rows()
    result: dict = {"photos": len(photos), "faceless": sum(1 for p in photos if not len(p.boxes))}
    result["accuracy"], worst = accuracy(rows, photos, images)
    # the speed photo: the held-out photo with the most sure faces (a group)
    group = max(range(len(photos)), key=lambda i: int((~photos[i].ignore).sum()))
    result["speed_photo"] = photos[group].image.name
    if args.repeats:
        from facemtl.detection.net import pyramid

        det = create_detector(args.detector[0])
        assert isinstance(det, NetFaceDetector)
        sides = {}
        for mp in MEGAPIXELS:
            h, w = scaled(images[group], mp).shape[:2]
            sides[f"{mp:g} MP ({w}×{h})"] = pyramid(det.input_side(h, w), det.config.max_side)
        emit("\nfacemtl's default passes (input sides): " + "; ".join(f"{k}: {v}" for k, v in sides.items()))
        result["facemtl_sides"] = sides
        result["speed_idle"] = speed(rows, images[group], args.repeats, busy=False)
    if args.busy and args.repeats:
        result["speed_busy"] = speed(rows, images[group], args.repeats, busy=True)
    if args.picture:
        i = worst[rows[0].name]
        draw_worst(args.picture, images[i], photos[i], rows[0].detect(images[i]))
        result["worst_photo"] = photos[i].image.name
        print(
            f"\nwrote {args.picture}: {photos[i].image.name} ×2 (teacher: red sure, orange unsure/small; facemtl: green)"
        )
    if args.out:
        emit.save(args.out, result)


if __name__ == "__main__":
    main()
