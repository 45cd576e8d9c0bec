"""CED plots (needs matplotlib: ``pip install facemtl[plots]``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facemtl.metrics import FAILURE_THRESHOLD, auc, ced_curve


def plot_ced(curves: dict[str, np.ndarray], path: str | Path, *, title: str = "MTFL test (2,995 AFLW faces)") -> None:
    """Plot cumulative error distributions: ``curves`` maps a label to per-face errors (fractions of IOD)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError("plotting needs matplotlib: pip install 'facemtl[plots]'") from e
    fig, ax = plt.subplots(figsize=(5, 3.6), dpi=110)
    for label, errors in curves.items():
        t, frac = ced_curve(errors, max_error=0.15)
        ax.plot(t * 100, frac * 100, label=f"{label} (mean {errors.mean() * 100:.2f}%, AUC@0.1 {auc(errors):.3f})")
    ax.axvline(FAILURE_THRESHOLD * 100, color="gray", lw=0.8, ls="--")
    ax.set_xlabel("error (% of inter-ocular distance)")
    ax.set_ylabel("faces (%)")
    ax.set_xlim(0, 15)
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
