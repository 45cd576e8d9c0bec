"""Draw facemtl's landmarks, boxes and attributes on images, folders of images, or videos.

    python scripts/draw_landmarks.py photo.jpg more/ clip.mp4 --out annotated/ [--json]

Each image ``NAME.ext`` becomes ``OUT/NAME.jpg``; a video becomes ``OUT/NAME.mp4`` (with a
progress bar). ``--json`` also writes ``OUT/NAME.json`` in the ``facemtl predict --json`` schema
(for a video: one record per frame). A bad input is reported and skipped; the exit status is 1
if any input failed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
from tqdm import tqdm

from facemtl.cli import add_analyzer_arguments, analyzer_from_args
from facemtl.imageio import ImageReadError, read_image
from facemtl.inference import FaceAnalyzer
from facemtl.inputs import expand_inputs, is_video
from facemtl.viz import draw_faces


def draw_image(analyzer: FaceAnalyzer, path: Path, out_dir: Path, write_json: bool) -> Path:
    image = read_image(path)
    faces = analyzer.analyze(image)
    target = out_dir / f"{path.stem}.jpg"
    if not cv2.imwrite(str(target), draw_faces(image, faces)):
        raise OSError(f"{target}: could not write image")
    if write_json:
        record = {"image": str(path), "faces": [f.to_dict() for f in faces]}
        (out_dir / f"{path.stem}.json").write_text(json.dumps(record) + "\n")
    return target


def draw_video(analyzer: FaceAnalyzer, path: Path, out_dir: Path, write_json: bool) -> Path:
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise ImageReadError(f"{path}: cannot open video")
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    target = out_dir / f"{path.stem}.mp4"
    writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    records = []
    try:
        for i in tqdm(range(n) if n else iter(int, 1), desc=path.name, unit="frame"):
            ok, frame = cap.read()
            if not ok:
                break
            faces = analyzer.analyze(frame)
            writer.write(draw_faces(frame, faces))
            if write_json:
                records.append({"image": f"{path}#frame={i}", "faces": [f.to_dict() for f in faces]})
    finally:
        cap.release()
        writer.release()
    if write_json:
        (out_dir / f"{path.stem}.json").write_text("".join(json.dumps(r) + "\n" for r in records))
    return target


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("inputs", nargs="+", help="images, folders of images, or .mp4/.avi videos")
    ap.add_argument("--out", default="annotated", help="output folder (default: annotated/)")
    ap.add_argument("--json", action="store_true", help="also write the predictions as JSON")
    add_analyzer_arguments(ap)
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        analyzer = analyzer_from_args(args)
    except (FileNotFoundError, ValueError, KeyError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    failed = 0
    for path in expand_inputs(args.inputs):
        try:
            target = (draw_video if is_video(path) else draw_image)(analyzer, path, out, args.json)
            print(f"{path} -> {target}")
        except (ImageReadError, OSError) as e:
            failed += 1
            print(f"error: {e}", file=sys.stderr)
    if failed:
        print(f"{failed} input(s) failed", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
