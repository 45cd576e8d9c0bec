"""Video in and out: files, cameras and streams read frame by frame with their times, and
annotated frames written as H.264 where the machine can, else MPEG-4 Part 2.

Reading is OpenCV's (FFmpeg inside opencv-python-headless). Writing H.264 needs an encoder that
the pip build of OpenCV lacks; the ``video`` extra (imageio-ffmpeg, which ships an ffmpeg binary)
provides one, and the file comes out near the input's size. Without it, OpenCV's ``mp4v`` writer
is used (larger files: several times an H.264 input's size).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from facemtl.core.images import ImageReadError


def is_camera(source: str) -> bool:
    """A camera index (``0``) or a stream address (``rtsp://…``, ``http://…``), not a file."""
    return source.isdigit() or "://" in source


@dataclass(frozen=True)
class Frame:
    """One video frame: its index, its time in seconds from the start, and its BGR pixels."""

    index: int
    time: float
    image: np.ndarray


class VideoReader:
    """Frames of a video file, a camera (its index, e.g. ``"0"``) or a stream URL, with their times
    (the container's timestamps where it has them, else index / fps)."""

    def __init__(self, source: str | Path):
        text = str(source)
        if not is_camera(text):
            path = Path(text)
            if not path.exists():
                raise ImageReadError(f"{path}: no such file")
            if path.is_dir():
                raise ImageReadError(f"{path}: is a directory, not a video")
        self.source = text
        self._cap = cv2.VideoCapture(int(text) if text.isdigit() else text)
        if not self._cap.isOpened():
            raise ImageReadError(f"{text}: cannot open video" + (" (camera or stream)" if is_camera(text) else ""))
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and np.isfinite(fps) and 0 < fps < 1000 else 30.0
        self.size = (int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))
        #: Frames in the file (None for cameras, streams and files that do not say).
        self.frames: int | None = count if count > 0 and not is_camera(text) else None

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        while True:
            ok, image = self._cap.read()
            if not ok:
                return
            msec = self._cap.get(cv2.CAP_PROP_POS_MSEC)
            time = msec / 1000 if msec > 0 or index == 0 else index / self.fps
            yield Frame(index, time, image)
            index += 1

    def close(self) -> None:
        self._cap.release()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _ffmpeg() -> Any | None:
    """imageio-ffmpeg (the ``video`` extra), or None."""
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    with contextlib.suppress(RuntimeError):  # its binary missing on this platform
        imageio_ffmpeg.get_ffmpeg_exe()
        return imageio_ffmpeg
    return None


class VideoWriter:
    """Frames (BGR, all of one size) to a video file: H.264 through imageio-ffmpeg where it is
    installed (``codec`` says which was used), else OpenCV's ``mp4v``."""

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int], *, h264: bool | None = None):
        self.path, self.size = str(path), size
        ffmpeg = _ffmpeg() if h264 is not False else None
        if h264 and ffmpeg is None:
            raise ImportError("H.264 output needs the 'video' extra (pip install 'facemtl[video]')")
        self._gen: Any = None
        self._cv: cv2.VideoWriter | None = None
        if ffmpeg is not None:
            # even sides for yuv420p; crf 23 is x264's default quality
            self._even = (size[0] - size[0] % 2, size[1] - size[1] % 2)
            self._gen = ffmpeg.write_frames(
                self.path,
                self._even,
                pix_fmt_in="bgr24",
                fps=fps,
                codec="libx264",
                quality=None,
                macro_block_size=1,
                output_params=["-crf", "23", "-preset", "veryfast", "-movflags", "+faststart"],
                ffmpeg_log_level="error",
            )
            self._gen.send(None)
            self.codec = "h264"
        else:
            self._cv = cv2.VideoWriter(self.path, cv2.VideoWriter.fourcc(*"mp4v"), fps, size)
            if not self._cv.isOpened():
                raise OSError(f"{path}: cannot open a video writer")
            self.codec = "mp4v"

    def write(self, frame: np.ndarray) -> None:
        if self._gen is not None:
            w, h = self._even
            self._gen.send(np.ascontiguousarray(frame[:h, :w]))
        else:
            assert self._cv is not None
            self._cv.write(frame)

    def close(self) -> None:
        if self._gen is not None:
            self._gen.close()
            self._gen = None
        if self._cv is not None:
            self._cv.release()
            self._cv = None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def has_gui() -> bool:
    """Whether a window can be opened: an OpenCV build with a GUI (opencv-python-headless has
    none) and, on Linux, a display to open it on."""
    info = cv2.getBuildInformation()
    line = next((s for s in info.splitlines() if s.strip().startswith("GUI:")), "GUI: NONE")
    if "NONE" in line.upper():
        return False
    return not sys.platform.startswith("linux") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
