"""facemtl's networks in ONNX Runtime sessions: the lean runtime's networks, torch-free.

A plain ``pip install facemtl`` runs the shipped networks from their ONNX files (exported from the
PyTorch weights when they are packaged, checked against them by a parity test); the model config
travels in each file's metadata (:data:`CONFIG_KEY`), as it does in the safetensors header, so the
exact preprocessing is rebuilt from the file alone.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar, cast

import numpy as np

from facemtl.models.arrays import ArrayOutputs
from facemtl.models.config import AnyConfig, ModelConfig, config_from_dict
from facemtl.models.detector_config import DetectorConfig

#: The ONNX metadata key holding the model config as JSON.
CONFIG_KEY = "facemtl_config"


def require(module: str, why: str) -> ModuleType:
    """Import an optional dependency, or raise ImportError saying why it is needed and how to get it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"{module} is not installed; {why}") from None


def onnx_runtime_available() -> bool:
    """Whether ONNX Runtime can be imported (it is a dependency of a plain install)."""
    try:
        importlib.import_module("onnxruntime")
    except ImportError:
        return False
    return True


def _open(source: str | Path | bytes, threads: int) -> tuple[Any, AnyConfig]:
    """An ONNX Runtime session (CPU, ``threads`` compute threads) of a facemtl export, and its config."""
    ort = require("onnxruntime", "facemtl's networks run with ONNX Runtime: pip install onnxruntime")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    name = "ONNX model" if isinstance(source, bytes) else str(source)
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    try:
        session = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types for unreadable models
        raise ValueError(f"{name}: not a valid ONNX model ({str(e).splitlines()[0][:200]})") from None
    meta = session.get_modelmeta().custom_metadata_map
    if CONFIG_KEY not in meta:
        raise ValueError(f"{name}: not a facemtl export (no {CONFIG_KEY} metadata)")
    try:
        return session, config_from_dict(json.loads(meta[CONFIG_KEY]))
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{name}: its model config is not valid ({e})") from None


def open_onnx(source: str | Path | bytes, *, threads: int = 1) -> OnnxNet | OnnxDetectorNet:
    """A facemtl export of either kind, run by the session class its config names."""
    session, config = _open(source, threads)
    net = OnnxNet.__new__(OnnxNet) if config.kind == "landmarks" else OnnxDetectorNet.__new__(OnnxDetectorNet)
    net._attach(session, config)
    return net


class _OnnxSession:
    """An exported facemtl network in an ONNX Runtime session (CPU), with the config it carries."""

    kind = ""

    def __init__(self, source: str | Path | bytes, *, threads: int = 1):
        session, config = _open(source, threads)
        if config.kind != self.kind:
            name = "ONNX model" if isinstance(source, bytes) else str(source)
            raise ValueError(f"{name}: holds a {config.kind} model; load it with {_RUNNERS[config.kind]}")
        self._attach(session, config)

    def _attach(self, session: Any, config: AnyConfig) -> None:
        self.session, self._config = session, config
        self.names = [o.name for o in session.get_outputs()]

    @classmethod
    def from_model(cls: type[Session], model: Any, *, threads: int = 1) -> Session:
        """A session of a PyTorch network, exported in memory (needs the ``train`` extra)."""
        from facemtl.models.export import onnx_bytes

        return cls(onnx_bytes(model), threads=threads)

    def eval(self: Session) -> Session:
        return self

    def _outputs(self, image: np.ndarray) -> dict[str, np.ndarray]:
        """Every output by name for a float32 numpy batch: the one place the session runs."""
        return dict(zip(self.names, self.session.run(None, {"image": image}), strict=True))

    @staticmethod
    def _array(image: Any) -> np.ndarray:
        """A batch as float32 numpy (a torch tensor is accepted, as the PyTorch model takes)."""
        if hasattr(image, "detach"):
            image = image.detach().cpu().numpy()
        return np.asarray(image, np.float32)


Session = TypeVar("Session", bound=_OnnxSession)
_RUNNERS = {"landmarks": "OnnxNet", "detector": "OnnxDetectorNet"}


class OnnxNet(_OnnxSession):
    """An exported landmark + attribute net run by ONNX Runtime, called like the PyTorch model in
    eval mode: crops ``(B, C, S, S)`` → ``{"landmarks": (B, K, 2), "attributes": {task: logits}}``.

    ``source`` is a ``.onnx`` path or the bytes of :func:`onnx_bytes`. On this machine it runs the
    shipped network about 4× faster than eager PyTorch at batch 1 (``references/benchmarks/speed.py``).
    """

    kind = "landmarks"

    @property
    def config(self) -> ModelConfig:
        return cast(ModelConfig, self._config)

    def __call__(self, image: Any) -> Any:
        """The PyTorch model's call: a tensor batch in, tensor outputs (needs torch)."""
        from facemtl.models.arrays import to_tensors

        return to_tensors(self.run_arrays(self._array(image)))

    def run_arrays(self, image: np.ndarray) -> ArrayOutputs:
        """:meth:`__call__` on a float32 numpy batch, returning numpy arrays (no torch on the way)."""
        res = self._outputs(image)
        return {"landmarks": res.pop("landmarks"), "attributes": res}


class OnnxDetectorNet(_OnnxSession):
    """An exported face detector run by ONNX Runtime: images ``(B, 3, H, W)`` → the raw map
    ``(B, N, 15)``, decoded by :mod:`facemtl.detection.net` like the PyTorch model's."""

    kind = "detector"

    @property
    def config(self) -> DetectorConfig:
        return cast(DetectorConfig, self._config)

    def __call__(self, image: Any) -> Any:
        """The PyTorch model's call: a tensor batch in, the raw map as a tensor (needs torch)."""
        import torch

        return torch.from_numpy(self.run_arrays(self._array(image)))

    def run_arrays(self, image: np.ndarray) -> np.ndarray:
        """:meth:`__call__` on a float32 numpy batch, returning the numpy raw map."""
        return self._outputs(image)["raw"]
