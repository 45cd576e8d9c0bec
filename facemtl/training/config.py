"""Training recipe: small JSON-serialisable dataclasses, loaded from JSON recipe files.

The recipes that made the shipped weights live in ``references/recipes/`` (named after the weights;
past recipes in ``experiments/recipes/``), apart from the library, as torchvision keeps its ``references/``.
Each option is declared once, here, with its help text and allowed values in the field's
metadata: :mod:`facemtl.cli` generates ``facemtl train``'s flags from these fields (so every
recipe field can be overridden from the command line) and ``__post_init__`` checks every value,
naming the field. This module imports no torch, OpenCV or albumentations, so parsing a command
line stays instant.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

from facemtl.core.fields import check_fields, from_json, option
from facemtl.core.files import data_package_dir

SOURCE_KINDS = ("mtfl", "300w", "photos", "celeba", "fairface")
#: Parts of a source: a 300-W folder's fixed parts (:func:`facemtl.data.w300.in_holdout`), CelebA's
#: official partitions, FairFace's and face-photos files' fixed validation fifth by file name
#: (:func:`facemtl.data.splits.in_validation`).
SOURCE_SPLITS = {
    "300w": ("all", "train", "holdout"),
    "celeba": ("train", "val"),
    "fairface": ("all", "train", "val"),
    "photos": ("all", "train", "val"),
}
SPLITS = ("all", "train", "holdout", "val")
#: Landmark markups a landmark model can regress (:mod:`facemtl.core.tasks`).
LANDMARK_COUNTS = (5, 68)
#: How task losses combine (:mod:`facemtl.training.balancing`).
BALANCING = ("fixed", "uncertainty", "dwa")
#: Trunks of the landmark network (:mod:`facemtl.models.multitask`).
TRUNK_NAMES = ("shared", "mmoe")
LANDMARK_LOSS_NAMES = ("l2", "l1", "wing")
LANDMARK_NORMS = ("none", "iod")


@dataclass(frozen=True)
class AugmentConfig:
    """Strength of landmark-model training augmentation; the defaults were chosen for in-the-wild faces."""

    SECTION: ClassVar[str] = "augment."

    flip: float = option(0.5, "probability of a mirror image (left/right landmarks swapped)", low=0, high=1)
    rotate: float = option(25.0, "rotation, degrees, uniform in ±rotate", low=0, high=180)
    scale: tuple[float, float] = option((0.85, 1.2), "zoom of the face inside the crop (low, high)", low=0.1)
    shift: float = option(0.08, "shift, fraction of the cached crop, uniform in ±shift", low=0, high=0.5)
    photometric: bool = option(True, "brightness, contrast, blur, noise and gray changes")
    # In-the-wild sets (AFLW) hold sideways and upside-down photos, annotated in the face's own
    # frame, that an upright-only model cannot read. Landmark slots keep their names under any rotation.
    any_rotation: float = option(
        0.0, "probability of drawing the rotation from ±180° instead of ±rotate", low=0, high=1
    )

    def __post_init__(self) -> None:
        check_fields(self, self.SECTION)
        if self.scale[0] > self.scale[1]:
            raise ValueError(f"augment.scale must be (low, high) with low ≤ high; got {self.scale}")


@dataclass(frozen=True)
class SceneConfig:
    """How the detector's training scenes are drawn (probabilities per scene unless stated)."""

    SECTION: ClassVar[str] = "scenes."

    size: int = option(256, "square canvas, px (a multiple of 32)", low=32)
    cache_side: int = option(256, "photos are kept in memory with this longer side at most", low=32)
    single: float = option(0.4, "one photo at a random scale", low=0, high=1)
    whole: float = option(
        0.0, "one photo of people (a 'whole' source) at about its own scale, faceless ones included", low=0, high=1
    )
    whole_scale: tuple[float, float] = option(
        (0.5, 1.5), "whole-photo scenes: scale of the photo, log-uniform", low=0.05
    )
    whole_replicate: bool = option(
        True,
        "whole-photo scenes: half get a replicated border (false: all a plain one; the streaks of faceless "
        "photos teach that streaks are background)",
    )
    close_up: float = option(0.15, "one face filling half to all of the canvas", low=0, high=1)
    grid: tuple[int, int] = option((2, 6), "otherwise a k × k mosaic, k drawn from this range", low=1)
    empty_tile: float = option(0.12, "per mosaic tile: face-free background instead of a photo", low=0, high=1)
    face_range: tuple[float, float] = option((12.0, 200.0), "single-photo scenes: face size, px, log-uniform", low=1)
    rotate: float = option(0.3, "probability of a rotation", low=0, high=1)
    max_angle: float = option(25.0, "rotation, degrees, uniform in ±max_angle", low=0, high=180)
    flip: float = option(0.5, "probability of a mirror image", low=0, high=1)
    gray: float = option(0.1, "probability of gray", low=0, high=1)
    blur: float = option(0.1, "probability of blur", low=0, high=1)
    noise: float = option(0.1, "probability of noise", low=0, high=1)
    lighting: float = option(0.8, "probability of a lighting change", low=0, high=1)
    min_face: float = option(7.0, "smaller faces, px, are ignored regions", low=0)
    min_visible: float = option(0.5, "faces less visible than this fraction are ignored regions", low=0, high=1)
    per_epoch: int = option(0, "scenes per training epoch; 0 = one per training photo", low=0)

    def __post_init__(self) -> None:
        check_fields(self, self.SECTION)
        if self.size % 32:
            raise ValueError(f"scenes.size must be a multiple of 32, got {self.size}")
        if self.grid[0] > self.grid[1]:
            raise ValueError(f"scenes.grid must be (low, high) with 1 ≤ low ≤ high, got {self.grid}")
        if self.whole + self.single + self.close_up > 1:
            raise ValueError("scenes.whole + scenes.single + scenes.close_up must be ≤ 1 (the rest are mosaics)")
        if not 0 < self.whole_scale[0] <= self.whole_scale[1]:
            raise ValueError(f"scenes.whole_scale must be (low, high) with 0 < low ≤ high, got {self.whole_scale}")


