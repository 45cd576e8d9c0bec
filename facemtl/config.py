"""Training recipe: a small JSON-serialisable dataclass, loaded from ``configs/*.json``.

Recipes live in ``configs/``, apart from the library (as torchvision keeps its references apart);
every field can also be overridden from the command line.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from facemtl.balancing import STRATEGIES
from facemtl.data.scenes import SceneConfig
from facemtl.models.multitask import TRUNKS
from facemtl.transforms import AugmentConfig

SOURCE_KINDS = ("mtfl", "300w", "photos")


@dataclass(frozen=True)
class DatasetSpec:
    """A training source: ``kind`` is ``mtfl`` (an MTFL-format file), ``300w`` (a folder of .pts,
    landmarks only, reduced to the 5 MTFL points) or ``photos`` (a face-photos file of whole
    photos with every face boxed, :mod:`facemtl.data.photos`: the detector's data).

    ``weight``: this source's share of each epoch's draws, relative to the other sources' (unset
    on every source = in proportion to size; unset on some = 1). ``attribute_fraction``: keep the
    attribute labels of only this random fraction of the source's training faces (the rest train
    landmarks only) — for studying how much attribute annotation a model needs.
    """

    path: str
    kind: str = "mtfl"
    weight: float | None = None
    attribute_fraction: float = 1.0

    def __post_init__(self) -> None:
        where = f"train source {self.path!r}"
        if self.kind not in SOURCE_KINDS:
            raise ValueError(f"{where}: kind must be one of {', '.join(SOURCE_KINDS)}, got {self.kind!r}")
        if not 0 <= self.attribute_fraction <= 1:
            raise ValueError(f"{where}: attribute_fraction must be in [0, 1], got {self.attribute_fraction}")
        if self.weight is not None and self.weight < 0:
            raise ValueError(f"{where}: weight must be ≥ 0, got {self.weight}")


def _dataset_spec(s: DatasetSpec | dict[str, str] | str) -> DatasetSpec:
    if isinstance(s, DatasetSpec):
        return s
    if isinstance(s, dict):
        return DatasetSpec(**s)
    return parse_source(s)


def parse_source(text: str) -> DatasetSpec:
    """``FILE`` (MTFL format) or ``KIND:PATH`` with KIND ``mtfl``, ``300w`` or ``photos``."""
    kind, sep, path = text.partition(":")
    if sep and kind in SOURCE_KINDS:
        return DatasetSpec(path, kind)
    return DatasetSpec(text)


@dataclass(frozen=True)
class TrainConfig:
    model: str = "facemtl_s"
    model_overrides: dict[str, Any] = field(default_factory=dict)
    train: tuple[DatasetSpec, ...] = (DatasetSpec("../shared/data/MTFL/training.txt"),)
    val_fraction: float = 0.1  # carved out of the training data, never the test set
    tasks: tuple[str, ...] | None = None  # auxiliary tasks to train; None = all the model has
    task_weights: dict[str, float] = field(default_factory=dict)  # λ per task
    landmark_loss: str = "wing"
    landmark_norm: str = "none"  # "iod": landmark loss per face in units of its inter-ocular distance
    balancing: str = "fixed"  # how task losses combine: "fixed" (λ), "uncertainty" (Kendall 2018), "dwa"
    epochs: int = 60
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_epochs: float = 1.0
    pose_balance: float = 0.5  # sample weight ∝ (pose frequency)^-pose_balance; 0 = off
    augment: AugmentConfig = AugmentConfig()  # landmark models: crop augmentation
    scenes: SceneConfig = SceneConfig()  # detectors: how training scenes are composed
    early_stop_patience: int = 0  # TCDCN task-wise early stopping; 0 = off
    seed: int = 0
    workers: int = 0  # DataLoader worker processes
    cache: bool = True  # decode every face once and keep the crops in memory; False = decode per draw
    threads: int = 0  # torch intra-op threads; 0 = torch's default
    amp: bool = True  # automatic mixed precision (float16) — on CUDA only
    channels_last: bool = True  # NHWC memory format — on CUDA only
    limit: int = 0  # use only the first N training faces (quick runs, tests); 0 = all

    def __post_init__(self) -> None:
        if self.balancing not in STRATEGIES:
            raise ValueError(f"balancing must be one of {', '.join(STRATEGIES)}; got {self.balancing!r}")
        trunk = self.model_overrides.get("trunk", "shared")
        if trunk not in TRUNKS:
            raise ValueError(f"model_overrides.trunk must be one of {', '.join(TRUNKS)}; got {trunk!r}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown training config key(s): {sorted(unknown)}")
        d = dict(d)
        if "train" in d:
            d["train"] = tuple(_dataset_spec(s) for s in d["train"])
        if "augment" in d and isinstance(d["augment"], dict):
            a = dict(d["augment"])
            if "scale" in a:
                a["scale"] = tuple(a["scale"])
            d["augment"] = AugmentConfig(**a)
        if "scenes" in d and isinstance(d["scenes"], dict):
            sc = dict(d["scenes"])
            for k in ("grid", "face_range"):
                if k in sc:
                    sc[k] = tuple(sc[k])
            d["scenes"] = SceneConfig(**sc)
        if d.get("tasks") is not None:
            d["tasks"] = tuple(d["tasks"])
        return cls(**d)

    @classmethod
    def from_json(cls, path: str | Path) -> TrainConfig:
        try:
            data = json.loads(Path(path).read_text())
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
