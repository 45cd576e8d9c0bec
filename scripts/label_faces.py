"""Label every face in training photos with a teacher detector, for training facemtl's detector.

    python scripts/label_faces.py --teacher ../shared/tools/yunet/yunet_s_640_640.onnx \
        --mtfl ../shared/data/MTFL/training.txt --300w ../shared/data/300W_train \
        --celeba ../shared/data/CelebA --out runs/teacher/faces.jsonl
    python scripts/label_faces.py --teacher ../shared/tools/yunet/yunet_s_640_640.onnx \
        --people ../shared/data/people --out runs/teacher/people.jsonl

The teacher (YuNet, run by OpenCV) boxes every face it finds at score ≥ ``--min-score``, background
faces included (a detector trained without them learns to ignore faces). Where a dataset annotates a
face, that face keeps the teacher's box but takes the *annotated* 5 points (300-W's 68 reduced to 5),
so the detector's points follow MTFL's convention, not the teacher's. A photo whose annotated face the
teacher does not find is left out (a face without a box would teach the detector it is background).
CelebA: only the official *train* partition (its val partition stays unseen for attribute tests).
MTFL *test* is never labelled.

``--people``: photos where faces are not the subject (hands, knees, streets; many with no face).
Their faces are small, and the teacher misses some at the photo's own size, so it also looks at the
photo enlarged ``--zoom`` times: a face found only there at ``--zoom-score`` or more (or one scored
under the training threshold at the photo's size) is
written with ``"ignore": true`` — an ignored region, not background, since teaching the detector
that a real face is background costs more than leaving a region unjudged. The output (faces.jsonl, format in facemtl.data.photos) is data, not
code: it stays under runs/ and is not committed.
"""

from __future__ import annotations

import argparse
import json
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from tqdm import tqdm

from facemtl.core.images import read_image
from facemtl.data.celeba import celeba_photos
from facemtl.data.mtfl import read_mtfl
from facemtl.data.photos import photo_record
from facemtl.data.w300 import read_300w_folder
from facemtl.detection import YuNetDetector, annotated_detection

_teacher: YuNetDetector | None = None


def _init(path: str, min_score: float) -> None:
    global _teacher
    import cv2

    cv2.setNumThreads(1)
    _teacher = YuNetDetector(path, score_threshold=min_score)


def _zoomed(bgr: np.ndarray, zoom: float) -> list:
    """The teacher's faces on the photo enlarged ``zoom`` times, in the photo's pixels."""
    import cv2

    big = cv2.resize(bgr, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_CUBIC)
    dets = _teacher.detect(big)
    return [((np.asarray(d.box) + 0.5) / zoom - 0.5, d.score) for d in dets]


def _label_whole(job: tuple[str, float, float]) -> tuple[str, tuple[int, int], list[dict]]:
    """A photo of people: the teacher's faces, plus faces found only at ``zoom`` as ignored regions."""
    from facemtl.detection.base import box_iou

    image, zoom, zoom_score = job
    bgr = read_image(image)
    dets = _teacher.detect(bgr)
    faces = [{"box": [round(v, 2) for v in d.box], "score": round(d.score, 4), "landmarks": None} for d in dets]
    known = np.array([d.box for d in dets]).reshape(-1, 4)
    for box, score in _zoomed(bgr, zoom) if zoom > 1 else []:
        if score >= zoom_score and (not len(known) or box_iou(box[None], known).max() < 0.3):
            faces.append(
                {"box": [round(float(v), 2) for v in box], "score": round(score, 4), "landmarks": None, "ignore": True}
            )
            known = np.vstack([known, box[None]])
    return image, (bgr.shape[1], bgr.shape[0]), faces


def _label(job: tuple[str, list | None]) -> tuple[str, tuple[int, int], list[dict]] | None:
    image, annotated = job
    bgr = read_image(image)
    dets = _teacher.detect(bgr)
    faces = [{"box": [round(v, 2) for v in d.box], "score": round(d.score, 4), "landmarks": None} for d in dets]
    if annotated is not None:
        lm = np.asarray(annotated)
        i = annotated_detection(dets, lm)
        if i is None:
            return None
        faces[i]["landmarks"] = [[round(float(x), 2), round(float(y), 2)] for x, y in lm]
    return image, (bgr.shape[1], bgr.shape[0]), faces


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--teacher", required=True, help="YuNet .onnx (e.g. ../shared/tools/yunet/yunet_s_640_640.onnx)")
    ap.add_argument("--mtfl", help="MTFL-format training annotations")
    ap.add_argument("--300w", dest="w300", help="a folder of 300-W photos + .pts")
    ap.add_argument("--celeba", help="CelebA root (its train partition is labelled)")
    ap.add_argument("--people", help="a folder of photos of people (every image in it; faces not the subject)")
    ap.add_argument("--zoom", type=float, default=2.0, help="--people: also look at each photo this much larger")
    ap.add_argument(
        "--zoom-score", type=float, default=0.5, help="--people: a face found only enlarged counts from this score"
    )
    ap.add_argument("--out", required=True)
    ap.add_argument(
        "--min-score", type=float, default=0.3, help="faces below the training threshold are ignored regions"
    )
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    jobs: list[tuple[str, list | None]] = []
    if args.mtfl:
        jobs += [(str(s.image), s.landmarks.tolist()) for s in read_mtfl(args.mtfl)]
    if args.w300:
        jobs += [(str(s.image), s.landmarks.tolist()) for s in read_300w_folder(args.w300, points=5)]
    if args.celeba:
        jobs += [(str(p), None) for p in celeba_photos(args.celeba, "train")]
    whole: list[tuple[str, float, float]] = []
    if args.people:
        from facemtl.core.inputs import expand_inputs, is_video

        photos = (p for p in expand_inputs([args.people]) if not is_video(p))  # the folder's images, sorted
        whole = [(str(p), args.zoom, args.zoom_score) for p in photos]
    if jobs and whole:
        raise SystemExit("--people photos go into a file of their own (run the script for them separately)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    root = out.parent.resolve()
    kept = dropped = faces = 0
    tmp = out.with_suffix(".tmp")
    with Pool(args.jobs, _init, (args.teacher, args.min_score)) as pool, open(tmp, "w") as f:
        results = pool.imap(_label, jobs, chunksize=32) if jobs else pool.imap(_label_whole, whole, chunksize=8)
        for res in tqdm(results, total=len(jobs) or len(whole), desc="labelling", mininterval=5):
            if res is None:
                dropped += 1
                continue
            image, size, fs = res
            f.write(json.dumps(photo_record(Path(image).resolve(), root, size, fs)) + "\n")
            kept += 1
            faces += len(fs)
    tmp.replace(out)
    print(
        f"{out}: {kept} photos, {faces} faces (score ≥ {args.min_score}); {dropped} photos left out (annotated face not found)"
    )


if __name__ == "__main__":
    main()