@dataclass(frozen=True)
class DatasetSpec:
    """A training source: ``kind`` is ``mtfl`` (an MTFL-format file), ``300w`` (a folder of .pts,
    landmarks only, reduced to the 5 MTFL points), ``celeba`` or ``photos`` (a face-photos file of whole
    photos with every face boxed, :mod:`facemtl.data.photos`: the detector's data).

    ``weight``: this source's share of each epoch's draws, relative to the other sources' (unset
    on every source = in proportion to size; unset on some = 1). ``attribute_fraction``: keep the
    attribute labels of only this random fraction of the source's training faces (the rest train
    landmarks only) — for studying how much attribute annotation a model needs. ``split``: for
    ``300w``, ``train`` or ``holdout`` reads one of the folder's two fixed parts; for ``fairface`` (gender
    and age bins, each face framed by facemtl's detector) ``train`` or ``val``, its fixed validation fifth
    (:func:`facemtl.data.w300.in_holdout`); for ``celeba`` (a CelebA root: attributes only, each
    face framed by facemtl's detector) an official partition, ``train`` or ``val`` (no default: val
    is where the attribute benchmark scores); for ``photos``, ``train`` or ``val`` by file name like
    FairFace; ``all`` every face. ``whole`` (``photos`` only): photos of people rather than of
    faces — detector scenes also show them whole at their own scale, those without a face included. ``pseudo_landmarks`` (``celeba``
    only): a shipped landmark model's points on each photo (:func:`facemtl.training.jobs.landmarks.locate_landmarks`)
    become its landmark targets, so the source trains the landmark head too (distillation); ``true``
    takes ``facemtl_mtfl``'s (trained on MTFL alone, so no photo is labelled by a model that trained
    on it), a name that model's (e.g. a model trained this way, for a second round). Its validation
    faces keep their attributes only.
    """

    path: str
    kind: str = "mtfl"
    weight: float | None = None
    attribute_fraction: float = 1.0
    split: str = "all"
    pseudo_landmarks: bool | str = False
    whole: bool = False

    def __post_init__(self) -> None:
        check_fields(self, "train source.")
        where = f"train source {self.path!r}"
        if self.whole and self.kind != "photos":
            raise ValueError(f"{where}: whole applies to photos sources (face-photos files)")
        if self.pseudo_landmarks and self.kind != "celeba":
            raise ValueError(f"{where}: pseudo_landmarks applies to celeba sources (the others are annotated)")
        if isinstance(self.pseudo_landmarks, str):
            from facemtl.models.pretrained import PRETRAINED

            landmark_models = [p.name for p in PRETRAINED.values() if p.kind == "landmarks"]
            if self.pseudo_landmarks not in landmark_models:
                raise ValueError(
                    f"{where}: pseudo_landmarks must be true or a shipped landmark model "
                    f"({', '.join(landmark_models)}), got {self.pseudo_landmarks!r}"
                )
        elif not isinstance(self.pseudo_landmarks, bool):
            raise ValueError(f"{where}: pseudo_landmarks must be true, false or a model name")
        if self.kind not in SOURCE_KINDS:
            raise ValueError(f"{where}: kind must be one of {', '.join(SOURCE_KINDS)}, got {self.kind!r}")
        if not 0 <= self.attribute_fraction <= 1:
            raise ValueError(f"{where}: attribute_fraction must be in [0, 1], got {self.attribute_fraction}")
        if self.weight is not None and self.weight < 0:
            raise ValueError(f"{where}: weight must be ≥ 0, got {self.weight}")
        allowed = SOURCE_SPLITS.get(self.kind, ("all",))
        if self.kind == "celeba" and self.split == "all":
            raise ValueError(f"{where}: name CelebA's partition, celeba:ROOT@train or @val (split: train or val)")
        if self.split not in allowed:
            if len(allowed) == 1:
                raise ValueError(
                    f"{where}: split applies to 300w, celeba, fairface and photos sources (MTFL has its own testing.txt)"
                )
            raise ValueError(f"{where}: split must be one of {', '.join(allowed)}, got {self.split!r}")

    @property
    def pseudo_labeller(self) -> str | None:
        """The shipped landmark model whose points are this source's landmark targets (None: none)."""
        if self.pseudo_landmarks is False:
            return None
        if self.pseudo_landmarks is True:
            from facemtl.models.pretrained import PSEUDO_LABELLER

            return PSEUDO_LABELLER
        return self.pseudo_landmarks

    @staticmethod
    def parse(text: str) -> DatasetSpec:
        """A source's text form (``KIND:PATH``), as a recipe's ``train`` list may give it."""
        return parse_source(text)


