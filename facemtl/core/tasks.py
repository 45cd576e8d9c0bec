"""Tasks declared as data: which landmarks a model regresses and which attributes it classifies.

A model, its loss, its datasets and its model card are all built from one ``TaskSet``, so a model
with 68 points or with other attributes needs no code change, only another ``TaskSet``.

Left/right convention (as in MTFL and 300-W): "left" is the *image's* left, i.e. the smaller x
coordinate on an upright face seen in the photo — the subject's right eye is ``left_eye``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from enum import IntEnum
from typing import Any

import numpy as np

from facemtl.core.fields import check_fields, from_json, option

#: Bounds on a markup read from a file (a weights header is untrusted input).
MAX_POINTS = 1000
MAX_CLASSES = 1000


class Landmark5(IntEnum):
    """The five MTFL landmarks, in file order.

    "Left" means the image's left (smaller x on an upright face), not the subject's left.
    A horizontal flip swaps ``LEFT_EYE``/``RIGHT_EYE`` and ``MOUTH_LEFT``/``MOUTH_RIGHT``.
    """

    LEFT_EYE = 0
    RIGHT_EYE = 1
    NOSE = 2
    MOUTH_LEFT = 3
    MOUTH_RIGHT = 4


@dataclass(frozen=True)
class LandmarkSpec:
    """A set of K named points.

    ``flip_pairs`` are index pairs that trade places under a horizontal flip.
    ``iod_groups`` are the two index groups whose mean positions define the normalising
    inter-ocular distance (for 5 points: the two eye landmarks).
    ``to_mtfl5`` are the index groups whose means are the five MTFL points (``None``: these *are*
    the five points). The crop rule always reads those five, so every markup frames a face the
    same way, a detector's 5 points can seed any model, and 5-point faces can train a model of
    more points through them (:func:`mtfl5_points`).
    ``contours`` are the index chains a drawing joins (closed when the last index repeats the first).
    """

    names: tuple[str, ...] = option(items=(1, MAX_POINTS))
    flip_pairs: tuple[tuple[int, int], ...] = option(low=0, high=MAX_POINTS)
    iod_groups: tuple[tuple[int, ...], tuple[int, ...]] = option(low=0, high=MAX_POINTS)
    to_mtfl5: tuple[tuple[int, ...], ...] | None = option(None, low=0, high=MAX_POINTS)
    contours: tuple[tuple[int, ...], ...] = option((), low=0, high=MAX_POINTS)

    def __post_init__(self) -> None:
        check_fields(self, "tasks.landmarks.")
        k = len(self.names)
        groups = {"flip_pairs": self.flip_pairs, "iod_groups": self.iod_groups, "contours": self.contours}
        groups["to_mtfl5"] = self.to_mtfl5 or ()
        for name, group in groups.items():
            if any(i >= k for g in group for i in g):
                raise ValueError(f"tasks.landmarks.{name}: a point index ≥ the {k} points")
        if not all(self.iod_groups):
            raise ValueError("tasks.landmarks.iod_groups: each of the two groups needs a point")
        if self.to_mtfl5 is not None and (len(self.to_mtfl5) != 5 or not all(self.to_mtfl5)):
            raise ValueError("tasks.landmarks.to_mtfl5 must be 5 non-empty groups of points")
        if self.to_mtfl5 is None and k != 5:
            raise ValueError(
                f"tasks.landmarks: {k} points need to_mtfl5 (the groups whose means are the 5 MTFL points)"
            )

    @property
    def num_points(self) -> int:
        return len(self.names)

    def flip_permutation(self) -> list[int]:
        """Index map for a horizontal flip: ``flipped[i] = original[perm[i]]``."""
        perm = list(range(self.num_points))
        for a, b in self.flip_pairs:
            perm[a], perm[b] = b, a
        return perm

    def mtfl5(self, points: Any) -> Any:
        """This markup's ``(..., K, 2)`` points (numpy or torch) → the five MTFL points ``(..., 5, 2)``."""
        if self.to_mtfl5 is None:
            return points
        return _stack([points[..., list(g), :].mean(-2) for g in self.to_mtfl5], points)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], section: str = "tasks.landmarks.") -> LandmarkSpec:
        return from_json(cls, d, section)


def _stack(parts: list[Any], like: Any) -> Any:
    """``np.stack`` or ``torch.stack`` on axis -2, whichever ``like`` is."""
    if isinstance(like, np.ndarray):
        return np.stack(parts, axis=-2).astype(like.dtype, copy=False)
    import torch

    return torch.stack(parts, dim=-2)


