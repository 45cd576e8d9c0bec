"""Are the attribute probabilities right as often as they claim? Expected calibration error,
reliability bins, and temperature scaling (Guo et al., ICML 2017).

Temperature scaling divides a task's logits by one scalar T > 0 fitted on held-out faces (here: the
recipe's validation split) by minimising the negative log-likelihood. It changes no prediction —
the arg-max is unchanged — only how sure each probability says it is. The fitted temperatures live
in the model config (``ModelConfig.temperatures``), so every backend (PyTorch, ONNX) and every
caller gets the calibrated probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Reliability:
    """Confidence bins: per bin, how many predictions, their mean confidence and their accuracy."""

    edges: np.ndarray  # (B + 1,)
    count: np.ndarray  # (B,)
    confidence: np.ndarray  # (B,) mean top probability
    accuracy: np.ndarray  # (B,)

    @property
    def ece(self) -> float:
        """Expected calibration error, %: Σ_b (n_b / n) · |accuracy_b − confidence_b|."""
        n = self.count.sum()
        return float((self.count / max(n, 1) * np.abs(self.accuracy - self.confidence)).sum() * 100)


def reliability(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> Reliability:
    """Bin the top-class probability of each labelled prediction (``labels >= 0``) into ``bins``
    equal-width bins over [1/C, 1]."""
    m = labels >= 0
    p, y = probs[m], labels[m]
    conf, pred = p.max(1), p.argmax(1)
    edges = np.linspace(1.0 / probs.shape[1], 1.0, bins + 1)
    idx = np.clip(np.searchsorted(edges, conf, side="right") - 1, 0, bins - 1)
    count = np.bincount(idx, minlength=bins)
    safe = np.maximum(count, 1)
    return Reliability(
        edges,
        count,
        np.bincount(idx, conf, bins) / safe,
        np.bincount(idx, (pred == y).astype(np.float64), bins) / safe,
    )


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T > 0 minimising the NLL of ``softmax(logits / T)`` on the labelled faces."""
    m = labels >= 0
    z = torch.as_tensor(logits[m], dtype=torch.float64)
    y = torch.as_tensor(labels[m], dtype=torch.long)
    if len(y) == 0:
        raise ValueError("no labelled faces to fit a temperature on")
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(z / log_t.exp(), y)
        loss.backward()
        return loss

    opt.step(closure)
    return float(log_t.detach().exp())
