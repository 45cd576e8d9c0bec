"""Video clips with ground truth, made from annotated photos: a face moved along a smooth random
similarity path over a background, then held still, through blur, noise, JPEG artefacts, brief
occlusions, and out of the frame and back. Every frame's true landmarks are the photo's, carried
by the same transforms; the still spans are where jitter is measured (the true points do not move,
so any movement of the estimate is noise). The tracker's benchmark and tests are built on these.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from facemtl.core.tasks import mtfl5_points


@dataclass
class ClipFace:
    """A face to put in a clip: its photo (BGR) and annotated landmarks (0-based pixels)."""

    image: np.ndarray
    landmarks: np.ndarray


@dataclass
class Clip:
    """Frames and, per frame and face, the true landmarks (``None`` where the face's centre is out
    of the frame), whether it is held still since the frame before, and whether it is covered."""

    frames: list[np.ndarray]
    fps: float
    truth: list[list[np.ndarray | None]]  # [frame][face] (K, 2)
    still: list[list[bool]]
    occluded: list[list[bool]]
    leaves: list[bool] = field(default_factory=list)  # per face: whether its path leaves the frame


@dataclass(frozen=True)
class ClipSpec:
    """How a clip is made: size, length, faces and their eye distance on screen, the share of time
    spent still, and the degradations."""

    width: int = 640
    height: int = 480
    seconds: float = 4.0
    fps: float = 30.0
    faces: int = 1
    eye_distance: tuple[float, float] = (35.0, 70.0)
    move_seconds: tuple[float, float] = (0.4, 1.0)
    still_seconds: tuple[float, float] = (0.4, 1.0)
    leave: bool = False
    occlusions: int = 1
    noise: tuple[float, float] = (2.0, 6.0)
    jpeg: tuple[int, int] = (55, 90)
    blur: float = 0.3


def _similarity(scale: float, angle: float, tx: float, ty: float, centre: np.ndarray) -> np.ndarray:
    """A 2×3 matrix: rotate and scale about ``centre`` (source pixels), then move it to (tx, ty)."""
    c, s = scale * math.cos(angle), scale * math.sin(angle)
    m = np.array([[c, -s, 0.0], [s, c, 0.0]])
    m[:, 2] = np.array([tx, ty]) - m[:, :2] @ centre
    return m


def _segments(rng: np.random.Generator, spec: ClipSpec, region: tuple[float, float, float, float], leave: bool):
    """(start, end, from pose, to pose, still) segments covering the clip: a move to a random pose,
    then a hold there; poses are (x, y, scale factor, angle). With ``leave``, one move goes out of
    the frame past the nearer side edge, and the next comes back (a fifth of a second later), at a walking pace."""
    x0, y0, x1, y1 = region

    def pose() -> tuple[float, ...]:
        return (rng.uniform(x0, x1), rng.uniform(y0, y1), rng.uniform(0.85, 1.15), rng.uniform(-0.25, 0.25))

    t, here, n, segments = 0.0, pose(), 0, []
    exit_at = int(rng.integers(1, 3)) if leave else -1
    while t < spec.seconds:
        if n == exit_at:
            out = spec.width * 1.4 if (x0 + x1) / 2 > spec.width / 2 else -spec.width * 0.4
            there: tuple[float, ...] = (out, *here[1:])
        else:
            there = pose()
        move = rng.uniform(*spec.move_seconds)
        if n == exit_at or n == exit_at + 1:  # out and back at a walking pace: at most 600 px/s on average
            move = max(move, abs(there[0] - here[0]) / 600)
        segments.append((t, t + move, here, there, False))
        t += move
        hold = 0.2 if n == exit_at else rng.uniform(*spec.still_seconds)
        segments.append((t, t + hold, there, there, True))
        t, here, n = t + hold, there, n + 1
    return segments


def _pose_at(segments, t: float) -> tuple[tuple[float, ...], bool]:
    for start, end, a, b, still in segments:
        if start <= t < end:
            if still:
                return a, True
            u = 0.5 - 0.5 * math.cos(math.pi * (t - start) / (end - start))  # eased: no jerk at either end
            return tuple(p + u * (q - p) for p, q in zip(a, b, strict=True)), False
    return segments[-1][3], True


def make_clip(faces: Sequence[ClipFace], background: np.ndarray, spec: ClipSpec, seed: int) -> Clip:
    """A clip of ``spec.faces`` of ``faces`` (drawn by ``seed``) over ``background``; faces keep to
    their own vertical band of the frame, so their paths never cross."""
    rng = np.random.default_rng(seed)
    w, h = spec.width, spec.height
    bg = cv2.resize(background, (w, h), interpolation=cv2.INTER_AREA)
    chosen = [faces[int(i)] for i in rng.choice(len(faces), spec.faces, replace=False)]
    n = int(round(spec.seconds * spec.fps))
    band = w / spec.faces
    plans = []
    for k, face in enumerate(chosen):
        five = mtfl5_points(face.landmarks)
        iod = float(np.linalg.norm(five[1] - five[0]))
        scale = rng.uniform(*spec.eye_distance) / max(iod, 1.0)
        region = (band * k + 0.3 * band, 0.35 * h, band * (k + 1) - 0.3 * band, 0.65 * h)
        keys = _segments(rng, spec, region, spec.leave and k == 0)
        mask = _face_mask(face.image.shape[:2], face.landmarks)
        cover = sorted(rng.uniform(0.5, spec.seconds - 0.5, spec.occlusions))
        plans.append((face, five.mean(0), scale, keys, mask, cover))
    quality = int(rng.integers(*spec.jpeg))
    sigma = rng.uniform(*spec.noise)
    clip = Clip([], spec.fps, [], [], [], [spec.leave and k == 0 for k in range(len(chosen))])
    for i in range(n):
        t = i / spec.fps
        frame: np.ndarray = bg.astype(np.float32)
        truth: list[np.ndarray | None] = []
        still, covered = [], []
        for face, centre, scale, keys, mask, cover in plans:
            (x, y, s, angle), held = _pose_at(keys, t)
            m = _similarity(scale * s, angle, x, y, centre)
            warped = cv2.warpAffine(face.image, m, (w, h), flags=cv2.INTER_LINEAR).astype(np.float32)
            alpha = cv2.warpAffine(mask, m, (w, h), flags=cv2.INTER_LINEAR)[..., None]
            frame = frame * (1 - alpha) + warped * alpha
            points = face.landmarks @ m[:, :2].T + m[:, 2]
            inside = 0 <= x < w and 0 <= y < h
            occluded = any(c <= t < c + 0.15 for c in cover) and inside
            if occluded:  # a hand-sized grey patch over half the face
                r = 0.9 * scale * s * np.linalg.norm(face.landmarks.max(0) - face.landmarks.min(0)) / 2
                cx, cy = points.mean(0)
                cv2.rectangle(frame, (int(cx - r), int(cy - 0.1 * r)), (int(cx + r), int(cy + r)), (110, 120, 130), -1)
            truth.append(points if inside else None)
            still.append(held)
            covered.append(occluded)
        if spec.blur and rng.random() < spec.blur:
            frame = cv2.GaussianBlur(frame, (0, 0), rng.uniform(0.6, 1.2))
        frame = np.clip(frame + rng.normal(0, sigma, frame.shape), 0, 255).astype(np.uint8)
        ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
        clip.frames.append(np.asarray(cv2.imdecode(data, cv2.IMREAD_COLOR)))
        clip.truth.append(truth)
        clip.still.append(still)
        clip.occluded.append(covered)
    return clip


def _face_mask(shape: tuple[int, int], landmarks: np.ndarray) -> np.ndarray:
    """1 on an ellipse around the annotated face (the eyes-to-mouth span grown to forehead and
    chin), falling to 0 over a soft edge: the photo's other faces and borders stay out of the clip."""
    h, w = shape
    five = mtfl5_points(landmarks)
    lo, hi = five.min(0), five.max(0)
    span = float(max(hi[0] - lo[0], hi[1] - lo[1], 1.0))
    cx, cy = (lo + hi) / 2 + [0.0, -0.1 * span]
    ax, ay = 1.25 * span, 1.6 * span
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    r = np.sqrt(((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2)
    return np.clip((1.0 - r) / 0.15, 0, 1).astype(np.float32)


def write_video(frames: Sequence[np.ndarray], path: str, fps: float) -> None:
    """Frames to a video file (mp4v), for tests and examples that need a file on disk."""
    from facemtl.video.io import VideoWriter

    with VideoWriter(path, fps, (frames[0].shape[1], frames[0].shape[0]), h264=False) as writer:
        for f in frames:
            writer.write(f)
