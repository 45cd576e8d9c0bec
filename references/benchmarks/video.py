"""Video with ground truth: per-frame analysis against the tracker, on clips made from annotated
photos (facemtl.data.clips) that no shipped model trained on.

    .venv/bin/python references/benchmarks/video.py                       # MTFL test faces, both modes, table + JSON
    .venv/bin/python references/benchmarks/video.py --source mtfl-val --sweep   # choose the tracker's defaults

Sources: ``mtfl-test`` (AFLW faces of MTFL's test set), ``300w-holdout`` (the fixed held-out part
of ../shared's 300-W, reduced to 5 points), ``mtfl-val`` (MTFL training faces in the default
model's validation split: where the tracker's parameters are chosen, never on the test clips).
Backgrounds: ../shared's people photos in which the teacher found no face. Clips: 640 × 480,
30 frames/s, one or two faces moving and holding still, blur, noise, JPEG, a brief occlusion;
half the one-face clips leave the frame and come back within the grace period.

Measured, per mode: mean error (% of the eye distance) on visible, uncovered faces; jitter (the
mean frame-to-frame change of the error vector, % of the eye distance, on still spans); frames
lost (a visible, uncovered face with no estimate within half an eye distance); ID switches (a
face's track ID changing between frames it is found in; per-frame analysis has no IDs); frames
per second (analysis only, the clip already decoded; one thread). Exact command in the JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from facemtl.core.tasks import MTFL5
from facemtl.data.clips import ClipFace, ClipSpec, make_clip
from facemtl.evaluation.metrics import interocular_distance

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"


def faces_of(source: str, limit: int) -> list[ClipFace]:
    from facemtl.data.mtfl import read_mtfl
    from facemtl.data.w300 import read_300w_folder

    if source == "300w-holdout":
        samples = read_300w_folder(DATA / "300W_train", points=5, split="holdout")
    else:
        samples = read_mtfl(DATA / "MTFL" / ("testing.txt" if source == "mtfl-test" else "training.txt"))
        if source == "mtfl-val":
            from facemtl.training.jobs.landmarks import split_train_val

            _, val = split_train_val(samples, 0.1, 0)  # the default recipe's split of its MTFL source
            samples = [samples[i] for i in sorted(val)]
    rng = np.random.default_rng(0)
    picked = [samples[i] for i in rng.choice(len(samples), min(limit, len(samples)), replace=False)]
    return [ClipFace(cv2.imread(str(s.image), cv2.IMREAD_COLOR), s.landmarks) for s in picked]


def backgrounds(limit: int = 40) -> list[np.ndarray]:
    rows = (DATA / "people" / "MANIFEST.tsv").read_text().splitlines()[1:]
    empty = [r.split("\t")[0] for r in rows if r.strip().split("\t")[-1] == "0"]
    return [cv2.imread(str(DATA / "people" / name)) for name in empty[:limit]]


def clips(source: str, n: int, seconds: float) -> list:
    faces, bgs = faces_of(source, 300), backgrounds()
    out = []
    for i in range(n):
        two = i % 3 == 2
        spec = ClipSpec(seconds=seconds, faces=2 if two else 1, leave=not two and i % 2 == 1)
        out.append(make_clip(faces, bgs[i % len(bgs)], spec, seed=1000 + i))
    return out


def run(clip, mode: str, analyzer, params) -> tuple[list[list], float]:
    """Each frame's faces, and the seconds the analysis took."""
    from facemtl.video.tracking import FaceTracker

    tracker = FaceTracker(analyzer, fps=clip.fps, params=params) if mode == "tracker" else None
    t0 = time.perf_counter()
    found = [tracker.update(f) if tracker else analyzer.analyze(f) for f in clip.frames]
    return found, time.perf_counter() - t0


