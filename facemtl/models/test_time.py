"""Test-time averaging: a network's predictions on a crop averaged over views of the same crop —
its mirror image (flip test) and copies shifted by a few pixels (shift test).

The flip test is a standard step in landmark and pose estimation (e.g. HRNet's ``flip_test``).
The shift test answers something measured on this model: its landmarks move with the crop's
framing by more than their bias, so the mean over crops shifted a few pixels each way is closer to
the truth than any one of them (validation faces: 3.42 → 3.21 % on ground-truth crops;
docs/results.md). The model learned with random flips and shifts, so every view is
in-distribution; the views run as one batch.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn import functional as F

from facemtl.tasks import TaskSet
from facemtl.types import NetOutputs

Net = Callable[[torch.Tensor], NetOutputs]

#: :class:`~facemtl.inference.FaceAnalyzer`'s shift (a fraction of the crop side: 3 px of a 64-px
#: crop), chosen among 0.03 / 0.05 / 0.07 on validation faces (docs/results.md).
SHIFT_TEST = 0.05

#: The shift test's view sets by name: for each pass over a face (the first crop, then each re-crop,
#: cycling through the entries), its views' offsets in units of the shift. ``plus``: the crop and its
#: four shifted copies in every pass (the first default, and what :func:`~facemtl.evaluation.evaluate`
#: uses for its one pass); ``cross``: the four copies without the crop itself; ``split``: left/right
#: copies on the first crop and up/down copies on the re-crop — four network views per face instead of
#: ten. Chosen on validation faces (docs/results.md, "The shift test's views"): the crop itself adds
#: nothing to its four copies, and splitting them over the two passes keeps most of the gain.
#: A view set: per pass, the views' offsets ``(dx, dy)`` in units of the shift.
ViewSet = tuple[tuple[tuple[int, int], ...], ...]

SHIFT_VIEWS: dict[str, ViewSet] = {
    "plus": (((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)),),
    "cross": (((1, 0), (-1, 0), (0, 1), (0, -1)),),
    "split": (((1, 0), (-1, 0)), ((0, 1), (0, -1))),
}
#: :class:`~facemtl.inference.FaceAnalyzer`'s view set.
DEFAULT_VIEWS = "split"


def flip_averaged(net: Net, x: torch.Tensor, tasks: TaskSet) -> NetOutputs:
    """``net``'s output format for crops ``x`` ``(B, C, S, S)``, averaged over ``x`` and its mirror.

    Mirrored landmarks come back to the original frame (x negated in unit crop coordinates, whose
    edges are ±1, and left/right slots swapped); class probabilities are permuted for flip-aware
    tasks (head pose: left ↔ right) and averaged; ``attributes`` holds the log of the mean
    probabilities, valid logits for softmax/argmax. MMoE gates are those of the unflipped view.
    """
    b = x.shape[0]
    out = net(torch.cat([x, x.flip(-1)]))
    lm = out["landmarks"]
    mirrored = lm[b:, tasks.landmarks.flip_permutation()] * lm.new_tensor([-1.0, 1.0])
    permutations = {t.name: t.flip_permutation for t in tasks.attributes}
    return _averaged(out, torch.stack([lm[:b], mirrored]), permutations)


def shift_offsets(
    shift: float, size: int, views: str | ViewSet = "plus", pass_index: int = 0
) -> list[tuple[int, int]]:
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
    net: Net, x: torch.Tensor, tasks: TaskSet, shift: float, views: str | ViewSet = "plus", pass_index: int = 0
) -> NetOutputs:
    """``net``'s output format for crops ``x`` ``(B, C, S, S)``, averaged over the views of
    :func:`shift_offsets` (the crop's edge pixels repeated into the gap a shift leaves).

    View ``(dx, dy)`` shows crop pixel ``(u, v)`` at ``(u − dx, v − dy)``; its landmarks are moved
    back by ``(dx, dy)`` before averaging. Probabilities are averaged, as in :func:`flip_averaged`."""
    b, size = x.shape[0], x.shape[-1]
    offsets = shift_offsets(shift, size, views, pass_index)
    if offsets == [(0, 0)]:
        return net(x)
    t = max(max(abs(dx), abs(dy)) for dx, dy in offsets)
    padded = F.pad(x, (t, t, t, t), mode="replicate")
    crops = [padded[..., t + dy : t + dy + size, t + dx : t + dx + size] for dx, dy in offsets]
    out = net(torch.cat(crops))
    lm = out["landmarks"]
    unit = 2.0 / size  # one crop pixel in unit coordinates
    # moved back into the crop's frame
    moved = lm.reshape(len(offsets), b, *lm.shape[1:]) + lm.new_tensor(offsets)[:, None, None] * unit
    return _averaged(out, moved, {t.name: None for t in tasks.attributes})


def test_time_averaged(
    net: Net,
    x: torch.Tensor,
    tasks: TaskSet,
    *,
    flip: bool = False,
    shift: float = 0.0,
    views: str | ViewSet = "plus",
    pass_index: int = 0,
) -> NetOutputs:
    """``net`` on crops ``x`` with the chosen test-time views: every shifted view (``shift``, a
    fraction of the crop side, 0 = none; ``views`` and ``pass_index``: :func:`shift_offsets`) also
    mirrored (``flip``)."""
    viewed: Net = (lambda v: flip_averaged(net, v, tasks)) if flip else net
    return shift_averaged(viewed, x, tasks, shift, views, pass_index)


def _averaged(out: NetOutputs, landmarks: torch.Tensor, permutations: dict[str, tuple[int, ...] | None]) -> NetOutputs:
    """The mean of ``n`` views run as one batch of ``b`` crops each: their landmarks ``(n, b, K, 2)``
    (already back in the first view's frame) and their attribute probabilities (class order fixed
    by ``permutations`` for every view after the first; log of the mean, valid logits). Whole-batch
    tensor operations: this runs on every crop ``predict`` sees, where a loop of small ones costs
    a noticeable share of a face's time."""
    n, b = landmarks.shape[:2]
    result: NetOutputs = {"landmarks": landmarks.mean(0), "attributes": {}}
    for name, perm in permutations.items():
        p = torch.softmax(out["attributes"][name].float(), 1).reshape(n, b, -1)
        if perm is not None:
            p = torch.cat([p[:1], p[1:, :, list(perm)]])
        result["attributes"][name] = torch.log(p.mean(0))
    if "gates" in out:
        result["gates"] = {k: g[:b] for k, g in out["gates"].items()}
    return result
