"""68 points on 300-W faces facemtl never trained on: facemtl_300w68 against dlib's 68-point
predictor, same faces, same metric, same run.

    .venv-bench/bin/python references/benchmarks/w300.py      # about 3 min on 2 cores; needs dlib (references/benchmarks/setup_peers.sh)

Prints Markdown tables and writes references/benchmarks/results/w300.md, references/benchmarks/results/w300.json and the CED plot
docs/w300_ced.png.

Faces: the fixed held-out fifth of ``../shared/data/300W_train`` (``300w:FOLDER@holdout``, 326 faces
of LFPW train and Helen train). facemtl's 68-point model was neither trained nor selected on them.
dlib's predictor (``shape_predictor_68_face_landmarks``, as face_recognition_models ships it) was
trained on iBUG's 300-W release, which includes LFPW train and Helen train: these faces are among
its training faces, so its figures here are optimistic.

Error = mean of the 68 point distances / the distance between the outer eye corners (points 37
and 46, 1-based), in %; failure = error > 10 %; AUC@0.1 of the CED. Two protocols:

- *box from the annotation*: each method gets one face box made from the annotated points, framed
  the way it was trained: facemtl's crop rule on the five derived points (what ``facemtl evaluate``
  uses); for dlib, the same landmark box mapped by the median offset and scale of dlib's own
  detections on the faces of the 300-W *train* part.
- *own detector*: each method runs its own detector on the photo (facemtl's detector, then its crop
  from the detector's points and one re-crop, the two passes averaged: ``FaceAnalyzer``'s defaults;
  dlib's HOG at upsample 1); a face is found when a
  detection's box contains the centre of the annotated points' box. Errors over the faces each found.

A second table puts the 68-point model's five derived points (eye centres = means of the eye
contours) beside the 5-point model on MTFL test (2,995 faces, ``facemtl evaluate``'s crops), and
dlib's five derived points on the same faces (its box from the annotated five points by the rule
fitted on 300-W): faces neither 68-point model trained on.
Speed: the landmark step per face, one thread (facemtl: crop + network; dlib: the predictor).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from peers import dlib_box, dlib_box_rule, optional, rect_box

from facemtl.analysis.analyzer import FaceAnalyzer
from facemtl.core.geometry import crop_box_from_landmarks
from facemtl.core.images import read_image
from facemtl.core.tasks import IBUG68, MTFL5
from facemtl.data.dataset import FaceDataset
from facemtl.data.mtfl import read_mtfl
from facemtl.data.w300 import read_300w_folder
from facemtl.detection import Detection
from facemtl.evaluation.benchmarks import DATA, Report, found_index, median_ms, one_thread
from facemtl.evaluation.evaluator import evaluate
from facemtl.evaluation.metrics import LandmarkReport, auc, landmark_report, point_errors
from facemtl.models import MultiTaskNet
from facemtl.models.weights import load_model

ROOT = Path(__file__).resolve().parents[2]


def row(name: str, errors: np.ndarray, n: int, ms: float | None = None) -> dict[str, float | str | None]:
    """One table row from per-face errors (fractions of the outer-corner distance)."""
    return {
        "method": name,
        "found": 100.0 * len(errors) / n,
        "nme": float(errors.mean() * 100),
        "failure_rate": float((errors > 0.1).mean() * 100),
        "auc": auc(errors),
        "ms_per_face": ms,
    }


def table(rows: list[dict]) -> list[str]:
    out = [
        "| method | found % | mean error % | failure % | AUC@0.1 | landmark step, ms/face |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        ms = "–" if r["ms_per_face"] is None else f"{r['ms_per_face']:.2f}"
        out.append(
            f"| {r['method']} | {r['found']:.1f} | {r['nme']:.2f} | {r['failure_rate']:.1f} | {r['auc']:.3f} | {ms} |"
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="facemtl_300w68", help="facemtl 68-point weights: a shipped name or a file")
    ap.add_argument("--five-point-model", default="facemtl_mtfl", help="the 5-point model beside it on MTFL test")
    ap.add_argument("--folder", default=str(DATA / "300W_train"))
    ap.add_argument("--mtfl-test", default=str(DATA / "MTFL/testing.txt"))
    ap.add_argument("--limit", type=int, default=0, help="only the first N held-out faces (quick pass)")
    ap.add_argument(
        "--out", default=str(ROOT / "references/benchmarks/results/w300"), help="writes OUT.md and OUT.json"
    )
    ap.add_argument("--plot", default=str(ROOT / "docs/w300_ced.png"))
    args = ap.parse_args()
    one_thread()
    emit = Report()

    model = load_model(args.model)
    if not isinstance(model, MultiTaskNet) or model.config.tasks.landmarks != IBUG68:
        sys.exit(f"{args.model}: not a 68-point landmark model")
    mc = model.config
    faces = read_300w_folder(args.folder, split="holdout")
    if args.limit:
        faces = faces[: args.limit]
    n = len(faces)
    images = [read_image(s.image) for s in faces]
    truth = np.stack([s.landmarks for s in faces])

    # -- box from the annotation ---------------------------------------------------------------
    report = evaluate(model, FaceDataset.for_model(faces, mc))
    analyzer = FaceAnalyzer(model)  # the shipped detector, one re-crop: the defaults
    box = crop_box_from_landmarks(IBUG68.mtfl5(truth[0]), mc.crop_scale)
    fm_ms = median_ms(lambda: analyzer.landmarker.predict_boxes(images[0], [box]), repeats=15, number=10)
    rows_gt = [row(f"facemtl ({Path(str(args.model)).stem})", report.landmarks.per_face, n, fm_ms)]
    curves = {"facemtl, box from annotation": report.landmarks.per_face}
    result: dict = {"faces": n, "folder": args.folder, "split": "holdout", "model": str(args.model)}

    dlib = optional("dlib", dlib_parts)
    if dlib:
        detector, predictor = dlib
        rule_faces = read_300w_folder(args.folder, split="train")[::4]
        rule = dlib_box_rule(detector, ((read_image(s.image), IBUG68.mtfl5(s.landmarks)) for s in rule_faces))
        result["dlib_box_rule"] = {"dx": rule[0], "dy": rule[1], "scale": rule[2], "faces": len(rule_faces)}
        rgbs = [np.ascontiguousarray(im[:, :, ::-1]) for im in images]
        pred = np.stack(
            [shape68(predictor, rgb, dlib_box(IBUG68.mtfl5(t), rule)) for rgb, t in zip(rgbs, truth, strict=True)]
        )
        err = point_errors(pred, truth, IBUG68).mean(1)
        b = dlib_box(IBUG68.mtfl5(truth[0]), rule)
        dl_ms = median_ms(lambda: shape68(predictor, rgbs[0], b), repeats=15, number=10)
        rows_gt.append(row("dlib 68-point predictor (trained on these faces)", err, n, dl_ms))
        curves["dlib, box from annotation"] = err

    # -- own detector --------------------------------------------------------------------------
    found_err = []
    for im, t in zip(images, truth, strict=True):
        got = analyzer.analyze(im)
        i = found_index([Detection(f.box, f.score) for f in got], t)
        if i is not None:
            found_err.append(point_errors(got[i].landmarks[None], t[None], IBUG68).mean())
    rows_own = [row("facemtl detector + 68-point model (defaults: 1 re-crop, passes averaged)", np.array(found_err), n)]
    if dlib:
        found_err = []
        for rgb, t in zip(rgbs, truth, strict=True):
            rects, scores, _ = detector.run(rgb, 1, 0.0)
            i = found_index([Detection(rect_box(r), s) for r, s in zip(rects, scores, strict=True)], t)
            if i is not None:
                found_err.append(
                    point_errors(shape68(predictor, rgb, rect_box(rects[i]))[None], t[None], IBUG68).mean()
                )
        rows_own.append(row("dlib HOG (upsample 1) + 68-point predictor", np.array(found_err), n))

    # -- MTFL test, five points ----------------------------------------------------------------
    mtfl = read_mtfl(args.mtfl_test)
    five_model = load_model(args.five_point_model)
    assert isinstance(five_model, MultiTaskNet)
    five_rows = []
    for name, m in ((f"{Path(str(args.five_point_model)).stem} (5 points)", five_model),
                    (f"{Path(str(args.model)).stem} (its 5 derived points)", model)):  # fmt: skip
        rep = evaluate(m, FaceDataset.for_model(mtfl, m.config)).landmarks
        five_rows.append(report_row(name, rep))
    if dlib:  # a 68-point model on faces neither trained on: dlib's five derived points, its box rule
        pred5 = np.stack(
            [IBUG68.mtfl5(shape68(predictor, np.ascontiguousarray(read_image(s.image)[:, :, ::-1]),
                                  dlib_box(s.landmarks, rule))) for s in mtfl]
        )  # fmt: skip
        truth5 = np.stack([s.landmarks for s in mtfl])
        five_rows.append(
            report_row("dlib 68-point predictor (its 5 derived points)", landmark_report(pred5, truth5, MTFL5))
        )

    emit(f"## 300-W held-out faces ({n}; 68 points, error / outer-eye-corner distance)")
    emit()
    emit("Box from the annotation (each method framed the way it was trained):")
    emit()
    for line in table(rows_gt):
        emit(line)
    emit()
    emit("Each method's own detector on the photo:")
    emit()
    for line in table(rows_own):
        emit(line)
    emit()
    emit(f"## MTFL test ({len(mtfl)} faces; 5 points, error / eye-centre distance)")
    emit()
    emit("| model | mean error % | failure % | AUC@0.1 |")
    emit("|---|---|---|---|")
    for r in five_rows:
        emit(f"| {r['model']} | {r['nme']:.2f} | {r['failure_rate']:.1f} | {r['auc']:.3f} |")
    result |= {"box_from_annotation": rows_gt, "own_detector": rows_own, "mtfl_test_five_points": five_rows}
    result["facemtl_per_region"] = {k: float(np.mean(v)) for k, v in report.landmarks.per_region().items()}
    md, js = emit.save(args.out, result)
    plotted = optional("matplotlib", lambda: plot(curves, args.plot, n))
    print(f"\nwrote {md}, {js}" + (f", {args.plot}" if plotted else ""))


def dlib_parts():
    import dlib
    import face_recognition_models as frm

    return dlib.get_frontal_face_detector(), dlib.shape_predictor(frm.pose_predictor_model_location())


def shape68(predictor, rgb: np.ndarray, box) -> np.ndarray:
    import dlib

    s = predictor(rgb, dlib.rectangle(*(round(v) for v in box)))
    return np.array([(s.part(i).x, s.part(i).y) for i in range(68)], np.float64)


def report_row(name: str, r: LandmarkReport) -> dict:
    return {"model": name, "nme": r.nme, "failure_rate": r.failure_rate, "auc": r.auc, "n": r.n}


def plot(curves: dict[str, np.ndarray], path: str, n: int) -> bool:
    from facemtl.evaluation.plots import plot_ced

    plot_ced(curves, path, title=f"300-W held-out faces ({n}), 68 points")
    return True


if __name__ == "__main__":
    main()
