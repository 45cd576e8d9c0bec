"""Test-time averaging: a network's predictions on a crop averaged over views of the same crop —
its mirror image (flip test) and copies shifted by a few pixels (shift test).

The flip test is a standard step in landmark and pose estimation (e.g. HRNet's ``flip_test``).
The shift test answers something measured on this model: its landmarks move with the crop's
framing by more than their bias, so the mean over crops shifted a few pixels each way is closer to
the truth than any one of them (validation faces: 3.42 → 3.21 % on ground-truth crops;
docs/notebook.md). The model learned with random flips and shifts, so every view is
in-distribution; the views run as one batch.

It works on numpy arrays around one network call (:func:`~facemtl.models.arrays.array_net` adapts a
PyTorch model or an ONNX Runtime session): on a photo's few crops, numpy's small-array operations cost a fraction of
torch's, and cutting and averaging the views was a third of a face's time after the networks.
"""

from __future__ import annotations

import numpy as np

from facemtl.core.tasks import TaskSet
from facemtl.models.arrays import ArrayNet, ArrayOutputs

#: A view set: per pass, the views' offsets ``(dx, dy)`` in units of the shift.
ViewSet = tuple[tuple[tuple[int, int], ...], ...]

#: The shift test's view sets by name: for each pass over a face (the first crop, then each re-crop,
#: cycling through the entries), its views' offsets in units of the shift. ``plus``: the crop and its
#: four shifted copies in every pass (the first default, and what :func:`~facemtl.evaluation.evaluator.evaluate`
#: uses for its one pass); ``cross``: the four copies without the crop itself; ``split``: left/right
#: copies on the first crop and up/down copies on the re-crop — four network views per face instead of
#: ten. Chosen on validation faces (docs/notebook.md, "The shift test's views"): the crop itself adds
#: nothing to its four copies, and splitting them over the two passes keeps most of the gain.
#: (The names are :data:`~facemtl.analysis.options.VIEW_SETS`.)
SHIFT_VIEWS: dict[str, ViewSet] = {
    "plus": (((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)),),
    "cross": (((1, 0), (-1, 0), (0, 1), (0, -1)),),
    "split": (((1, 0), (-1, 0)), ((0, 1), (0, -1))),
}


def softmax(logits: np.ndarray) -> np.ndarray:
    """Class probabilities of logits ``(..., C)``."""
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def flip_averaged(net: ArrayNet, x: np.ndarray, tasks: TaskSet) -> ArrayOutputs:
    """``net``'s output format for crops ``x`` ``(B, C, S, S)``, averaged over ``x`` and its mirror.

    Mirrored landmarks come back to the original frame (x negated in unit crop coordinates, whose
    edges are ±1, and left/right slots swapped); class probabilities are permuted for flip-aware
    tasks (head pose: left ↔ right) and averaged; ``attributes`` holds the log of the mean
    probabilities, valid logits for softmax/argmax. MMoE gates are those of the unflipped view.
    """
    b = x.shape[0]
    out = net(np.concatenate([x, x[..., ::-1]]))
    lm = out["landmarks"]
    mirrored = lm[b:, list(tasks.landmarks.flip_permutation())] * np.array([-1.0, 1.0], lm.dtype)
    permutations = {t.name: t.flip_permutation for t in tasks.attributes}
    return _averaged(out, np.stack([lm[:b], mirrored]), permutations)


