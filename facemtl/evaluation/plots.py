"""CED and reliability plots (needs matplotlib: ``pip install facemtl[plots]``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from facemtl.evaluation.metrics import FAILURE_THRESHOLD, auc, ced_curve

if TYPE_CHECKING:
    from facemtl.evaluation.calibration import Reliability


def _pyplot() -> Any:
    """matplotlib's pyplot on the file-only Agg backend, or a clear ImportError."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError("plotting needs matplotlib: pip install 'facemtl[plots]'") from e
    return plt


def _finish(plt: Any, fig: Any, ax: Any, path: str | Path, title: str) -> None:
    ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_ced(curves: dict[str, np.ndarray], path: str | Path, *, title: str = "MTFL test (2,995 AFLW faces)") -> None:
    """Plot cumulative error distributions: ``curves`` maps a label to per-face errors (fractions of IOD)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.6), dpi=110)
    for label, errors in curves.items():
        t, frac = ced_curve(errors, max_error=0.15)
        ax.plot(t * 100, frac * 100, label=f"{label} (mean {errors.mean() * 100:.2f}%, AUC@0.1 {auc(errors):.3f})")
    ax.axvline(FAILURE_THRESHOLD * 100, color="gray", lw=0.8, ls="--")
    ax.set_xlabel("error (% of inter-ocular distance)")
    ax.set_ylabel("faces (%)")
    ax.set_xlim(0, 15)
    ax.set_ylim(0, 100)
    _finish(plt, fig, ax, path, title)


def plot_reliability(bins: dict[str, Reliability], path: str | Path, *, title: str) -> None:
    """Reliability diagram: per task, each confidence bin's accuracy against its stated probability."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.6, 4.0), dpi=110)
    ax.plot([0.5, 1], [0.5, 1], color="gray", lw=0.8, ls="--", label="perfect calibration")
    for name, r in bins.items():
        m = r.count > 0
        ax.plot(r.confidence[m], r.accuracy[m], marker="o", ms=3, label=f"{name} (ECE {r.ece:.2f} %)")
    ax.set_xlabel("stated probability of the predicted label")
    ax.set_ylabel("fraction right")
    ax.set_xlim(0.5, 1.0)
    ax.set_ylim(0.3, 1.0)
    _finish(plt, fig, ax, path, title)