#: Where the shipped recipes are: ``references/recipes/`` in a checkout, the data-only package
#: ``facemtl.recipes`` in the wheel (see ``pyproject.toml``).
_CHECKOUT_RECIPES = Path(__file__).resolve().parents[2] / "references" / "recipes"


def recipes_dir() -> Path:
    """The folder of the recipes shipped with facemtl."""
    return data_package_dir("facemtl.recipes", _CHECKOUT_RECIPES)


def recipe_path(name: str | Path) -> Path:
    """A recipe file as given, or a shipped recipe by name (``facemtl_mtfl`` → its ``.json``), so
    ``facemtl train --config NAME`` works after a pip install as in a checkout."""
    path = Path(name)
    if path.is_file():
        return path
    if path.is_dir():
        raise ValueError(f"{path}: is a folder, not a recipe file")
    shipped = recipes_dir() / f"{path.name.removesuffix('.json')}.json"
    if path.parent == Path(".") and shipped.is_file():
        return shipped
    names = sorted(p.stem for p in recipes_dir().glob("*.json"))
    raise FileNotFoundError(
        f"{name}: no such recipe file, nor a shipped recipe (shipped: {', '.join(names) or 'none'})"
    )


def parse_source(text: str) -> DatasetSpec:
    """``FILE`` (MTFL format) or ``KIND:PATH`` with KIND ``mtfl``, ``300w``, ``celeba``, ``fairface`` or
    ``photos``; a ``300w`` folder may end in ``@train`` or ``@holdout`` (its fixed parts), a ``celeba``
    root in ``@train`` or ``@val`` (its official partitions), a ``fairface`` root in ``@train`` or
    ``@val`` (its fixed validation fifth)."""
    kind, sep, path = text.partition(":")
    if sep and kind in SOURCE_KINDS:
        base, at, split = path.rpartition("@")
        if kind in SOURCE_SPLITS and at and split in SPLITS:
            return DatasetSpec(base, kind, split=split)
        return DatasetSpec(path, kind)
    return DatasetSpec(text)