def interocular_distance(gt: np.ndarray, spec: LandmarkSpec) -> np.ndarray:
    """``(N,)`` distance between the means of the two ``iod_groups`` of each face."""
    a = gt[:, list(spec.iod_groups[0])].mean(axis=1)
    b = gt[:, list(spec.iod_groups[1])].mean(axis=1)
    return np.linalg.norm(a - b, axis=1)


MTFL5 = LandmarkSpec(
    names=tuple(m.name.lower() for m in Landmark5),
    flip_pairs=((0, 1), (3, 4)),
    iod_groups=((0,), (1,)),
)


def _ibug68() -> LandmarkSpec:
    """The 68-point iBUG/300-W markup (0-based indices); IOD = outer eye corners 36 and 45."""
    names = (
        [f"jaw_{i}" for i in range(17)]
        + [f"brow_{i}" for i in range(10)]
        + [f"nose_{i}" for i in range(9)]
        + [f"eye_{i}" for i in range(12)]
        + [f"mouth_{i}" for i in range(20)]
    )
    pairs = [(i, 16 - i) for i in range(8)]  # jaw
    pairs += [(17 + i, 26 - i) for i in range(5)]  # brows
    pairs += [(31, 35), (32, 34)]  # nostrils
    pairs += [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]  # eyes
    pairs += [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58)]  # outer lip
    pairs += [(60, 64), (61, 63), (65, 67)]  # inner lip
    chains = [range(0, 17), range(17, 22), range(22, 27), range(27, 31), range(31, 36)]
    loops = [range(36, 42), range(42, 48), range(48, 60), range(60, 68)]
    contours = [tuple(c) for c in chains] + [(*c, c[0]) for c in loops]
    return LandmarkSpec(
        names=tuple(names),
        flip_pairs=tuple(pairs),
        iod_groups=((36,), (45,)),
        to_mtfl5=IBUG68_TO_MTFL5,
        contours=tuple(contours),
    )


#: The usual 68 → 5 reduction: eye centres are means of the eye contours (0-based 36–41, 42–47),
#: nose tip 30, mouth corners 48 and 54.
IBUG68_TO_MTFL5: tuple[tuple[int, ...], ...] = (
    tuple(range(36, 42)),
    tuple(range(42, 48)),
    (30,),
    (48,),
    (54,),
)

IBUG68 = _ibug68()

LANDMARK_SPECS: dict[str, LandmarkSpec] = {"mtfl5": MTFL5, "ibug68": IBUG68}


def spec_for_points(k: int) -> LandmarkSpec:
    """The shipped markup with ``k`` points (5: MTFL, 68: iBUG/300-W)."""
    for spec in LANDMARK_SPECS.values():
        if spec.num_points == k:
            return spec
    raise ValueError(f"no landmark markup with {k} points; facemtl knows 5 (MTFL) and 68 (iBUG)")


def mtfl5_points(points: np.ndarray) -> np.ndarray:
    """Any shipped markup's ``(K, 2)`` points → the five MTFL points the crop rule reads."""
    return spec_for_points(points.shape[-2]).mtfl5(points)


@dataclass(frozen=True)
class AttributeTask:
    """One auxiliary classification head.

    ``weight`` is TCDCN's λ. ``flip_permutation`` maps class indices under a horizontal
    flip (head pose: left ↔ right); ``None`` means the label is flip-invariant. ``values``: a number
    per class (age bins: their midpoints in years) for an ordered task: its loss spreads each label
    over the neighbouring classes (:func:`ordinal_targets`), and a prediction reports the expected
    value besides the most probable class.
    """

    name: str
    labels: tuple[str, ...] = option(items=(2, MAX_CLASSES))
    weight: float = option(1.0, low=0, high=1e6)
    flip_permutation: tuple[int, ...] | None = option(None)
    values: tuple[float, ...] | None = option(None, low=-1e9, high=1e9)

    def __post_init__(self) -> None:
        check_fields(self, f"tasks.attributes.{self.name}." if isinstance(self.name, str) else "tasks.attributes.")
        perm = self.flip_permutation
        if perm is not None and sorted(perm) != list(range(len(self.labels))):
            raise ValueError(
                f"tasks.attributes.{self.name}.flip_permutation must reorder its {len(self.labels)} classes"
            )
        if self.values is not None and len(self.values) != len(self.labels):
            raise ValueError(f"tasks.attributes.{self.name}.values: one per class ({len(self.labels)})")

    @property
    def num_classes(self) -> int:
        return len(self.labels)


