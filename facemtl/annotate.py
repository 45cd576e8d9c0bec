"""Annotated copies of images and videos: the work behind ``facemtl draw``.

Each image ``NAME.ext`` becomes ``OUT/NAME.jpg``; a video becomes ``OUT/NAME.mp4`` (with a
progress bar). ``write_json`` also writes ``OUT/NAME.json`` in the ``facemtl predict --json``
schema (for a video: one record per frame).
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
from tqdm import tqdm

from facemtl.imageio import ImageReadError, read_image
from facemtl.inference import FaceAnalyzer, image_record
from facemtl.inputs import is_video
from facemtl.types import ImageRecord
from facemtl.viz import draw_faces


def annotate_image(analyzer: FaceAnalyzer, path: Path, out_dir: Path, write_json: bool = False) -> Path:
    """Draw the faces of one image into ``out_dir``; returns the written image's path."""
    image = read_image(path)
    faces = analyzer.analyze(image)
    target = out_dir / f"{path.stem}.jpg"
    if not cv2.imwrite(str(target), draw_faces(image, faces)):
        raise OSError(f"{target}: could not write image")
    if write_json:
        (out_dir / f"{path.stem}.json").write_text(json.dumps(image_record(str(path), faces)) + "\n")
    return target


def annotate_video(analyzer: FaceAnalyzer, path: Path, out_dir: Path, write_json: bool = False) -> Path:
    """Draw the faces of every frame of a video into ``out_dir/NAME.mp4``."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise ImageReadError(f"{path}: cannot open video")
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    target = out_dir / f"{path.stem}.mp4"
    writer = cv2.VideoWriter(str(target), cv2.VideoWriter.fourcc(*"mp4v"), fps, (w, h))
    records: list[ImageRecord] = []
    try:
        for i in tqdm(range(n) if n else iter(int, 1), desc=path.name, unit="frame"):
            ok, frame = cap.read()
            if not ok:
                break
            faces = analyzer.analyze(frame)
            writer.write(draw_faces(frame, faces))
            if write_json:
                records.append(image_record(f"{path}#frame={i}", faces))
    finally:
        cap.release()
        writer.release()
    if write_json:
        (out_dir / f"{path.stem}.json").write_text("".join(json.dumps(r) + "\n" for r in records))
    return target


def annotate(analyzer: FaceAnalyzer, path: Path, out_dir: Path, write_json: bool = False) -> Path:
    """:func:`annotate_video` for a video file, :func:`annotate_image` otherwise."""
    return (annotate_video if is_video(path) else annotate_image)(analyzer, path, out_dir, write_json)
