"""facemtl: multi-task face analysis — landmarks plus attributes from one small CNN (TCDCN-style).

>>> from facemtl import FaceAnalyzer
>>> faces = FaceAnalyzer.from_pretrained().analyze("photo.jpg")

The public names below are imported on first use (PEP 562), so ``import facemtl`` and the
command line's ``--help`` stay instant; ``tests/test_api.py`` pins this surface.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: public name → the module that defines it
_EXPORTS = {
    # inference: image → detector → crop → network → faces
    "FaceAnalyzer": "facemtl.analysis.analyzer",
    "Face": "facemtl.analysis.analyzer",
    "AttributePrediction": "facemtl.analysis.analyzer",
    "Landmarker": "facemtl.analysis.landmarker",
    "FaceTracker": "facemtl.video.tracking",
    "TrackerParams": "facemtl.video.tracking",
    "create_detector": "facemtl.detection",
    "Detection": "facemtl.detection",
    "draw_faces": "facemtl.analysis.drawing",
    "read_image": "facemtl.core.images",
    "ImageReadError": "facemtl.core.images",
    # models and weights
    "create_model": "facemtl.models",
    "list_models": "facemtl.models",
    "load_model": "facemtl.models.weights",
    "save_model": "facemtl.models.weights",
    "PRETRAINED": "facemtl.models.pretrained",
    "Pretrained": "facemtl.models.pretrained",
    "get_pretrained": "facemtl.models.pretrained",
    # tasks
    "TaskSet": "facemtl.core.tasks",
    "AttributeTask": "facemtl.core.tasks",
    "LandmarkSpec": "facemtl.core.tasks",
    "Landmark5": "facemtl.core.tasks",
    "MTFL_TASKS": "facemtl.core.tasks",
    # datasets: annotation readers (1-based files → 0-based samples)
    "FaceSample": "facemtl.data.samples",
    "AnnotationError": "facemtl.data.samples",
    "read_mtfl": "facemtl.data.mtfl",
    "read_300w_folder": "facemtl.data.w300",
    "read_pts": "facemtl.data.w300",
    "read_photos": "facemtl.data.photos",
    "FaceDataset": "facemtl.data.dataset",
    # training and evaluation
    "TrainConfig": "facemtl.training.config",
    "evaluate": "facemtl.evaluation.evaluator",
    "EvalReport": "facemtl.evaluation.evaluator",
}
__all__ = [
    "AnnotationError",
    "AttributePrediction",
    "AttributeTask",
    "Detection",
    "EvalReport",
    "Face",
    "FaceAnalyzer",
    "FaceDataset",
    "FaceSample",
    "FaceTracker",
    "ImageReadError",
    "Landmark5",
    "LandmarkSpec",
    "Landmarker",
    "MTFL_TASKS",
    "PRETRAINED",
    "Pretrained",
    "TaskSet",
    "TrackerParams",
    "TrainConfig",
    "create_detector",
    "create_model",
    "draw_faces",
    "evaluate",
    "get_pretrained",
    "list_models",
    "load_model",
    "read_300w_folder",
    "read_image",
    "read_mtfl",
    "read_photos",
    "read_pts",
    "save_model",
    "__version__",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'facemtl' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:  # what the lazy names are, for type checkers and IDEs
    from facemtl.analysis.analyzer import AttributePrediction, Face, FaceAnalyzer
    from facemtl.analysis.drawing import draw_faces
    from facemtl.analysis.landmarker import Landmarker
    from facemtl.core.images import ImageReadError, read_image
    from facemtl.core.tasks import MTFL_TASKS, AttributeTask, Landmark5, LandmarkSpec, TaskSet
    from facemtl.data.dataset import FaceDataset
    from facemtl.data.mtfl import read_mtfl
    from facemtl.data.photos import read_photos
    from facemtl.data.samples import AnnotationError, FaceSample
    from facemtl.data.w300 import read_300w_folder, read_pts
    from facemtl.detection import Detection, create_detector
    from facemtl.evaluation.evaluator import EvalReport, evaluate
    from facemtl.models import create_model, list_models
    from facemtl.models.pretrained import PRETRAINED, Pretrained, get_pretrained
    from facemtl.models.weights import load_model, save_model
    from facemtl.training.config import TrainConfig
    from facemtl.video.tracking import FaceTracker, TrackerParams
