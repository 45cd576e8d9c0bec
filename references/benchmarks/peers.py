"""facemtl against the landmark tools users pick instead: same images, same metric, same run.

    bash references/benchmarks/setup_peers.sh                 # once: .venv-bench with dlib, MediaPipe, MTCNN
    .venv-bench/bin/python references/benchmarks/peers.py     # about 15 min on 2 cores; --limit N for a quick pass

Prints Markdown tables and writes references/benchmarks/results/peers.md, references/benchmarks/results/peers.json and the
scaling plot docs/peers_scaling.png. A peer that is not installed is skipped with a message.

Accuracy protocol (MTFL test, 2,995 AFLW faces): each 150×150 test image is padded on every side
with a replicated border of half its size, so every detector has background around the face.
Each method runs its own detector on the padded image; a face counts as found when a detection's
box contains the centre of the annotated landmarks' box (the surest such detection wins).
Error = mean of the 5 point distances / the distance between the two annotated eyes, in %;
failure = error > 10 %. 68-point and mesh peers are reduced to MTFL's 5 points: dlib eyes = mean
of points 36–41 / 42–47, nose 30, mouth 48 / 54; MediaPipe eyes = iris centres 468 / 473, nose 1,
mouth 61 / 291. All coordinates are 0-based pixel centres. MediaPipe's normalised coordinates
times the image size already are: shifting them by −0.5 px raises its error from 5.33 % to 6.02 %
on the first 600 faces, so x·W and y·H are used as they are.

"Landmark step alone" gives each method that accepts a face box a box made from the annotations,
framed the way that method was trained: facemtl's crop rule (the crop `facemtl evaluate` uses);
for dlib's shape predictor, a box mapped from the landmark box by the median offset and scale of
dlib's own detections on 1,000 MTFL *training* faces.

Speed: one thread for every method where it can be set (torch, OpenCV, ONNX Runtime; dlib is
single-threaded), and the whole process pinned to one CPU core (``--all-cores`` to leave it free), so
that MediaPipe's graph, which runs its own threads, is held to one core too. Medians of repeated
runs after warm-up.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from facemtl.analysis.analyzer import FaceAnalyzer
from facemtl.analysis.landmarker import Landmarker
from facemtl.analysis.options import DEFAULT_VIEWS
from facemtl.analysis.views import SHIFT_VIEWS
from facemtl.core.geometry import crop_box_from_landmarks
from facemtl.core.images import read_image
from facemtl.core.tasks import MTFL5
from facemtl.data.mtfl import read_mtfl
from facemtl.detection import Detection, HaarFaceDetector, NetFaceDetector, YuNetDetector
from facemtl.evaluation.benchmarks import DATA, Report, found_index, median_ms, one_thread, pad
from facemtl.evaluation.metrics import point_errors
from facemtl.models.onnx_runtime import OnnxDetectorNet, OnnxNet
from facemtl.models.pretrained import DEFAULT_DETECTOR, DEFAULT_LANDMARKS, get_pretrained
from facemtl.models.weights import load_model

ROOT = Path(__file__).resolve().parents[2]
Points = np.ndarray  # (5, 2) MTFL order, 0-based pixel centres
Found = tuple[tuple[float, float, float, float], float, Points]  # box x1 y1 x2 y2, score, points
Face = tuple[np.ndarray, np.ndarray, Points]  # padded test image (BGR), the same in RGB, annotated points


# -- the methods: image (BGR) → every face found, with MTFL's 5 points ---------------------------


@dataclass
class Method:
    name: str
    detect: Callable[[np.ndarray], list[Found]]  # whole image: detector + landmarks
    scored: bool = True  # in the accuracy pass (False: a backend giving the same points as a scored one)


def facemtl_methods(model, onnx, det_model, det_onnx, yunet: str | None) -> list[Method]:
    """facemtl as users run it (its own detector → landmarks), as ``predict`` does by default, without
    the shift test, with the flip test and with every face merged with the mirror view
    (``mirror="always"``), in
    PyTorch and (ONNX given) ONNX Runtime; its landmarks on Haar's boxes and on YuNet's (the
    teacher, a reference); and the two detectors alone, scored on their own 5 points. Both
    backends give the same points (tests), so the accuracy pass scores one of them."""

    def wrap(analyzer: FaceAnalyzer) -> Callable[[np.ndarray], list[Found]]:
        return lambda img: [(f.box, f.score, f.landmarks) for f in analyzer.analyze(img)]

    def alone(det) -> Callable[[np.ndarray], list[Found]]:
        return lambda img: [(d.box, d.score, d.landmarks) for d in det.detect(img)]

    out = []
    haar = HaarFaceDetector()
    for backend, net, dnet in (("PyTorch", model, det_model), ("ONNX Runtime", onnx, det_onnx)):
        if net is None or dnet is None:
            continue
        scored = backend == "ONNX Runtime" or onnx is None
        det = NetFaceDetector(dnet)
        out.append(Method(f"facemtl ({backend})", wrap(FaceAnalyzer(net, det)), scored))
        plain = FaceAnalyzer(net, det, shift_test=0.0)
        out.append(Method(f"facemtl, no shift test ({backend})", wrap(plain), scored))
        for views in (v for v in SHIFT_VIEWS if v != DEFAULT_VIEWS):  # the other view sets, for the record
            viewed = FaceAnalyzer(net, det, shift_views=views)
            out.append(Method(f"facemtl, shift views {views} ({backend})", wrap(viewed), scored))
        out.append(Method(f"facemtl + flip test ({backend})", wrap(FaceAnalyzer(net, det, flip_test=True)), scored))
        out.append(Method(f"facemtl, mirror always ({backend})", wrap(FaceAnalyzer(net, det, mirror="always")), scored))
        out.append(Method(f"facemtl detector alone, its 5 points ({backend})", alone(det), scored))
        if scored:
            out.append(Method(f"facemtl landmarks on Haar boxes ({backend})", wrap(FaceAnalyzer(net, haar)), True))
            if yunet:
                teacher = YuNetDetector(yunet)
                out.append(Method(f"facemtl landmarks on YuNet ({backend})", wrap(FaceAnalyzer(net, teacher)), True))
                out.append(Method("YuNet alone, its 5 points (teacher)", alone(teacher), True))
    return out


def dlib_peer():
    """dlib's HOG detector at upsample 1 (the accuracy configuration) and 0 (the fast one), one
    68-point predictor for both; also the predictor on a given box, and the bare detector."""
    import dlib
    import face_recognition_models as frm

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(frm.pose_predictor_model_location())

    def five(rgb: np.ndarray, rect) -> Points:
        s = predictor(rgb, rect)
        p = np.array([(s.part(i).x, s.part(i).y) for i in range(68)], np.float64)
        return np.stack([p[36:42].mean(0), p[42:48].mean(0), p[30], p[48], p[54]])

    def method(upsample: int, scored: bool) -> Method:
        def detect(img: np.ndarray) -> list[Found]:
            rgb = np.ascontiguousarray(img[:, :, ::-1])
            rects, scores, _ = detector.run(rgb, upsample, 0.0)
            return [(rect_box(r), s, five(rgb, r)) for r, s in zip(rects, scores, strict=True)]

        return Method(f"dlib HOG (upsample {upsample}) + 68-point", detect, scored)

    def in_box(rgb: np.ndarray, box: tuple[float, float, float, float]) -> Points:
        return five(rgb, dlib.rectangle(*(round(v) for v in box)))

    return method(1, True), method(0, False), in_box, detector


def rect_box(r) -> tuple[float, float, float, float]:
    """A dlib rectangle as (x1, y1, x2, y2)."""
    return (r.left(), r.top(), r.right(), r.bottom())


def mediapipe_method() -> Method:
    import mediapipe as mp

    mesh = mp.solutions.face_mesh.FaceMesh(
        static_image_mode=True, max_num_faces=16, refine_landmarks=True, min_detection_confidence=0.5
    )
    idx = [468, 473, 1, 61, 291]

    def detect(img: np.ndarray) -> list[Found]:
        h, w = img.shape[:2]
        res = mesh.process(np.ascontiguousarray(img[:, :, ::-1]))
        out = []
        for face in res.multi_face_landmarks or []:
            p = np.array([(q.x * w, q.y * h) for q in face.landmark], np.float64)
            box = (*p.min(0), *p.max(0))  # the mesh has no detector box: its points' extent
            out.append((box, 1.0, p[idx]))
        return out

    return Method("MediaPipe face mesh", detect)


def mtcnn_method() -> Method:
    sys.path.insert(0, str(ROOT / "references/benchmarks/peers/torchvision_nms"))  # NMS stand-in, see its docstring
    from facenet_pytorch import MTCNN

    mtcnn = MTCNN(keep_all=True, device="cpu")

    def detect(img: np.ndarray) -> list[Found]:
        boxes, probs, points = mtcnn.detect(np.ascontiguousarray(img[:, :, ::-1]), landmarks=True)
        if boxes is None:
            return []
        return [(tuple(b), float(s), p.astype(np.float64)) for b, s, p in zip(boxes, probs, points, strict=True)]

    return Method("MTCNN (facenet-pytorch)", detect)


def portrait() -> np.ndarray:
    """A real portrait that matplotlib ships (Grace Hopper, public domain), BGR."""
    import matplotlib.cbook as cbook

    return cv2.imread(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


def photo_table(
    methods: list[Method], photo: np.ndarray, emit: Report, rounds: int = 5, warmup: int = 5, calls: int = 10
) -> dict[str, float]:
    """Every method on the portrait resized to 512×512: faces found and median ms, as a table. The
    methods take turns — ``rounds`` rounds in which each makes ``warmup`` untimed calls (so it runs
    warm, as on a folder of photos, not in the caches the last method left) and ``calls`` timed
    ones — so a slow spell of the machine falls on all of them rather than on whichever was being timed."""
    whole = {m.name: m.detect for m in methods}
    fm_fast = "facemtl (ONNX Runtime)" if "facemtl (ONNX Runtime)" in whole else "facemtl (PyTorch)"
    photo512 = cv2.resize(photo, (512, 512))
    emit(
        f"## Whole image: detect + landmarks on a 512×512 photo (1 thread, median of {rounds * calls}, methods taking turns)"
    )
    emit()
    emit(f"| method | faces | ms per image | {fm_fast} is … |")
    emit("| --- | --- | --- | --- |")
    times: dict[str, list[float]] = {name: [] for name in whole}
    for _ in range(rounds):
        for name, fn in whole.items():
            for _ in range(warmup):
                fn(photo512)
            for _ in range(calls):
                t = time.perf_counter()
                fn(photo512)
                times[name].append((time.perf_counter() - t) * 1e3)
    photo_ms = {name: statistics.median(v) for name, v in times.items()}
    for name, fn in whole.items():
        rel = "—" if name == fm_fast else relative(photo_ms[name] / photo_ms[fm_fast])
        emit(f"| {name} | {len(fn(photo512))} | {photo_ms[name]:.2f} | {rel} |")
    return photo_ms


def optional(name: str, build: Callable[[], object]):
    try:
        return build()
    except ImportError as e:
        print(f"skipping {name}: not installed in this environment ({e}); run references/benchmarks/setup_peers.sh")
        return None


# -- accuracy --------------------------------------------------------------------------------------


def match(found: list[Found], truth: Points) -> Points | None:
    """The points of the face the protocol counts as found (:func:`common.found_index`), if any."""
    i = found_index([Detection(box, score) for box, score, _ in found], truth)
    return None if i is None else found[i][2]


def accuracy(methods: list[Method], faces: list[Face], per_image_ms: dict[str, list[float]]) -> dict[str, np.ndarray]:
    """Per-face errors (NaN where the face was not found) for every method, on padded test images."""
    errors = {m.name: np.full(len(faces), np.nan) for m in methods}
    for i, (img, _, truth) in enumerate(tqdm(faces, desc="MTFL test, every method", mininterval=20)):
        for m in methods:
            t = time.perf_counter()
            found = m.detect(img)
            per_image_ms[m.name].append((time.perf_counter() - t) * 1e3)
            pts = match(found, truth)
            if pts is not None:
                errors[m.name][i] = point_errors(pts[None], truth[None], MTFL5).mean()
    return errors


def dlib_box_rule(detector, faces: Iterable[tuple[np.ndarray, Points]]) -> tuple[float, float, float]:
    """Median (dx, dy, scale) of dlib's detection boxes relative to the annotated landmark box,
    over ``(BGR image, annotated 5 points)`` pairs."""
    rows = []
    for img, points in tqdm(faces, desc="dlib box rule (training faces)", mininterval=20):
        lb = crop_box_from_landmarks(points, 1.0)
        rects = detector(np.ascontiguousarray(img[:, :, ::-1]), 1)
        for x1, y1, x2, y2 in map(rect_box, rects):
            if Detection((x1, y1, x2, y2), 0.0).contains(lb.cx, lb.cy):
                rows.append((((x1 + x2) / 2 - lb.cx) / lb.size, ((y1 + y2) / 2 - lb.cy) / lb.size, (x2 - x1) / lb.size))
                break
    dx, dy, sc = np.median(np.array(rows), 0)
    return float(dx), float(dy), float(sc)


def padded_faces(samples) -> Iterator[tuple[np.ndarray, Points]]:
    """MTFL faces as the padded protocol shows them: (padded BGR image, points in it)."""
    for s in samples:
        img, p = pad(read_image(s.image))
        yield img, s.landmarks + p


def dlib_box(truth: Points, rule: tuple[float, float, float]) -> tuple[float, float, float, float]:
    lb = crop_box_from_landmarks(truth, 1.0)
    dx, dy, sc = rule
    cx, cy, half = lb.cx + dx * lb.size, lb.cy + dy * lb.size, sc * lb.size / 2
    return (cx - half, cy - half, cx + half, cy + half)


def relative(ratio: float) -> str:
    """A time ratio (reference / this) in words: "2.1× faster" or "1.7× slower"."""
    return f"{ratio:.1f}× faster" if ratio >= 1 else f"{1 / ratio:.1f}× slower"


def stats(e: np.ndarray) -> dict[str, float]:
    ok = e[~np.isnan(e)]
    return {
        "found": int(len(ok)),
        "detection_rate": float(len(ok) / len(e) * 100),
        "nme": float(ok.mean() * 100) if len(ok) else float("nan"),
        "failure_rate": float((ok > 0.1).mean() * 100) if len(ok) else float("nan"),
    }


# -- speed -------------------------------------------------------------------------------------


def grid_image(faces: list[np.ndarray], n: int) -> np.ndarray:
    """n padded test faces tiled on a grid (one image, n faces)."""
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    tile = faces[0].shape[0]
    canvas = np.full((rows * tile, cols * tile, 3), 127, np.uint8)
    for k in range(n):
        r, c = divmod(k, cols)
        canvas[r * tile : (r + 1) * tile, c * tile : (c + 1) * tile] = cv2.resize(faces[k], (tile, tile))
    return canvas


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", default=None, help="facemtl landmark weights (default: the shipped ones)")
    ap.add_argument("--detector", default=str(get_pretrained(DEFAULT_DETECTOR).path), help="facemtl detector weights")
    ap.add_argument(
        "--yunet",
        default=str(ROOT.parent / "shared/tools/yunet/yunet_s_640_640.onnx"),
        help="the teacher, a reference row",
    )
    ap.add_argument("--annotations", default=str(DATA / "MTFL/testing.txt"))
    ap.add_argument("--training", default=str(DATA / "MTFL/training.txt"), help="for dlib's box rule")
    ap.add_argument("--limit", type=int, default=0, help="only the first N test faces (quick pass)")
    ap.add_argument("--rule-faces", type=int, default=1000, help="training faces for dlib's box rule")
    ap.add_argument(
        "--out", default=str(ROOT / "references/benchmarks/results/peers"), help="writes OUT.md and OUT.json"
    )
    ap.add_argument("--plot", default=str(ROOT / "docs/peers_scaling.png"))
    ap.add_argument("--all-cores", action="store_true", help="do not pin the process to one CPU core")
    ap.add_argument(
        "--photo-only", action="store_true", help="only time the 512-px photo (reads no test faces; writes nothing)"
    )
    args = ap.parse_args()
    one_thread()
    if not args.all_cores and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # before any peer starts its threads
    emit = Report()
    result: dict[str, object] = {
        "weights": {"landmarks": args.weights or DEFAULT_LANDMARKS, "detector": args.detector},
        "one_core": not args.all_cores,
    }

    fm_model = load_model(args.weights)
    onnx_net = optional("facemtl's ONNX Runtime backend", lambda: OnnxNet.from_model(fm_model, threads=1))
    det_model = load_model(args.detector)
    det_onnx = optional("facemtl's ONNX Runtime backend", lambda: OnnxDetectorNet.from_model(det_model, threads=1))
    yunet = args.yunet if Path(args.yunet).is_file() else None
    methods = facemtl_methods(fm_model, onnx_net, det_model, det_onnx, yunet)
    dlib_parts = optional("dlib", dlib_peer)
    if dlib_parts:
        methods.append(dlib_parts[0])
    methods += [m for m in (optional("MediaPipe", mediapipe_method), optional("MTCNN", mtcnn_method)) if m]
    if dlib_parts:
        methods.append(dlib_parts[1])  # upsample 0: speed tables only
    photo = portrait()
    if args.photo_only:
        photo_table(methods, photo, emit)
        return

    samples = read_mtfl(args.annotations)
    if args.limit:
        samples = samples[: args.limit]
    faces: list[Face] = []  # decoded and padded once for both accuracy passes
    for s in samples:
        img, p = pad(read_image(s.image))
        faces.append((img, np.ascontiguousarray(img[:, :, ::-1]), s.landmarks + p))

    # ---- accuracy, end to end ----
    scored = [m for m in methods if m.scored]
    per_image_ms: dict[str, list[float]] = {m.name: [] for m in scored}
    errors = accuracy(scored, faces, per_image_ms)
    all_found = np.all([~np.isnan(e) for e in errors.values()], 0)
    emit(f"## Accuracy on MTFL test, end to end ({len(samples):,} AFLW faces, padded; each method's own detector)")
    emit()
    emit(
        f"| method | found (%) | mean error (%) | failure > 10 % (%) | mean error on the {all_found.sum():,} faces all found (%) | ms per padded image |"
    )
    emit("| --- | --- | --- | --- | --- | --- |")
    acc = {}
    for m in scored:
        st = stats(errors[m.name])
        st["nme_common"] = float(errors[m.name][all_found].mean() * 100)
        st["ms_per_image_median"] = statistics.median(per_image_ms[m.name])
        acc[m.name] = st
        emit(
            f"| {m.name} | {st['detection_rate']:.1f} | {st['nme']:.2f} | {st['failure_rate']:.2f} | {st['nme_common']:.2f} | {st['ms_per_image_median']:.1f} |"
        )
    result["accuracy_end_to_end"] = acc
    result["faces"] = len(samples)
    result["faces_all_found"] = int(all_found.sum())

    # ---- accuracy and speed of the landmark step alone, boxes from the annotations ----
    emit()
    emit("## The landmark step alone (box from the annotations, framed as each method was trained; batch 1, 1 thread)")
    emit()
    analyzer = Landmarker(fm_model, refine=0)
    # step(image BGR, the same image RGB, annotated points) -> predicted points
    steps: dict[str, Callable[[np.ndarray, np.ndarray, Points], Points]] = {
        "facemtl (PyTorch)": lambda img, rgb, t: analyzer.recrop(img, t[None])[0][0],
    }
    if onnx_net is not None:
        onnx_analyzer = Landmarker(onnx_net, refine=0)
        flip_analyzer = Landmarker(onnx_net, refine=0, flip_test=True)
        steps["facemtl (ONNX Runtime)"] = lambda img, rgb, t: onnx_analyzer.recrop(img, t[None])[0][0]
        steps["facemtl + flip test (ONNX Runtime)"] = lambda img, rgb, t: flip_analyzer.recrop(img, t[None])[0][0]
    if dlib_parts:
        _, _, dlib_in_box, dlib_detector = dlib_parts
        train = read_mtfl(args.training)[: args.rule_faces]
        rule = dlib_box_rule(dlib_detector, padded_faces(train))
        result["dlib_box_rule"] = {"dx": rule[0], "dy": rule[1], "scale": rule[2]}
        # dlib reads RGB: converted once per image, outside the timing (facemtl's time includes its
        # own gray conversion and crop)
        steps["dlib 68-point shape predictor"] = lambda img, rgb, t: dlib_in_box(rgb, dlib_box(t, rule))
    step_err = {k: [] for k in steps}
    step_ms = {k: [] for k in steps}
    # one method at a time over every face: interleaving them face by face let each method's
    # timing pay for the others' cache and allocator churn (dlib's predictor: 1.34 ms interleaved,
    # 0.87 ms in its own pass)
    for name, fn in steps.items():
        for img, rgb, truth in tqdm(faces, desc=f"landmark step: {name}", mininterval=20):
            fn(img, rgb, truth)  # warm
            t = time.perf_counter()
            pts = fn(img, rgb, truth)
            step_ms[name].append((time.perf_counter() - t) * 1e3)
            step_err[name].append(point_errors(pts[None], truth[None], MTFL5).mean())
    ref = "dlib 68-point shape predictor" if "dlib 68-point shape predictor" in steps else None
    emit(
        "| method | mean error (%) | failure > 10 % (%) | ms per face (median, crop + network) | speed vs dlib's predictor |"
    )
    emit("| --- | --- | --- | --- | --- |")
    step_res = {}
    for name in steps:
        e = np.array(step_err[name])
        ms = statistics.median(step_ms[name])
        step_res[name] = {
            "nme": float(e.mean() * 100),
            "failure_rate": float((e > 0.1).mean() * 100),
            "ms_per_face": ms,
        }
        ratio = relative(statistics.median(step_ms[ref]) / ms) if ref and name != ref else "—"
        emit(f"| {name} | {e.mean() * 100:.2f} | {(e > 0.1).mean() * 100:.2f} | {ms:.3f} | {ratio} |")
    result["landmark_step"] = step_res

    # ---- whole image on a 512×512 photo ----
    emit()
    result["photo_512_ms"] = photo_table(methods, photo, emit)
    whole = {m.name: m.detect for m in methods}

    # ---- facemtl batched throughput ----
    emit()
    emit("## facemtl network throughput by batch size (1 thread, faces/s)")
    emit()
    s = fm_model.config.input_size
    batch_sizes = [1, 2, 4, 8, 16, 32, 64, 128, 256]
    nets: dict[str, Callable[[torch.Tensor], object]] = {"PyTorch eager": fm_model.eval()}
    if onnx_net is not None:
        nets["ONNX Runtime"] = onnx_net
    emit("| batch | " + " | ".join(nets) + " |")
    emit("| --- |" + " --- |" * len(nets))
    throughput: dict[str, dict[int, float]] = {k: {} for k in nets}
    with torch.inference_mode():
        for b in batch_sizes:
            x = torch.randn(b, fm_model.config.channels, s, s)
            for k, net in nets.items():
                ms = median_ms(lambda net=net, x=x: net(x), repeats=5, number=max(1, 64 // b), warmup=3)
                throughput[k][b] = b / ms * 1e3
            emit(f"| {b} | " + " | ".join(f"{throughput[k][b]:,.0f}" for k in nets) + " |")
    result["throughput_faces_per_s"] = throughput

    # ---- scaling: faces per image, image size ----
    tiles = [pad(read_image(x.image))[0] for x in read_mtfl(args.annotations)[:16]]
    counts = [1, 2, 4, 8, 16]
    sides = [256, 512, 1024, 2048]
    scale_faces: dict[str, dict[int, float]] = {k: {} for k in whole}
    scale_size: dict[str, dict[int, float]] = {k: {} for k in whole}
    found_faces: dict[str, dict[int, int]] = {k: {} for k in whole}
    for n in counts:
        img = grid_image(tiles, n)
        for k, fn in whole.items():
            scale_faces[k][n] = median_ms(lambda fn=fn, img=img: fn(img), repeats=5, warmup=1)
            found_faces[k][n] = len(fn(img))
    for side in sides:
        img = cv2.resize(photo, (side, side), interpolation=cv2.INTER_AREA if side < 512 else cv2.INTER_LINEAR)
        for k, fn in whole.items():
            scale_size[k][side] = median_ms(lambda fn=fn, img=img: fn(img), repeats=3 if side > 1024 else 5, warmup=1)
    emit()
    emit(
        f"## Whole-image time (ms) by number of faces ({tiles[0].shape[0]}-px padded test faces tiled in one image; faces found in brackets)"
    )
    emit()
    emit("| method | " + " | ".join(f"{n} face{'s' * (n > 1)}" for n in counts) + " |")
    emit("| --- |" + " --- |" * len(counts))
    for k in whole:
        emit(f"| {k} | " + " | ".join(f"{scale_faces[k][n]:.1f} ({found_faces[k][n]})" for n in counts) + " |")
    emit()
    emit("## Whole-image time (ms) by image size (the portrait resized to a square)")
    emit()
    emit("| method | " + " | ".join(f"{x}²" for x in sides) + " |")
    emit("| --- |" + " --- |" * len(sides))
    for k in whole:
        emit(f"| {k} | " + " | ".join(f"{scale_size[k][x]:.1f}" for x in sides) + " |")
    result["scaling_faces_ms"] = scale_faces
    result["scaling_faces_found"] = found_faces
    result["scaling_size_ms"] = scale_size

    md, js = emit.save(args.out, result)
    plot(args.plot, counts, sides, batch_sizes, scale_faces, scale_size, throughput)
    print(f"\nwrote {md}, {js}, {args.plot}")


def plot(path, counts, sides, batch_sizes, scale_faces, scale_size, throughput) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 3, figsize=(15, 4.2))
    for k in scale_faces:
        style = "-o" if k.startswith("facemtl") else "--s"
        ax[0].plot(counts, [scale_faces[k][n] for n in counts], style, label=k, ms=4)
        ax[1].plot(sides, [scale_size[k][x] for x in sides], style, label=k, ms=4)
    for k, v in throughput.items():
        ax[2].plot(batch_sizes, [v[b] for b in batch_sizes], "-o", label=f"facemtl network, {k}", ms=4)
    ax[0].set(
        xlabel="faces in the image", ylabel="ms per image (1 thread)", yscale="log", xscale="log", title="time vs faces"
    )
    ax[1].set(
        xlabel="image side (px)",
        ylabel="ms per image (1 thread)",
        yscale="log",
        xscale="log",
        title="time vs image size",
    )
    ax[2].set(xlabel="batch size", ylabel="faces / s (1 thread)", xscale="log", title="facemtl batched throughput")
    for a in ax:
        a.grid(alpha=0.3, which="both")
    ax[0].legend(fontsize=7)
    ax[2].legend(fontsize=7)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)


if __name__ == "__main__":
    main()