def score(clip, found) -> dict:
    errors, jitters, lost, visible, switches = [], [], 0, 0, 0
    faces = len(clip.truth[0])
    last_error: list = [None] * faces
    last_id: list = [None] * faces
    for i, (truth, predicted) in enumerate(zip(clip.truth, found, strict=True)):
        used: set[int] = set()
        for k in range(faces):
            gt = truth[k]
            if gt is None or clip.occluded[i][k]:
                last_error[k] = None
                continue
            visible += 1
            iod = float(interocular_distance(gt[None], MTFL5)[0])
            dists = [
                np.linalg.norm(f.landmarks - gt, axis=1).mean() / iod if j not in used else np.inf
                for j, f in enumerate(predicted)
            ]
            j = int(np.argmin(dists)) if dists else -1
            if j < 0 or dists[j] > 0.5:
                lost += 1
                last_error[k] = None
                continue
            used.add(j)
            e = (predicted[j].landmarks - gt) / iod
            errors.append(float(np.linalg.norm(e, axis=1).mean()))
            if clip.still[i][k] and last_error[k] is not None:
                jitters.append(float(np.linalg.norm(e - last_error[k], axis=1).mean()))
            last_error[k] = e
            tid = predicted[j].track_id
            if tid is not None and last_id[k] is not None and tid != last_id[k]:
                switches += 1
            last_id[k] = tid if tid is not None else last_id[k]
    return {"errors": errors, "jitters": jitters, "lost": lost, "visible": visible, "switches": switches}


def evaluate(clip_list, mode, analyzer, params) -> dict:
    errors, jitters, lost, visible, switches, seconds, frames = [], [], 0, 0, 0, 0.0, 0
    for clip in clip_list:
        found, took = run(clip, mode, analyzer, params)
        s = score(clip, found)
        errors += s["errors"]
        jitters += s["jitters"]
        lost, visible, switches = lost + s["lost"], visible + s["visible"], switches + s["switches"]
        seconds, frames = seconds + took, frames + len(clip.frames)
    return {
        "mode": mode,
        "mean_error_pct": 100 * float(np.mean(errors)),
        "jitter_pct": 100 * float(np.mean(jitters)),
        "frames_lost_pct": 100 * lost / max(visible, 1),
        "id_switches": switches if mode == "tracker" else None,
        "fps": frames / seconds,
        "frames": frames,
    }


def speed(analyzers: dict, seconds: float) -> list[dict]:
    """What ``facemtl predict clip.mp4 --json`` and ``facemtl draw`` cost per frame, decoding and
    output included (the analyzer loaded once): a 640 × 480 and a 1280 × 720 H.264 clip of two
    faces, one thread, tracker and per-frame analysis."""
    import contextlib
    import io
    import tempfile

    from facemtl.analysis.analyzer import json_line
    from facemtl.analysis.annotate import annotate_video, frame_record
    from facemtl.data.clips import ClipSpec
    from facemtl.video.io import VideoReader, VideoWriter
    from facemtl.video.tracking import analyze_video

    faces, bgs = faces_of("mtfl-test", 50), backgrounds(4)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for w, h, eye in ((640, 480, (35.0, 70.0)), (1280, 720, (60.0, 110.0))):
            clip = make_clip(
                faces, bgs[0], ClipSpec(width=w, height=h, seconds=seconds, faces=2, eye_distance=eye), seed=7
            )
            path = Path(tmp) / f"clip_{w}.mp4"
            with VideoWriter(path, clip.fps, (w, h)) as writer:
                for f in clip.frames:
                    writer.write(f)
            for backend, analyzer in analyzers.items():
                for track in (True, False):
                    t0 = time.perf_counter()
                    with VideoReader(path) as reader, contextlib.redirect_stdout(io.StringIO()):
                        for frame, found in analyze_video(analyzer, reader, track=track):
                            print(json_line(frame_record(path, frame, found)))
                    predict = len(clip.frames) / (time.perf_counter() - t0)
                    t0 = time.perf_counter()
                    annotate_video(analyzer, path, Path(tmp) / "drawn.mp4", track=track)
                    draw = len(clip.frames) / (time.perf_counter() - t0)
                    rows.append(
                        {
                            "size": f"{w} × {h}",
                            "backend": backend,
                            "tracker": track,
                            "predict_fps": predict,
                            "draw_fps": draw,
                        }
                    )
                    print(rows[-1], flush=True)
    return rows


