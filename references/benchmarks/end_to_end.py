"""End to end on MTFL test: detector → first crop → landmarks, for every detector in one run,
against the same weights on ground-truth crops.

    .venv/bin/python references/benchmarks/end_to_end.py [--weights W] [--detectors facemtl haar yunet:PATH] [--flip-test] \
        [--json references/benchmarks/results/end_to_end.json]
    .venv/bin/python references/benchmarks/end_to_end.py --weights runs/R/best.safetensors --validation

``--validation`` scores the held-out validation split of the run that made ``--weights`` (the recipe
its card records) instead of MTFL test, so runs can be chosen on end-to-end accuracy without
looking at the test set. ``--detector-validation DET`` scores the MTFL training faces whose photos
the detector run that made ``DET`` held out (how its first-crop rule and refine passes were
chosen; the landmark model trained on most of those faces, so only comparisons between rows mean
something there).

Protocol (as the peers in issue 5 were measured): each 150×150 AFLW test image is padded on every
side with a replicated border of half its size, so the detector has background. A face counts as
found when a detection's box contains the annotated landmarks' centre (largest score wins).
Error = mean of the 5 point distances / the distance between the two eye landmarks. For each
detector the first crop comes from its box (through its calibrated box rule) and, for detectors
that predict points (facemtl's, YuNet), from those points by the training crop rule, and centred
by the points but sized by the box rule (``hybrid``); then
refine = 1 and 2 re-crop from the predicted landmarks, and the mean of the first crop's and the
re-crops' landmarks is scored too, where the passes agree (``combine_passes``; the default: the first
crop and one re-crop). For facemtl's detectors (``facemtl``, ``facemtl:WEIGHTS``) the mirror view is
scored as well: the photo's mirror image through the same detector and passes, merged as
``FaceAnalyzer``'s ``mirror="auto"`` (its default: only faces whose passes disagree) and ``"always"`` do.
Detectors: ``facemtl`` (shipped network),
``haar`` (OpenCV cascades), ``yunet:PATH`` (the teacher, a reference; default when
../shared/tools/yunet is there).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from facemtl.analysis.analyzer import FaceAnalyzer
from facemtl.analysis.combine import MIRROR_AGREE, combine_passes, look_again, merge_views, pass_spread
from facemtl.analysis.landmarker import Landmarker
from facemtl.analysis.options import DEFAULT_VIEWS, MIRROR_MODES, SEEDS, SHIFT_TEST
from facemtl.analysis.views import SHIFT_VIEWS
from facemtl.core.images import read_image
from facemtl.core.tasks import LandmarkSpec
from facemtl.data.mtfl import read_mtfl
from facemtl.detection import NetFaceDetector, create_detector
from facemtl.evaluation.benchmarks import DATA, detector_held_out, found_index, pad, validation_samples
from facemtl.evaluation.metrics import point_errors
from facemtl.models.pretrained import DEFAULT_LANDMARKS, get_pretrained
from facemtl.models.weights import load_model

ROOT = Path(__file__).resolve().parents[2]
YUNET = ROOT.parent / "shared" / "tools" / "yunet" / "yunet_s_640_640.onnx"


def detector_validation_samples(detector_weights: str | Path, annotations: str | Path) -> list:
    """MTFL faces (of ``annotations``) whose photos a detector run held out for its validation."""
    held_out = {p.image.resolve() for p in detector_held_out(detector_weights)}
    return [s for s in read_mtfl(annotations) if s.image.resolve() in held_out]


#: What is scored per first crop: after the first crop and each re-crop, and the first crop's and one /
#: both re-crops' landmarks averaged where they agree (``combine_passes``).
PASS_KEYS = ("refine0", "refine1", "refine2", "mean1", "mean2")


def default_key(seed: str) -> str:
    """Which of :data:`PASS_KEYS` ``FaceAnalyzer`` returns with its defaults (refine=1, average):
    a box-seeded first crop keeps its last pass; one centred by the detector's points is averaged."""
    return "refine1" if seed == "box" else "mean1"


