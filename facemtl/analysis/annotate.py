"""Annotated copies of images and videos: the work behind ``facemtl draw``.

Each input gets its own output (:func:`facemtl.core.inputs.plan_outputs`): an image ``NAME.ext``
becomes ``OUT/NAME.jpg``, a video ``OUT/NAME.mp4`` (with a progress bar), keeping as much of the
input's folders as makes the name unique. ``write_json`` also writes ``OUT/NAME.json`` in the
``facemtl predict --json`` schema (for a video: one record per frame, each face with its track
ID). Nothing a user owns is
replaced: an existing output needs ``overwrite``, an input is never an output, and every file
is written atomically.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import cv2
from tqdm import tqdm

from facemtl.analysis.analyzer import Face, FaceAnalyzer, frame_record, image_record, json_line
from facemtl.analysis.drawing import draw_faces
from facemtl.core.files import atomic_write
from facemtl.core.images import read_image
from facemtl.core.inputs import is_video
from facemtl.core.types import ImageRecord
from facemtl.video.io import VideoReader, VideoWriter
from facemtl.video.tracking import TrackerParams, analyze_video


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


def annotate_image(analyzer: FaceAnalyzer, path: Path, target: Path, write_json: bool = False) -> list[Face]:
    """Draw the faces of one image into ``target`` (a .jpg); returns the faces."""
    image = read_image(path)
    faces = analyzer.analyze(image)
    ok, data = cv2.imencode(".jpg", draw_faces(image, faces))
    if not ok:
        raise OSError(f"{target}: could not encode image")
    atomic_write(target, lambda tmp: Path(tmp).write_bytes(data.tobytes()))
    if write_json:
        text = json_line(image_record(str(path), faces)) + "\n"
        atomic_write(target.with_suffix(".json"), lambda tmp: Path(tmp).write_text(text))
    return faces


def annotate_video(
    analyzer: FaceAnalyzer,
    path: Path,
    target: Path,
    write_json: bool = False,
    *,
    track: bool = True,
    params: TrackerParams | None = None,
) -> Path:
    """Draw the faces of every frame of a video into ``target`` (an .mp4: H.264 with the ``video``
    extra, else mp4v): followed by a tracker (IDs drawn, points smoothed), or with ``track=False``
    each frame analysed on its own."""
    records: list[ImageRecord] = []
    with VideoReader(path) as reader:

        def write(tmp: str) -> None:
            with VideoWriter(tmp, reader.fps, reader.size) as writer:
                frames = analyze_video(analyzer, reader, track=track, params=params)
                for frame, faces in tqdm(frames, total=reader.frames, desc=path.name, unit="frame"):
                    writer.write(draw_faces(frame.image, faces))
                    if write_json:
                        records.append(frame_record(path, frame, faces))

        atomic_write(target, write, suffix=".mp4")  # the writer picks its container from the suffix
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
    track: bool = True,
    params: TrackerParams | None = None,
) -> Path:
    """:func:`annotate_video` for a video file, :func:`annotate_image` otherwise, into ``target``
    (and its .json), after :func:`claim` has allowed each file."""
    for t in (target, target.with_suffix(".json")) if write_json else (target,):
        claim(t, overwrite=overwrite, inputs=inputs)
    if is_video(path):
        return annotate_video(analyzer, path, target, write_json, track=track, params=params)
    annotate_image(analyzer, path, target, write_json)
    return target
