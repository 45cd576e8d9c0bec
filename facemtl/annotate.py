"""Annotated copies of images and videos: the work behind ``facemtl draw``.

Each input gets its own output (:func:`facemtl.inputs.plan_outputs`): an image ``NAME.ext``
becomes ``OUT/NAME.jpg``, a video ``OUT/NAME.mp4`` (with a progress bar), keeping as much of the
input's folders as makes the name unique. ``write_json`` also writes ``OUT/NAME.json`` in the
``facemtl predict --json`` schema (for a video: one record per frame). Nothing a user owns is
replaced: an existing output needs ``overwrite``, an input is never an output, and every file
is written atomically.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import cv2
from tqdm import tqdm

from facemtl.files import atomic_write
from facemtl.imageio import ImageReadError, read_image
from facemtl.inference import FaceAnalyzer, image_record, json_line
from facemtl.inputs import is_video
from facemtl.types import ImageRecord
from facemtl.viz import draw_faces


class OutputExistsError(FileExistsError):
    """An output would replace a file that is there already (``--overwrite`` allows it) or an input."""


def output_suffix(path: Path) -> str:
    return ".mp4" if is_video(path) else ".jpg"


def claim(target: Path, *, overwrite: bool, inputs: Collection[Path] = ()) -> None:
    """Refuse to write ``target`` over one of the ``inputs`` (resolved paths; never) or over an
    existing file (unless ``overwrite``)."""
    if target.resolve() in inputs:
        raise OutputExistsError(
            f"{target}: is one of the inputs; facemtl never writes over an input (choose another --out)"
        )
    if target.exists() and not overwrite:
        raise OutputExistsError(f"{target}: exists already (pass --overwrite to replace it)")


def annotate_image(analyzer: FaceAnalyzer, path: Path, target: Path, write_json: bool = False) -> Path:
    """Draw the faces of one image into ``target`` (a .jpg); returns it."""
    image = read_image(path)
    faces = analyzer.analyze(image)
    ok, data = cv2.imencode(".jpg", draw_faces(image, faces))
    if not ok:
        raise OSError(f"{target}: could not encode image")
    atomic_write(target, lambda tmp: Path(tmp).write_bytes(data.tobytes()))
    if write_json:
        text = json_line(image_record(str(path), faces)) + "\n"
        atomic_write(target.with_suffix(".json"), lambda tmp: Path(tmp).write_text(text))
    return target


def annotate_video(analyzer: FaceAnalyzer, path: Path, target: Path, write_json: bool = False) -> Path:
    """Draw the faces of every frame of a video into ``target`` (an .mp4)."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise ImageReadError(f"{path}: cannot open video")
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    records: list[ImageRecord] = []

    def write(tmp: str) -> None:
        writer = cv2.VideoWriter(tmp, cv2.VideoWriter.fourcc(*"mp4v"), fps, (w, h))
        if not writer.isOpened():
            raise OSError(f"{target}: cannot open a video writer")
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
            writer.release()

    try:
        atomic_write(target, write, suffix=".mp4")  # the writer picks its container from the suffix
    finally:
        cap.release()
    if write_json:
        text = "".join(json_line(r) + "\n" for r in records)
        atomic_write(target.with_suffix(".json"), lambda tmp: Path(tmp).write_text(text))
    return target


def annotate(
    analyzer: FaceAnalyzer,
    path: Path,
    target: Path,
    write_json: bool = False,
    *,
    overwrite: bool = False,
    inputs: Collection[Path] = (),
) -> Path:
    """:func:`annotate_video` for a video file, :func:`annotate_image` otherwise, into ``target``
    (and its .json), after :func:`claim` has allowed each file."""
    for t in (target, target.with_suffix(".json")) if write_json else (target,):
        claim(t, overwrite=overwrite, inputs=inputs)
    return (annotate_video if is_video(path) else annotate_image)(analyzer, path, target, write_json)
