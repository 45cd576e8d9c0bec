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

from collections.abc import Collection, Sequence
from pathlib import Path

import cv2
from tqdm import tqdm

from facemtl.analysis.analyzer import Face, FaceAnalyzer, frame_record, image_record, json_line
from facemtl.analysis.drawing import draw_faces
from facemtl.core.files import OutputExistsError, atomic_write
from facemtl.core.images import read_image
from facemtl.core.inputs import is_video
from facemtl.core.types import ImageRecord
from facemtl.video.io import VideoReader, VideoWriter
from facemtl.video.tracking import TrackerParams, analyze_video


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


def write_records(target: Path, records: Sequence[ImageRecord]) -> None:
    """Records as JSON Lines in ``target``, written atomically."""
    text = "".join(json_line(r) + "\n" for r in records)
    atomic_write(target, lambda tmp: Path(tmp).write_text(text))


def annotate_image(analyzer: FaceAnalyzer, path: Path, target: Path, write_json: bool = False) -> list[Face]:
    """Draw the faces of one image into ``target`` (a .jpg); returns the faces."""
    image = read_image(path)
    faces = analyzer.analyze(image)
    ok, data = cv2.imencode(".jpg", draw_faces(image, faces))
    if not ok:
        raise OSError(f"{target}: could not encode image")
    atomic_write(target, lambda tmp: Path(tmp).write_bytes(data.tobytes()))
    if write_json:
        write_records(target.with_suffix(".json"), [image_record(str(path), faces)])
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
        write_records(target.with_suffix(".json"), records)
    return target


def claim_outputs(target: Path, write_json: bool, *, overwrite: bool = False, inputs: Collection[Path] = ()) -> None:
    """:func:`claim` ``target`` and, with ``write_json``, its .json beside it."""
    for t in (target, target.with_suffix(".json")) if write_json else (target,):
        claim(t, overwrite=overwrite, inputs=inputs)
