"""The One Euro filter (Casiez, Roussel, Vogel, CHI 2012): low-pass smoothing whose cut-off rises
with speed, so a face held still stops jittering while a moving face is followed without lag.

Parameters are in physical units, so they mean the same at any frame rate: the filter is fed the
time between samples (``1 / fps`` for a video), not a frame count. Positions are measured in units
of ``scale`` (the face's eye distance for landmarks), so the speed that opens the filter is the same
for a small face far away and a large one close by.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class OneEuroParams:
    """``min_cutoff``: the cut-off (Hz) of a still signal — lower smooths more and lags more;
    ``beta``: how fast the cut-off rises with speed (Hz per scale unit per second) — higher follows
    fast motion with less lag; ``d_cutoff``: the cut-off (Hz) of the speed estimate itself."""

    min_cutoff: float = 1.0
    beta: float = 0.5
    d_cutoff: float = 1.0

    def __post_init__(self) -> None:
        for name in ("min_cutoff", "beta", "d_cutoff"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0) or (name != "beta" and value == 0):
                raise ValueError(f"{name} must be a finite number > 0 (beta ≥ 0); got {value}")


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    tau = 1.0 / (2 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """Filters arrays of points ``(..., D)`` (every point its own filter; the speed that sets a
    point's cut-off is the norm of its D-dimensional velocity)."""

    def __init__(self, params: OneEuroParams = OneEuroParams()):
        self.params = params
        self.value: np.ndarray | None = None
        self.speed: np.ndarray | None = None

    def reset(self) -> None:
        """Forget the past: the next sample passes unfiltered (a face re-found after a jump)."""
        self.value = self.speed = None

    def __call__(self, x: np.ndarray, dt: float, scale: float = 1.0) -> np.ndarray:
        """The filtered ``x`` after ``dt`` seconds; ``scale``: the unit of positions (see module)."""
        x = np.asarray(x, np.float64)
        if self.value is None or self.value.shape != x.shape or dt <= 0:
            self.value, self.speed = x.copy(), np.zeros_like(x)
            return x.copy()
        p = self.params
        assert self.speed is not None
        velocity = (x - self.value) / (dt * max(scale, 1e-9))
        self.speed = self.speed + _alpha(p.d_cutoff, dt) * (velocity - self.speed)
        cutoff = p.min_cutoff + p.beta * np.linalg.norm(self.speed, axis=-1, keepdims=True)
        self.value = self.value + _alpha(cutoff, dt) * (x - self.value)
        return self.value.copy()


@dataclass(frozen=True)
class PoseParams:
    """Smoothing of a face's landmarks split in two (:class:`PoseSmoother`): ``pose`` filters its
    position, size and roll (rigid motion: fast, followed closely), ``shape`` the points in the face's
    own frame (expression: slow, smoothed hard — most per-point noise lives here).

    The defaults were chosen on clips of MTFL training faces the default model held out for
    validation (``references/benchmarks/video.py --source mtfl-val --sweep``): of the settings whose jitter is a
    third of per-frame analysis's or less, the one with the lowest mean error. A speed filter
    faster than the classic 1 Hz (``d_cutoff`` 4 Hz) opens the pose filter at the start of a move
    instead of 160 ms into it, which is most of what a trailing estimate costs."""

    pose: OneEuroParams = OneEuroParams(min_cutoff=0.1, beta=40.0, d_cutoff=4.0)
    shape: OneEuroParams = OneEuroParams(min_cutoff=0.05, beta=60.0)


class PoseSmoother:
    """One Euro filtering of a face's landmarks ``(K, 2)`` as a rigid pose (centre, eye distance,
    roll) and a shape (the points in the face's frame): a head that moves is followed by the pose,
    whose estimate averages every point's noise, while each point's own noise is smoothed in the
    shape, which changes only with expression. ``eyes``: the two point groups whose means are the
    eyes (the markup's ``iod_groups``)."""

    def __init__(self, eyes: tuple[tuple[int, ...], tuple[int, ...]], params: PoseParams = PoseParams()):
        self.eyes = (list(eyes[0]), list(eyes[1]))
        self.params = params
        self.centre = OneEuroFilter(params.pose)
        self.size = OneEuroFilter(params.pose)
        self.roll = OneEuroFilter(params.pose)
        self.shape = OneEuroFilter(params.shape)

    def reset(self) -> None:
        for f in (self.centre, self.size, self.roll, self.shape):
            f.reset()

    def __call__(self, points: np.ndarray, dt: float) -> np.ndarray:
        points = np.asarray(points, np.float64)
        left, right = points[self.eyes[0]].mean(0), points[self.eyes[1]].mean(0)
        eye = right - left
        size = max(float(np.hypot(*eye)), 1e-6)
        angle = math.atan2(eye[1], eye[0])
        if self.roll.value is not None:  # unwrap: never filter across the ±π seam
            angle = float(self.roll.value[0, 0]) + math.remainder(angle - float(self.roll.value[0, 0]), 2 * math.pi)
        centre = points.mean(0)
        c, s = math.cos(angle), math.sin(angle)
        to_face = np.array([[c, s], [-s, c]])
        shape = (points - centre) @ to_face.T / size
        centre_f = self.centre(centre[None], dt, size)[0]
        size_f = float(self.size(np.array([[size]]), dt, size)[0, 0])
        angle_f = float(self.roll(np.array([[angle]]), dt, 1.0)[0, 0])  # radians: a turn of 1 rad/s is fast
        shape_f = self.shape(shape, dt, 1.0)
        c, s = math.cos(angle_f), math.sin(angle_f)
        return centre_f + (shape_f * size_f) @ np.array([[c, s], [-s, c]])
