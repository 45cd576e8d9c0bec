"""Model registry: presets are built by name, like ``timm.create_model``. The presets are configs
(torch-free); building a network needs PyTorch (the ``train`` extra)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, overload

from facemtl.core.tasks import TaskSet
from facemtl.models.config import AnyConfig, ConvSpec, ModelConfig
from facemtl.models.detector_config import DetectorConfig

if TYPE_CHECKING:
    from facemtl.models.detector import FaceDetectorNet
    from facemtl.models.multitask import MultiTaskNet

_REGISTRY: dict[str, AnyConfig] = {}


def register(cfg: AnyConfig) -> AnyConfig:
    if cfg.name in _REGISTRY:
        raise ValueError(f"model {cfg.name!r} is already registered")
    _REGISTRY[cfg.name] = cfg
    return cfg


#: TCDCN (Zhang et al., ECCV 2014): 40×40 gray, four conv layers with max-pooling, one shared FC.
register(
    ModelConfig(
        name="tcdcn",
        convs=(
            ConvSpec(20, 5, padding="valid", pool=True),
            ConvSpec(48, 5, padding="valid", pool=True),
            ConvSpec(64, 3, padding="valid", pool=True),
            ConvSpec(80, 3, padding="same"),
        ),
        feature_dim=256,
        batch_norm=False,
        input_size=40,
    )
)

#: facemtl's shipped model: the same plan widened and deepened, 64×64 gray, batch norm.
_facemtl_s = register(
    ModelConfig(
        name="facemtl_s",
        convs=(
            ConvSpec(16, 5, stride=2),
            ConvSpec(32, pool=True),
            ConvSpec(64, pool=True),
            ConvSpec(96, pool=True),
            ConvSpec(128),
        ),
        feature_dim=256,
        batch_norm=True,
        dropout=0.1,
        input_size=64,
    )
)


#: The same plan on 96×96 colour crops (issue 14: attributes may need the detail and colour that
#: 64×64 gray drops); about twice facemtl_s's compute. It can start from facemtl_s weights:
#: ``init_from`` inflates a gray first layer to colour.
register(_facemtl_s.with_overrides(name="facemtl_m", input_size=96, channels=3))


#: facemtl's face detector: score + box + 5 landmarks per location at strides 8, 16, 32.
register(
    DetectorConfig(
        name="facemtl_det",
        stem=16,
        stages=((32, 1), (56, 2), (80, 2), (112, 2)),
        neck=56,
        input_size=256,
        max_side=320,
    )
)


def list_models() -> list[str]:
    """The registered architecture names (``create_model`` builds any of them, untrained)."""
    return sorted(_REGISTRY)


def get_config(name: str) -> AnyConfig:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; available: {', '.join(list_models())}") from None


@overload
def create_model(name: ModelConfig, *, tasks: TaskSet | None = None, **overrides: Any) -> MultiTaskNet: ...
@overload
def create_model(name: DetectorConfig, *, tasks: TaskSet | None = None, **overrides: Any) -> FaceDetectorNet: ...
@overload
def create_model(
    name: str | AnyConfig, *, tasks: TaskSet | None = None, **overrides: Any
) -> MultiTaskNet | FaceDetectorNet: ...
def create_model(
    name: str | AnyConfig, *, tasks: TaskSet | None = None, **overrides: Any
) -> MultiTaskNet | FaceDetectorNet:
    """Build a model from a preset name (or a full config), optionally with other tasks or sizes."""
    from facemtl.models.detector import FaceDetectorNet  # the networks need torch: the training extra
    from facemtl.models.multitask import MultiTaskNet

    cfg = get_config(name) if isinstance(name, str) else name
    if isinstance(cfg, DetectorConfig):
        return FaceDetectorNet(cfg.with_overrides(**overrides) if overrides else cfg)
    if tasks is not None:
        overrides["tasks"] = tasks
    return MultiTaskNet(cfg.with_overrides(**overrides) if overrides else cfg)