MTFL_ATTRIBUTES: tuple[AttributeTask, ...] = (
    AttributeTask("gender", ("male", "female"), 1.0),
    AttributeTask("smile", ("smiling", "not_smiling"), 1.0),
    AttributeTask("glasses", ("glasses", "no_glasses"), 1.0),
    AttributeTask(
        "pose",
        ("left_profile", "left", "frontal", "right", "right_profile"),
        1.0,
        flip_permutation=(4, 3, 2, 1, 0),
    ),
)


#: Age as FairFace labels it: nine bins, each with its midpoint in years (an ordered task).
AGE = AttributeTask(
    "age",
    ("0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "70+"),
    1.0,
    values=(1.0, 6.0, 15.0, 25.0, 35.0, 45.0, 55.0, 65.0, 75.0),
)
#: Every attribute task facemtl knows, by name: what a recipe's ``tasks`` may add to a model's set.
ATTRIBUTE_TASKS: dict[str, AttributeTask] = {t.name: t for t in (*MTFL_ATTRIBUTES, AGE)}
#: How far an ordered task's label spreads over its neighbouring classes (a Gaussian, in classes).
ORDINAL_SIGMA = 1.0


def ordinal_targets(num_classes: int, sigma: float = ORDINAL_SIGMA) -> np.ndarray:
    """Row y: the target distribution of class y of an ordered task — a Gaussian of ``sigma`` classes
    over the class indices, normalised (label distribution learning, Gao et al. 2017): a guess one
    bin off costs less than one five bins off, and a bin's neighbours learn from it."""
    k = np.arange(num_classes)
    d = np.exp(-((k[None, :] - k[:, None]) ** 2) / (2 * sigma**2))
    return d / d.sum(1, keepdims=True)


@dataclass(frozen=True)
class TaskSet:
    """The main landmark task plus any number of auxiliary attribute tasks."""

    landmarks: LandmarkSpec
    attributes: tuple[AttributeTask, ...] = option((), items=(0, 64))
    landmark_weight: float = option(1.0, low=0, high=1e6)

    def __post_init__(self) -> None:
        check_fields(self, "tasks.")
        names = self.attribute_names
        if len(set(names)) != len(names) or "landmarks" in names:
            raise ValueError(f"tasks.attributes: names must be unique and not 'landmarks'; got {list(names)}")

    @property
    def attribute_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.attributes)

    def attribute(self, name: str) -> AttributeTask:
        for a in self.attributes:
            if a.name == name:
                return a
        raise KeyError(f"no attribute task named {name!r}; have {self.attribute_names}")

    def with_weights(self, weights: dict[str, float]) -> TaskSet:
        """A copy with some λ replaced; weight 0 removes nothing (the head stays), it only stops training it."""
        unknown = set(weights) - set(self.attribute_names) - {"landmarks"}
        if unknown:
            raise KeyError(f"unknown task(s) {sorted(unknown)}; have {['landmarks', *self.attribute_names]}")
        attrs = tuple(replace(a, weight=float(weights.get(a.name, a.weight))) for a in self.attributes)
        return TaskSet(self.landmarks, attrs, float(weights.get("landmarks", self.landmark_weight)))

    def subset(self, names: list[str] | tuple[str, ...]) -> TaskSet:
        """The named attribute tasks, in that order: this set's own, or one facemtl knows
        (:data:`ATTRIBUTE_TASKS`, e.g. ``age``) added (landmarks-only is ``subset([])``)."""
        own = {a.name: a for a in self.attributes}
        for n in names:
            if n not in own and n not in ATTRIBUTE_TASKS:
                self.attribute(n)  # the error naming the tasks there are
        return TaskSet(self.landmarks, tuple(own.get(n) or ATTRIBUTE_TASKS[n] for n in names), self.landmark_weight)

    def to_dict(self) -> dict[str, Any]:
        return {
            "landmarks": self.landmarks.to_dict(),
            "landmark_weight": self.landmark_weight,
            "attributes": [asdict(a) for a in self.attributes],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], section: str = "tasks.") -> TaskSet:
        return from_json(cls, d, section)


MTFL_TASKS = TaskSet(MTFL5, MTFL_ATTRIBUTES)
