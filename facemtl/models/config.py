"""Everything needed to rebuild a model and feed it: architecture, input and crop rule, tasks.

Like timm's pretrained configs, the preprocessing travels with the model (in the model card
beside the weights), so inference can never silently use another crop rule or normalisation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from facemtl.geometry import DEFAULT_CROP_SCALE
from facemtl.tasks import MTFL_TASKS, TaskSet


@dataclass(frozen=True)
class ConvSpec:
    """One conv layer of the backbone: ``out`` channels, square ``kernel``, ``stride``,
    ``padding`` ("same" or "valid") and whether a 2×2 max-pool follows."""

    out: int
    kernel: int = 3
    stride: int = 1
    padding: str = "same"
    pool: bool = False


@dataclass(frozen=True)
class ModelConfig:
    """A model preset. ``crop_scale`` is the crop rule of :mod:`facemtl.geometry`.

    ``trunk`` picks the sharing strategy: ``"shared"`` (hard parameter sharing: one FC feature
    for all tasks) or ``"mmoe"`` (``experts`` FC experts over the shared conv features, mixed
    per task by its own softmax gate).

    ``feature_norm`` puts batch normalisation between each FC feature layer and its ReLU. Without
    it most of the shared feature's units die early in training and never come back (227 of 256
    in the shipped facemtl_mtfl): the tasks then share a ~25-unit feature, and a task that found
    no unit of its own (glasses, in the MTFL + CelebA mix) cannot be learned by its head.
    """

    name: str
    convs: tuple[ConvSpec, ...]
    feature_dim: int = 256
    batch_norm: bool = True
    feature_norm: bool = False
    dropout: float = 0.0
    input_size: int = 40
    channels: int = 1
    mean: float = 0.5
    std: float = 0.5
    crop_scale: float = DEFAULT_CROP_SCALE
    tasks: TaskSet = field(default_factory=lambda: MTFL_TASKS)
    trunk: str = "shared"
    experts: int = 4
    kind: str = "landmarks"
    #: Attribute task → temperature its logits are divided by (:mod:`facemtl.calibration`); absent = 1.
    temperatures: dict[str, float] = field(default_factory=dict)

    def with_overrides(self, **kw: Any) -> ModelConfig:
        if "convs" in kw:
            kw["convs"] = tuple(c if isinstance(c, ConvSpec) else ConvSpec(**c) for c in kw["convs"])
        return replace(self, **kw)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["tasks"] = self.tasks.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        d = dict(d)
        d.setdefault("kind", "landmarks")  # files written before detectors existed
        d["convs"] = tuple(ConvSpec(**c) for c in d["convs"])
        d["tasks"] = TaskSet.from_dict(d["tasks"])
        return cls(**d)
