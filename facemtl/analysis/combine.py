"""Several landmark estimates of the same faces, combined by how well they agree: the passes of
:class:`~facemtl.analysis.analyzer.FaceAnalyzer` over a first crop and its re-crops, and the two views of
a photo and its mirror image. Estimates that agree are averaged (their framing errors partly
cancel); where they disagree, one of them started from a badly framed crop, and the one that
agrees with itself is kept. The thresholds were chosen on validation faces
(``references/benchmarks/end_to_end.py --validation`` / ``--detector-validation``; docs/notebook.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from facemtl.core.tasks import LandmarkSpec, interocular_distance

#: Passes are averaged only where each lies within this fraction of the inter-ocular distance (mean
#: point distance) of the last one; chosen on validation faces (``references/benchmarks/end_to_end.py --validation``).
AVERAGE_WITHIN = 0.05
#: With ``mirror``, a face's landmarks from the photo and from its mirror image are averaged where
#: they lie within this fraction of the inter-ocular distance; chosen on validation faces, as above.
MIRROR_AGREE = 0.1


def look_again(mode: str, seeded: np.ndarray, spread: np.ndarray) -> np.ndarray:
    """Which faces the mirror view should see: all (``always``), none (``never``), or (``auto``)
    those whose first crop was centred by the detector's points (``seeded``) and whose passes still
    disagree beyond :data:`AVERAGE_WITHIN` — the faces :func:`combine_passes` leaves at their last
    pass, a badly framed first crop."""
    if mode == "auto":
        return seeded & (spread > AVERAGE_WITHIN)
    return np.full(len(spread), mode == "always")


def pass_spread(passes: Sequence[np.ndarray], spec: LandmarkSpec) -> np.ndarray:
    """How far the earlier passes over each face lie from the last one (the largest mean point
    distance, as a fraction of the last pass's inter-ocular distance), ``(N,)``: a face's
    self-consistency — 0 with a single pass. A first crop framed far off shows up as a large spread."""
    last = passes[-1]
    if len(passes) == 1 or len(last) == 0:
        return np.zeros(len(last))
    iod = np.maximum(interocular_distance(last, spec), 1e-6)
    return np.max([np.linalg.norm(p - last, axis=-1).mean(-1) for p in passes[:-1]], axis=0) / iod


def combine_passes(
    passes: Sequence[np.ndarray],
    spec: LandmarkSpec,
    within: float = AVERAGE_WITHIN,
    *,
    spread: np.ndarray | None = None,
) -> np.ndarray:
    """The landmarks of several passes over the same faces, each ``(N, K, 2)``: their mean where
    every pass lies within ``within`` × the inter-ocular distance of the last, else the last pass
    (passes that disagree mean a first crop framed far off, and the re-crop is the better estimate).
    With the landmarks' :func:`pass_spread` given as ``spread``, ``passes`` may be any per-face
    estimates ``(N, ...)`` (e.g. class probabilities), combined by the landmarks' agreement."""
    spread = pass_spread(passes, spec) if spread is None else spread
    agree = (spread <= within).reshape(-1, *[1] * (np.ndim(passes[-1]) - 1))
    return np.where(agree, np.mean(passes, axis=0), passes[-1])


def merge_views(
    own: np.ndarray,
    mirror: np.ndarray,
    own_spread: np.ndarray,
    mirror_spread: np.ndarray,
    spec: LandmarkSpec,
    agree: float = MIRROR_AGREE,
) -> np.ndarray:
    """One face set's landmarks found in a photo and in its mirror image (mapped back), ``(N, K, 2)``
    each: their mean where they lie within ``agree`` × the inter-ocular distance of each other, else
    the view whose passes agree better (:func:`pass_spread`) — where the views disagree, one of the
    detections framed the face badly, and its passes show it."""
    iod = np.maximum(interocular_distance((own + mirror) / 2, spec), 1e-6)  # symmetric in the two views
    apart = np.linalg.norm(own - mirror, axis=-1).mean(-1) / iod
    better = np.where((own_spread <= mirror_spread)[:, None, None], own, mirror)
    return np.where((apart <= agree)[:, None, None], (own + mirror) / 2, better)
