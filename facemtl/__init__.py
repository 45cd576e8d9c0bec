"""facemtl: multi-task face analysis — landmarks plus attributes from one small CNN (TCDCN-style)."""

from facemtl.models import create_model, list_models
from facemtl.tasks import MTFL_TASKS, AttributeTask, Landmark5, LandmarkSpec, TaskSet
from facemtl.weights import load_model, save_model

__version__ = "0.1.0"
__all__ = [
    "AttributeTask",
    "Landmark5",
    "LandmarkSpec",
    "MTFL_TASKS",
    "TaskSet",
    "create_model",
    "list_models",
    "load_model",
    "save_model",
]