def shift_offsets(shift: float, size: int, views: str | ViewSet = "plus", pass_index: int = 0) -> list[tuple[int, int]]:
    """The shift test's views of an ``size``-pixel crop in pass ``pass_index`` (0: the first crop) of
    the view set ``views`` (a name of :data:`SHIFT_VIEWS` or a :data:`ViewSet`), as pixel offsets
    ``(dx, dy)`` of ``round(shift × size)`` pixels; only the crop itself when that rounds to 0. A shift
    of half the side or more would leave a view with none of the crop: refused."""
    if not 0.0 <= shift < 0.5:
        raise ValueError(f"shift_test is a fraction of the crop side in [0, 0.5), got {shift}")
    if isinstance(views, str) and views not in SHIFT_VIEWS:
        raise ValueError(f"shift views must be one of {', '.join(SHIFT_VIEWS)}, got {views!r}")
    passes = SHIFT_VIEWS[views] if isinstance(views, str) else views
    if not passes or not all(passes):
        raise ValueError(f"a view set needs at least one view in every pass, got {views!r}")
    t = round(shift * size)
    return [(0, 0)] if t == 0 else [(dx * t, dy * t) for dx, dy in passes[pass_index % len(passes)]]


def shift_averaged(
    net: ArrayNet, x: np.ndarray, tasks: TaskSet, shift: float, views: str | ViewSet = "plus", pass_index: int = 0
) -> ArrayOutputs:
    """``net``'s output format for crops ``x`` ``(B, C, S, S)``, averaged over the views of
    :func:`shift_offsets` (the crop's edge pixels repeated into the gap a shift leaves).

    View ``(dx, dy)`` shows crop pixel ``(u, v)`` at ``(u − dx, v − dy)``; its landmarks are moved
    back by ``(dx, dy)`` before averaging. Probabilities are averaged, as in :func:`flip_averaged`."""
    b, size = x.shape[0], x.shape[-1]
    offsets = shift_offsets(shift, size, views, pass_index)
    if offsets == [(0, 0)]:
        return net(x)
    idx = np.arange(size)
    # view pixel (u, v) = crop pixel (u + dx, v + dy), clamped to the crop: its edge repeated (one
    # take along each axis that moves: a fifth of the time of indexing both axes at once)
    crops = []
    for dx, dy in offsets:
        view = x if dy == 0 else np.take(x, np.clip(idx + dy, 0, size - 1), axis=-2)
        crops.append(view if dx == 0 else np.take(view, np.clip(idx + dx, 0, size - 1), axis=-1))
    out = net(np.concatenate(crops))
    lm = out["landmarks"]
    unit = 2.0 / size  # one crop pixel in unit coordinates
    moved = lm.reshape(len(offsets), b, *lm.shape[1:]) + np.array(offsets, lm.dtype)[:, None, None] * unit
    return _averaged(out, moved, {t.name: None for t in tasks.attributes})


def test_time_averaged(
    net: ArrayNet,
    x: np.ndarray,
    tasks: TaskSet,
    *,
    flip: bool = False,
    shift: float = 0.0,
    views: str | ViewSet = "plus",
    pass_index: int = 0,
) -> ArrayOutputs:
    """``net`` on crops ``x`` with the chosen test-time views: every shifted view (``shift``, a
    fraction of the crop side, 0 = none; ``views`` and ``pass_index``: :func:`shift_offsets`) also
    mirrored (``flip``)."""
    viewed: ArrayNet = (lambda v: flip_averaged(net, v, tasks)) if flip else net
    return shift_averaged(viewed, x, tasks, shift, views, pass_index)


def _averaged(
    out: ArrayOutputs, landmarks: np.ndarray, permutations: dict[str, tuple[int, ...] | None]
) -> ArrayOutputs:
    """The mean of ``n`` views run as one batch of ``b`` crops each: their landmarks ``(n, b, K, 2)``
    (already back in the first view's frame) and their attribute probabilities (class order fixed
    by ``permutations`` for every view after the first; log of the mean, valid logits)."""
    n, b = landmarks.shape[:2]
    result: ArrayOutputs = {"landmarks": landmarks.mean(0), "attributes": {}}
    for name, perm in permutations.items():
        p = softmax(out["attributes"][name]).reshape(n, b, -1)
        if perm is not None:
            p = np.concatenate([p[:1], p[1:][..., list(perm)]])
        result["attributes"][name] = np.log(p.mean(0))
    if "gates" in out:
        result["gates"] = {k: g[:b] for k, g in out["gates"].items()}
    return result