#: Agreement thresholds (fractions of the eye distance) scored for the default first crop.
AVERAGE_WITHIN_SWEEP = (0.0, 0.03, 0.05, 0.08, 0.1, float("inf"))

#: Agreement thresholds (fractions of the eye distance) scored for merging the mirror view.
MIRROR_AGREE_SWEEP = (0.0, 0.03, 0.05, 0.08, 0.1, 0.15, 0.2, float("inf"))


def with_mirror(
    passes: list[np.ndarray],
    seen: np.ndarray,
    seen_spread: np.ndarray,
    spec: LandmarkSpec,
    mode: str = "always",
    agree: float = MIRROR_AGREE,
) -> np.ndarray:
    """What ``FaceAnalyzer(mirror=mode)`` returns from the default's two passes over each face
    (first crop centred by the detector's points) and the mirror view's landmarks and pass spread
    (NaN where the mirror view did not find the face)."""
    own, spread = combine_passes(passes, spec), pass_spread(passes, spec)
    merged = ~np.isnan(seen_spread) & look_again(mode, np.ones(len(own), bool), spread)
    out = own.copy()
    out[merged] = merge_views(own[merged], seen[merged], spread[merged], seen_spread[merged], spec, agree)
    return out


def mirror_scores(
    passes: list[np.ndarray], seen: np.ndarray, seen_spread: np.ndarray, truth: np.ndarray, spec: LandmarkSpec
) -> dict:
    """The default's two passes merged with the mirror view as ``mirror="auto"`` and ``"always"``
    do, scored: error and failures (%), how many faces ``auto`` looked at again, and for
    ``always`` the error by agreement threshold (how MIRROR_AGREE was chosen)."""
    out: dict = {"found_in_mirror": int((~np.isnan(seen_spread)).sum())}
    for mode in MIRROR_MODES[1:]:
        e = point_errors(with_mirror(passes, seen, seen_spread, spec, mode), truth, spec).mean(1)
        out[mode] = {"nme": float(e.mean() * 100), "failure_rate": float((e > 0.1).mean() * 100), "errors": e}
    seeded = np.ones(len(seen_spread), bool)
    out["auto"]["looked_again"] = float(look_again("auto", seeded, pass_spread(passes, spec)).mean() * 100)
    out["always"]["by_mirror_agree"] = {
        str(a): float(point_errors(with_mirror(passes, seen, seen_spread, spec, "always", a), truth, spec).mean() * 100)
        for a in MIRROR_AGREE_SWEEP
    }
    return out


#: MTFL's head-pose classes, in label order.
POSES = ("left profile", "left", "frontal", "right", "right profile")


