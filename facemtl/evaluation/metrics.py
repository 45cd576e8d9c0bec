"""Landmark and attribute metrics as MTFL/TCDCN report them.

Landmark error of one face = mean over its K points of the point-to-point distance divided by the
inter-ocular distance (distance between the two eye landmarks for 5 points), in percent.
A failure is a face whose error exceeds 10 %. The CED curve is the fraction of faces with error
≤ t; AUC@0.1 is its area for t ∈ [0, 0.1] divided by 0.1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facemtl.core.tasks import LandmarkSpec, interocular_distance

FAILURE_THRESHOLD = 0.10


def point_errors(pred: np.ndarray, gt: np.ndarray, spec: LandmarkSpec) -> np.ndarray:
    """``(N, K)`` point errors as fractions of each face's inter-ocular distance."""
    iod = interocular_distance(gt, spec)
    if np.any(iod <= 0):
        raise ValueError("a face has zero inter-ocular distance; cannot normalise its error")
    return np.linalg.norm(pred - gt, axis=2) / iod[:, None]


def ced_curve(
    errors: np.ndarray, max_error: float = FAILURE_THRESHOLD, steps: int = 1001
) -> tuple[np.ndarray, np.ndarray]:
    """Thresholds in [0, max_error] and the fraction of faces with error ≤ each."""
    t = np.linspace(0.0, max_error, steps)
    frac = (np.sort(errors)[None, :] <= t[:, None]).mean(axis=1)
    return t, frac


def auc(errors: np.ndarray, max_error: float = FAILURE_THRESHOLD) -> float:
    """Area under the CED curve up to ``max_error``, normalised to [0, 1]."""
    t, frac = ced_curve(errors, max_error)
    return float(np.trapezoid(frac, t) / max_error)


@dataclass
class LandmarkReport:
    nme: float  # %
    failure_rate: float  # %
    auc: float  # AUC@0.1 in [0, 1]
    per_landmark: dict[str, float]  # %
    per_face: np.ndarray  # (N,) fractions
    n: int

    def per_region(self) -> dict[str, list[float]]:
        """``per_landmark`` grouped by name prefix (``jaw_3`` → ``jaw``): each region's point errors, %."""
        regions: dict[str, list[float]] = {}
        for name, v in self.per_landmark.items():
            regions.setdefault(name.rsplit("_", 1)[0], []).append(v)
        return regions


def landmark_report(pred: np.ndarray, gt: np.ndarray, spec: LandmarkSpec) -> LandmarkReport:
    pe = point_errors(pred, gt, spec)
    face = pe.mean(axis=1)
    return LandmarkReport(
        nme=float(face.mean() * 100),
        failure_rate=float((face > FAILURE_THRESHOLD).mean() * 100),
        auc=auc(face),
        per_landmark={n: float(v * 100) for n, v in zip(spec.names, pe.mean(axis=0), strict=True)},
        per_face=face,
        n=len(face),
    )


def attribute_accuracy(pred: np.ndarray, labels: np.ndarray) -> tuple[float, float, int]:
    """Accuracy (%) over labelled samples (``labels >= 0``), majority-class baseline (%), count."""
    m = labels >= 0
    if not m.any():
        return float("nan"), float("nan"), 0
    y = labels[m]
    acc = float((pred[m] == y).mean() * 100)
    majority = float(np.bincount(y).max() / len(y) * 100)
    return acc, majority, int(m.sum())
