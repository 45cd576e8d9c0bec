"""Which faces each epoch trains on, in which order, and on which process.

Everything here is a pure function of ``(seed, epoch)``, so a resumed run and every process of a
distributed run compute the same global order without talking to each other.

Mixing several training sources (MTFL + a landmarks-only 300-W set, say) is a question of how
often each source is drawn: by default in proportion to its size; with per-source ``weight``, each
source gets that share of every epoch's draws, whatever its size. Within a source, head-pose
rebalancing reweights faces by their pose class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
from torch.utils.data import Dataset

from facemtl.data.samples import FaceSample


class EpochDataset(Dataset):
    """A training dataset whose items depend on the epoch (augmentation, composed scenes) as a
    pure function of ``(seed, epoch, index)``: the loop calls :meth:`set_epoch` before each epoch."""

    epoch: int = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        raise NotImplementedError


def withhold_attributes(samples: Sequence[FaceSample], keep: float, seed: int) -> list[FaceSample]:
    """Drop every attribute label from a random ``1 - keep`` of the faces (landmarks stay): the
    partial-label setting, where only some images of a set carry attribute annotations."""
    if keep >= 1:
        return list(samples)
    if not 0 <= keep < 1:
        raise ValueError(f"attribute_fraction must be in [0, 1], got {keep}")
    kept = np.random.default_rng([seed, 11]).random(len(samples)) < keep
    return [s if k else replace(s, attributes={}) for s, k in zip(samples, kept, strict=True)]


def pose_weights(labels: np.ndarray, power: float) -> np.ndarray | None:
    """Per-sample weights ∝ (class frequency)^-power, for rebalancing e.g. head pose; ``None`` = uniform.
    Faces without the label get the median weight."""
    if power <= 0 or labels.size == 0 or (labels < 0).all():
        return None
    counts = np.bincount(labels[labels >= 0])
    w = np.ones(len(labels))
    has = labels >= 0
    w[has] = counts[labels[has]].astype(np.float64) ** -power
    w[~has] = np.median(w[has])
    return w / w.sum()


def mixture_probabilities(
    source_ids: np.ndarray, source_weights: Sequence[float | None], within: np.ndarray | None
) -> np.ndarray | None:
    """Per-face draw probabilities: source ``d`` gets share ``w_d / Σ w`` (its size when no source
    has a weight), split inside the source by ``within`` (uniform if ``None``).
    ``None`` when that is uniform over all faces (plain shuffling suffices)."""
    n_sources = len(source_weights)
    sizes = np.bincount(source_ids, minlength=n_sources).astype(np.float64)
    explicit = any(w is not None for w in source_weights)
    if not explicit and within is None:
        return None
    if explicit:
        share = np.array([1.0 if w is None else float(w) for w in source_weights])
        if (share < 0).any() or share[sizes > 0].sum() <= 0:
            raise ValueError(f"source weights must be ≥ 0 with a positive total, got {list(source_weights)}")
        share[sizes == 0] = 0.0
    else:
        share = sizes.copy()
    share /= share.sum()
    w = np.ones(len(source_ids)) if within is None else np.asarray(within, np.float64)
    p = np.empty(len(source_ids))
    for d in range(n_sources):
        m = source_ids == d
        if m.any():
            p[m] = share[d] * w[m] / w[m].sum()
    return p / p.sum()


def epoch_order(n: int, seed: int, epoch: int, probabilities: np.ndarray | None) -> list[int]:
    """The epoch's global order: a permutation, or ``n`` weighted draws with replacement."""
    rng = np.random.default_rng([seed, epoch, 7])
    if probabilities is None:
        return rng.permutation(n).tolist()
    return rng.choice(n, size=n, replace=True, p=probabilities).tolist()


def global_batches(order: Sequence[int], batch_size: int, world: int = 1) -> list[list[int]]:
    """Cut the order into global batches; a final batch with fewer than two faces per process is
    dropped (batch normalisation of a feature vector needs two samples to take statistics from)."""
    batches = [list(order[i : i + batch_size]) for i in range(0, len(order), batch_size)]
    return [b for b in batches if len(b) >= 2 * world]


def rank_batches(batches: Sequence[Sequence[int]], rank: int, world: int) -> list[list[int]]:
    """This process's share of every global batch: faces ``rank, rank + world, ...`` — the
    interleaving of torch's ``DistributedSampler``, applied per global batch so that the union
    over processes is exactly the single-process batch, for any batch size and for weighted
    draws (which ``DistributedSampler`` cannot do)."""
    return [list(b[rank::world]) for b in batches]