def by_pose(pose: np.ndarray, e_gt: np.ndarray, e_default: np.ndarray) -> dict:
    """Found faces per head-pose class: count, mean error from ground-truth crops and with the
    default first crop + one re-crop (%), and each class's share of the excess error."""
    excess = (e_default - e_gt).sum()
    return {
        name: {
            "faces": int((pose == k).sum()),
            "nme_gt_crop": float(e_gt[pose == k].mean() * 100),
            "nme_default": float(e_default[pose == k].mean() * 100),
            "share_of_excess": float((e_default - e_gt)[pose == k].sum() / excess * 100),
        }
        for k, name in enumerate(POSES)
        if (pose == k).any()
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", default=None)
    ap.add_argument("--annotations", default=str(DATA / "MTFL/testing.txt"))
    ap.add_argument("--validation", action="store_true", help="score the run's validation split, not --annotations")
    ap.add_argument("--detector-validation", metavar="DET", help="score the faces detector run DET held out")
    ap.add_argument("--detectors", nargs="+", default=None, help="detector specs (default: facemtl haar [yunet])")
    ap.add_argument("--flip-test", action="store_true", help="average each prediction with the mirror image's")
    ap.add_argument(
        "--detector-flip-test", action="store_true", help="also score facemtl's detector averaged with its mirror pass"
    )
    ap.add_argument(
        "--shift-test",
        type=float,
        default=SHIFT_TEST,
        help=f"average each crop with copies shifted by this fraction of its side (default {SHIFT_TEST}, predict's)",
    )
    ap.add_argument(
        "--shift-views",
        default=DEFAULT_VIEWS,
        choices=list(SHIFT_VIEWS),
        help=f"the shifted copies each pass sees (default {DEFAULT_VIEWS}, predict's)",
    )
    ap.add_argument("--limit", type=int, default=0, help="only the first N faces (a quick pass)")
    ap.add_argument("--json", default=None)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    specs = args.detectors or ["facemtl", "haar"] + ([f"yunet:{YUNET}"] if YUNET.is_file() else [])
    model = load_model(args.weights)
    spec = model.config.tasks.landmarks
    if args.validation:
        samples, name = validation_samples(args.weights or get_pretrained(DEFAULT_LANDMARKS).path), "validation split"
    elif args.detector_validation:
        train = Path(args.annotations).with_name("training.txt")
        samples = detector_validation_samples(args.detector_validation, train)
        name = f"{train.name} faces held out by the detector run"
    else:
        samples, name = read_mtfl(args.annotations), Path(args.annotations).name
    samples = samples[: args.limit] if args.limit else samples
    images, gt = [], []
    for s in samples:
        img, border = pad(read_image(s.image))
        images.append(img)
        gt.append(s.landmarks + border)
    gt = np.stack(gt)
    pose = np.array([s.attributes.get("pose", -1) for s in samples])
    # ground-truth crops: one pass, with the one-pass view set (evaluate's, the cards' shift-test figures)
    ref = Landmarker(model, refine=0, flip_test=args.flip_test, shift_test=args.shift_test, shift_views="plus")
    e_gt = point_errors(
        np.stack([ref.recrop(img, t[None])[0][0] for img, t in zip(images, gt, strict=True)]), gt, spec
    ).mean(1)
    res: dict = {
        "set": name,
        "landmark_weights": str(args.weights or DEFAULT_LANDMARKS),
        "faces": len(samples),
        "shift_test": args.shift_test,
        "shift_views": args.shift_views,
        "nme_gt_crop_all": float(e_gt.mean() * 100),
        "detectors": {},
    }
    rows = [("ground-truth landmarks", "—", "100.0", "—", {"refine0": e_gt})]
    detectors = []
    for det_spec in specs:
        kind = det_spec.split(":")[0]
        label = det_spec if [s.split(":")[0] for s in specs].count(kind) > 1 else kind  # two facemtl files: by path
        detectors.append((label, create_detector(det_spec)))
    if args.detector_flip_test:
        detectors.append(("facemtl, detector flip test", create_detector("facemtl", flip_test=True)))
    views = {"shift_test": args.shift_test, "shift_views": args.shift_views}
    for label, det in detectors:
        analyzers = {
            seed: FaceAnalyzer(model, det, refine=0, seed=seed, flip_test=args.flip_test, **views) for seed in SEEDS
        }
        passes = {k: [[], [], []] for k in analyzers}  # refine = 0, 1, 2; NaN where not found
        mirror = (
            FaceAnalyzer(model, det, flip_test=args.flip_test, **views)
            if isinstance(det, NetFaceDetector) and not det.flip_test
            else None
        )  # facemtl's networks, as FaceAnalyzer runs them
        seen, seen_spread = [], []  # the mirror view's landmarks of each found face, and their pass spread
        found, det_time, has_points = [], 0.0, False
        for img, truth in tqdm(list(zip(images, gt, strict=True)), desc=label, mininterval=20):
            t = time.perf_counter()
            dets = det.detect(img)
            det_time += time.perf_counter() - t
            i = found_index(dets, truth)
            found.append(i is not None)
            if mirror is not None:  # the scored face in the mirror view (NaN where it is not found there)
                only_i = np.arange(len(dets)) == i
                own, lm, spread = mirror.mirror_view(img, dets, only_i) if i is not None else (np.empty(0), None, None)
                seen.append(lm[0] if len(own) else np.full_like(truth, np.nan))
                seen_spread.append(spread[0] if len(own) else np.nan)
            for seed, an in analyzers.items():
                if i is None:
                    for p in passes[seed]:
                        p.append(np.full_like(truth, np.nan))
                    continue
                has_points |= dets[i].landmarks is not None
                lm, _ = an.landmarker.predict_boxes(img, [an.crop_box(dets[i])], 0)
                passes[seed][0].append(lm[0])
                for k, p in enumerate(passes[seed][1:], 1):
                    lm, _ = an.landmarker.recrop(img, lm, k)
                    p.append(lm[0])
        found = np.array(found)
        r = {
            "found": int(found.sum()),
            "detection_rate": float(found.mean() * 100),
            "detector_ms_per_image": det_time / len(samples) * 1e3,
            "nme_gt_crop_found": float(e_gt[found].mean() * 100),
        }
        for seed in analyzers if has_points else ["box"]:
            p = [np.stack(x)[found] for x in passes[seed]]  # per pass: (face, K, 2)
            landmarks = [*p, combine_passes(p[:2], spec), combine_passes(p, spec)]
            errors = {k: point_errors(x, gt[found], spec).mean(1) for k, x in zip(PASS_KEYS, landmarks, strict=True)}
            r[seed] = {f"nme_{k}": float(x.mean() * 100) for k, x in errors.items()}
            r[seed] |= {f"failure_rate_{k}": float((x > 0.1).mean() * 100) for k, x in errors.items()}
            r[seed]["default"] = default_key(seed)
            rows.append((label, seed, f"{r['detection_rate']:.1f}", f"{r['detector_ms_per_image']:.1f}", errors))
        if has_points:
            hybrid = [np.stack(x)[found] for x in passes["hybrid"][:2]]
            # how AVERAGE_WITHIN was chosen: the default's error (%) by agreement threshold
            r["hybrid"]["by_average_within"] = {
                str(w): float(point_errors(combine_passes(hybrid, spec, w), gt[found], spec).mean() * 100)
                for w in AVERAGE_WITHIN_SWEEP
            }
            # where the default's excess error lies: per head-pose class (MTFL's labels)
            e_default = point_errors(combine_passes(hybrid, spec), gt[found], spec).mean(1)
            r["by_pose"] = by_pose(pose[found], e_gt[found], e_default)
        res["detectors"][label] = r
        if mirror is not None:  # what FaceAnalyzer returns by default (mirror="auto"), and with "always"
            r["mirror"] = mirror_scores(hybrid, np.stack(seen)[found], np.array(seen_spread)[found], gt[found], spec)
            for mode in MIRROR_MODES[1:]:
                e = r["mirror"][mode].pop("errors")
                r["mirror"][mode]["by_pose"] = by_pose(pose[found], e_gt[found], e)
                rows.append((f"{label}, mirror {mode}", "hybrid", f"{r['detection_rate']:.1f}", "—", {"mean1": e}))
    print(f"\n{name}, padded, {len(samples)} faces{' (flip test)' if args.flip_test else ''}\n")
    print(
        "(bold: what FaceAnalyzer returns with refine=1; averaged where the detector's points centred the first crop;"
        " 'averaged': the passes' mean where they agree, else the last pass)\n"
    )
    print(
        "| detector | first crop from | found (%) | detector ms / image | first crop | 1 re-crop | 2 re-crops "
        "| first crop + 1 re-crop, averaged | all 3 averaged | failure > 10 %, default |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for label, seed, rate, ms, errors in rows:
        cells = {k: f"{errors[k].mean() * 100:.2f}" if k in errors else "" for k in PASS_KEYS}
        d = next(iter(errors)) if len(errors) == 1 else default_key(seed)  # one pass: ground truth / mirror
        if seed != "—":
            cells[d] = f"**{cells[d]}**"
        print(
            f"| {label} | {seed} | {rate} | {ms} | {' | '.join(cells.values())} | {(errors[d] > 0.1).mean() * 100:.2f} |"
        )
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
