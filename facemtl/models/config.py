"""Everything needed to rebuild a model and feed it: architecture, input and crop rule, tasks.

Like timm's pretrained configs, the preprocessing travels with the model (in the model card
beside the weights), so inference can never silently use another crop rule or normalisation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from facemtl.core.fields import check_fields, from_json, option, replace_fields
from facemtl.core.geometry import DEFAULT_CROP_SCALE
from facemtl.core.tasks import MTFL_TASKS, TaskSet
from facemtl.models.detector_config import DetectorConfig

#: Sharing strategies of the landmark network's trunk.
TRUNKS = ("shared", "mmoe")
#: The largest landmark-network input side a config may ask for. A weights file is untrusted
#: input: its header must not make facemtl allocate gigabytes (an FC layer grows with the side²).
MAX_INPUT_SIZE = 512


@dataclass(frozen=True)
class ConvSpec:
    """One conv layer of the backbone: ``out`` channels, square ``kernel``, ``stride``,
    ``padding`` ("same" or "valid") and whether a 2×2 max-pool follows."""

    out: int = option(16, low=1, high=2048)
    kernel: int = option(3, low=1, high=15)
    stride: int = option(1, low=1, high=4)
    padding: str = option("same", choices=("same", "valid"))
    pool: bool = option(False)

    def __post_init__(self) -> None:
        check_fields(self, "convs[].")


@dataclass(frozen=True)
class ModelConfig:
    """A model preset. ``crop_scale`` is the crop rule of :mod:`facemtl.core.geometry`.

    ``trunk`` picks the sharing strategy: ``"shared"`` (hard parameter sharing: one FC feature
    for all tasks) or ``"mmoe"`` (``experts`` FC experts over the shared conv features, mixed
    per task by its own softmax gate).

    ``feature_norm`` puts batch normalisation between each FC feature layer and its ReLU. Without
    it most of the shared feature's units die early in training and never come back (227 of 256
    in the shipped facemtl_mtfl): the tasks then share a ~25-unit feature, and a task that found
    no unit of its own (glasses, in the MTFL + CelebA mix) cannot be learned by its head.
    """

    name: str
    convs: tuple[ConvSpec, ...] = option(items=(1, 32))
    feature_dim: int = option(256, low=1, high=8192)
    batch_norm: bool = option(True)
    feature_norm: bool = option(False)
    dropout: float = option(0.0, low=0, high=0.99)
    input_size: int = option(40, low=8, high=MAX_INPUT_SIZE)
    channels: int = option(1, choices=(1, 3))
    mean: float = option(0.5, low=-1e3, high=1e3)
    std: float = option(0.5, above=0, high=1e3)
    crop_scale: float = option(DEFAULT_CROP_SCALE, above=0, high=10)
    tasks: TaskSet = option(factory=lambda: MTFL_TASKS)
    trunk: str = option("shared", choices=TRUNKS)
    experts: int = option(4, low=1, high=64)
    kind: str = option("landmarks", choices=("landmarks",))
    #: Attribute task → temperature its logits are divided by (:mod:`facemtl.evaluation.calibration`); absent = 1.
    temperatures: dict[str, float] = option(factory=dict, above=0, high=1e3)

    def __post_init__(self) -> None:
        check_fields(self)
        unknown = set(self.temperatures) - set(self.tasks.attribute_names)
        if unknown:
            raise ValueError(f"temperatures name no attribute task of the model: {sorted(unknown)}")

    def with_overrides(self, **kw: Any) -> ModelConfig:
        """A copy with fields changed (a recipe's ``model_overrides``): unknown fields and values of
        the wrong type or range are ValueErrors naming the field."""
        if "convs" in kw:
            kw["convs"] = from_json(_Convs, {"convs": kw["convs"]}).convs
        return replace_fields(self, "model config", **kw)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["tasks"] = self.tasks.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], section: str = "") -> ModelConfig:
        """A config from its JSON form (files written before detectors existed lack ``kind``); every
        field is checked, as a weights header is untrusted input."""
        return from_json(cls, d, section)


@dataclass(frozen=True)
class _Convs:
    """``convs`` alone, so a recipe's override of the layers is read like a header's."""

    convs: tuple[ConvSpec, ...]


#: Either kind of model config: a landmark + attribute net or a face detector.
AnyConfig = ModelConfig | DetectorConfig


def config_from_dict(d: dict[str, Any]) -> AnyConfig:
    """A model config back from its JSON form (safetensors header, model card, ONNX metadata);
    every field is checked (ValueError naming it), as the form may come from an untrusted file."""
    if not isinstance(d, dict):
        raise ValueError(f"a model config must be a JSON object; got {type(d).__name__}")
    if d.get("kind", "landmarks") not in ("landmarks", "detector"):
        raise ValueError(f"kind must be landmarks or detector; got {d.get('kind')!r}")
    return DetectorConfig.from_dict(d) if d.get("kind") == "detector" else ModelConfig.from_dict(d)
