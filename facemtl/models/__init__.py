"""The networks and everything that names, builds, stores and runs them: configs and the registry
(torch-free), the PyTorch networks, weights files, the shipped weights, ONNX export and sessions.

Every name is imported on first use (PEP 562): the command line reads the shipped models' list
without numpy, and a runtime without torch imports the configs and the registry from here and runs
the networks through ONNX Runtime.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

#: name → the module that defines it (the networks need torch: the ``train`` extra)
_EXPORTS = {
    "AnyConfig": "facemtl.models.config",
    "ConvSpec": "facemtl.models.config",
    "ModelConfig": "facemtl.models.config",
    "config_from_dict": "facemtl.models.config",
    "DetectorConfig": "facemtl.models.detector_config",
    "create_model": "facemtl.models.registry",
    "get_config": "facemtl.models.registry",
    "list_models": "facemtl.models.registry",
    "register": "facemtl.models.registry",
    "MultiTaskNet": "facemtl.models.multitask",
    "SharedTrunk": "facemtl.models.multitask",
    "FaceDetectorNet": "facemtl.models.detector",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'facemtl.models' has no attribute {name!r}")


if TYPE_CHECKING:
    from facemtl.models.config import AnyConfig, ConvSpec, ModelConfig, config_from_dict
    from facemtl.models.detector import FaceDetectorNet
    from facemtl.models.detector_config import DetectorConfig
    from facemtl.models.multitask import MultiTaskNet, SharedTrunk
    from facemtl.models.registry import create_model, get_config, list_models, register

__all__ = [
    "AnyConfig",
    "ConvSpec",
    "DetectorConfig",
    "FaceDetectorNet",
    "config_from_dict",
    "ModelConfig",
    "MultiTaskNet",
    "SharedTrunk",
    "create_model",
    "get_config",
    "list_models",
    "register",
]