def speed_table(rows: list[dict]) -> str:
    lines = [
        "| video | backend | mode | facemtl predict --json (frames/s) | facemtl draw (frames/s) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        mode = "tracker" if r["tracker"] else "per-frame (--no-track)"
        lines.append(f"| {r['size']} | {r['backend']} | {mode} | {r['predict_fps']:.0f} | {r['draw_fps']:.0f} |")
    return "\n".join(lines)


def table(rows: list[dict]) -> str:
    head = "| mode | mean error (% IOD) | jitter (% IOD / frame, still spans) | frames lost (%) | ID switches | frames/s (1 thread) |"
    lines = [head, "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        ids = "n/a" if r["id_switches"] is None else str(r["id_switches"])
        lines.append(
            f"| {r['label']} | {r['mean_error_pct']:.2f} | {r['jitter_pct']:.3f} | {r['frames_lost_pct']:.1f} | {ids} | {r['fps']:.0f} |"
        )
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", choices=["mtfl-test", "300w-holdout", "mtfl-val"], default="mtfl-test")
    ap.add_argument("--clips", type=int, default=12)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--backend", choices=["torch", "onnx"], default="onnx")
    ap.add_argument(
        "--max-side", type=int, default=None, help="the detector's input side (default: from the frame, as predict)"
    )
    ap.add_argument("--sweep", action="store_true", help="also score a grid of One Euro settings (choose on mtfl-val)")
    ap.add_argument(
        "--speed",
        action="store_true",
        help="also time predict and draw on 640 × 480 and 1280 × 720 files, both backends",
    )
    ap.add_argument("--out", default=str(ROOT / "references" / "benchmarks" / "results" / "video.json"))
    args = ap.parse_args()

    import torch

    from facemtl.analysis.analyzer import FaceAnalyzer
    from facemtl.video.smoothing import OneEuroParams, PoseParams
    from facemtl.video.tracking import TrackerParams

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    analyzer = FaceAnalyzer.from_pretrained(backend=args.backend, max_side=args.max_side)
    clip_list = clips(args.source, args.clips, args.seconds)
    rows = []
    per_frame = evaluate(clip_list, "per-frame", analyzer, None)
    rows.append(per_frame | {"label": f"per-frame analysis ({args.backend})"})
    settings = [TrackerParams()]
    if args.sweep:  # no smoothing (cut-offs far above the frame rate), then settings around the default
        off = OneEuroParams(min_cutoff=1e4, beta=0)
        settings += [TrackerParams(smoothing=PoseParams(off, off))]
        grid = [
            TrackerParams(smoothing=PoseParams(OneEuroParams(*pose), OneEuroParams(*shape)))
            for pose in (
                (0.5, 10, 1),
                (0.2, 40, 1),
                (0.2, 20, 4),
                (0.05, 30, 4),
                (0.2, 30, 6),
                (0.2, 60, 4),
                (0.1, 40, 4),
            )
            for shape in ((0.05, 60), (0.5, 2))
        ]
        settings += [p for p in grid if p != TrackerParams()]
        settings += [TrackerParams(shift_test=0.0)]  # one view a pass (docs/video.md: the rule for it)
    for p in settings:
        r = evaluate(clip_list, "tracker", analyzer, p)
        pose, shape = p.smoothing.pose, p.smoothing.shape
        views = "" if p.shift_test is None else f", shift test {p.shift_test:g}"
        label = (
            f"tracker ({args.backend}{views}; pose {pose.min_cutoff:g} Hz, β {pose.beta:g}, d {pose.d_cutoff:g} Hz; "
            f"shape {shape.min_cutoff:g} Hz, β {shape.beta:g})"
        )
        rows.append(
            r
            | {
                "label": label,
                "params": {
                    "pose": [pose.min_cutoff, pose.beta, pose.d_cutoff],
                    "shape": [shape.min_cutoff, shape.beta],
                },
            }
        )
        print(table(rows[-1:]).splitlines()[-1], flush=True)
    print(f"\n{args.source}: {args.clips} clips of {args.seconds:.0f} s, 640 × 480, 30 frames/s\n")
    print(table(rows))
    result = {
        "command": " ".join([".venv/bin/python", "references/benchmarks/video.py", *sys.argv[1:]]),
        "source": args.source,
        "rows": rows,
    }
    tables = [table(rows)]
    if args.speed:
        other = "torch" if args.backend == "onnx" else "onnx"
        analyzers = {args.backend: analyzer, other: FaceAnalyzer.from_pretrained(backend=other, max_side=args.max_side)}
        result["speed"] = speed(analyzers, args.seconds)
        tables.append(speed_table(result["speed"]))
        print("\n" + tables[-1])
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    Path(args.out).with_suffix(".md").write_text("\n\n".join(tables) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