@dataclass(frozen=True)
class TrainConfig:
    """One training recipe: model, data, losses, optimisation and run settings."""

    SECTION: ClassVar[str] = ""
    LABEL: ClassVar[str] = "training config"  # how errors name it

    model: str = option("facemtl_s", "registered model name (facemtl models lists the shipped ones)")
    landmarks: int = option(
        5,
        "landmark markup: 5 (MTFL) or 68 (iBUG/300-W; 5-point faces train it through its 5 derived points)",
        choices=LANDMARK_COUNTS,
    )
    init: str = option(
        "", "start from these weights (a shipped name or a file): every tensor whose shape fits is copied"
    )
    model_overrides: dict[str, Any] = option(
        help="model config fields to change, e.g. trunk=mmoe experts=4 input_size=80", factory=dict
    )
    freeze: tuple[str, ...] = option(
        (),
        "model parts kept as they are, weights and batch-norm statistics (e.g. trunk,heads.landmarks: "
        "new attribute heads that cannot move the landmarks; the best epoch is then the lowest attribute loss)",
    )
    train: tuple[DatasetSpec, ...] = option(
        (DatasetSpec("../shared/data/MTFL/training.txt"),),
        "training sources: FILE (MTFL format) or KIND:PATH with KIND mtfl, 300w (PATH@train: its fixed training part), "
        "celeba (ROOT@train), fairface (ROOT@train: gender and age) or photos",
    )
    val_fraction: float = option(
        0.1, "validation share carved out of the training data (never the test set)", low=0, high=0.9
    )
    tasks: tuple[str, ...] | None = option(
        None, "auxiliary tasks to train, comma-separated ('' = landmarks only; unset = all)"
    )
    task_weights: dict[str, float] = option(help="λ per task, e.g. smile=0.5 pose=0.3", factory=dict)
    landmark_loss: str = option("wing", "landmark regression loss", choices=LANDMARK_LOSS_NAMES)
    landmark_norm: str = option(
        "none", "iod: landmark loss per face in units of its inter-ocular distance", choices=LANDMARK_NORMS
    )
    balancing: str = option(
        "fixed", "how task losses combine: fixed λ, uncertainty (Kendall 2018) or dwa", choices=BALANCING
    )
    epochs: int = option(60, "training epochs", low=1)
    batch_size: int = option(64, "global batch size (split over processes under torchrun)", low=1)
    lr: float = option(2e-3, "peak learning rate (AdamW, warm-up then cosine)", low=0)
    weight_decay: float = option(1e-4, "AdamW weight decay", low=0)
    warmup_epochs: float = option(1.0, "linear learning-rate warm-up, epochs", low=0)
    ema_decay: float = option(
        0.0,
        "exponential moving average of the weights and batch-norm statistics, updated every step; "
        "validation scores it and best.safetensors holds it; 0 = off (e.g. 0.999)",
        low=0,
        high=0.99999,
    )
    pose_balance: float = option(0.5, "sample weight ∝ (pose frequency)^-pose_balance; 0 = off", low=0)
    augment: AugmentConfig = option(AugmentConfig(), "landmark models: crop augmentation")
    scenes: SceneConfig = option(SceneConfig(), "detectors: how training scenes are composed")
    early_stop_patience: int = option(0, "TCDCN task-wise early stopping, epochs; 0 = off", low=0)
    seed: int = option(0, "random seed of data order, augmentation and initialisation")
    workers: int = option(0, "DataLoader worker processes", low=0)
    cache: bool = option(True, "decode every face once and keep the crops in memory")
    threads: int = option(0, "torch intra-op threads; 0 = torch's default", low=0)
    amp: bool = option(True, "automatic mixed precision (float16), on CUDA only")
    channels_last: bool = option(True, "NHWC memory format, on CUDA only")
    limit: int = option(0, "use only the first N training faces (quick runs, tests); 0 = all", low=0)

    def __post_init__(self) -> None:
        check_fields(self)
        trunk = self.model_overrides.get("trunk", "shared")
        if trunk not in TRUNK_NAMES:
            raise ValueError(f"model_overrides.trunk must be one of {', '.join(TRUNK_NAMES)}; got {trunk!r}")
        for spec in self.train:  # before the labeller runs over thousands of photos, not after
            if spec.pseudo_labeller:
                from facemtl.models.pretrained import get_pretrained

                card = get_pretrained(spec.pseudo_labeller).card()
                points = len(card["config"]["tasks"]["landmarks"]["names"])
                if points != self.landmarks:
                    raise ValueError(
                        f"train source {spec.path!r}: pseudo_landmarks {spec.pseudo_labeller!r} gives "
                        f"{points} points, the recipe trains {self.landmarks}"
                    )

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """A recipe from plain JSON values; unknown keys, here or in a section, and values of the
        wrong type (a number for a section, a string for a list) are errors naming the field."""
        return from_json(cls, d)

    @classmethod
    def from_json(cls, path: str | Path) -> TrainConfig:
        """A recipe file, or the name of a recipe shipped with facemtl (:func:`recipe_path`)."""
        path = recipe_path(path)
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{e.lineno}: invalid JSON ({e.msg})") from None
        if not isinstance(data, dict):
            raise ValueError(f"{path}: a training config must be a JSON object")
        try:
            return cls.from_dict(data)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{path}: {e}") from None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
