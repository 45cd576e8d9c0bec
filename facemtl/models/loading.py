"""Networks for the runtime, by backend: the one place that turns a weights argument into something
that runs.

``onnx`` (what ``auto`` picks when ONNX Runtime is installed, as in a plain install): a shipped model
runs from the ONNX file that ships beside its safetensors (checked by SHA-256); your own weights are
exported once and cached per file digest in :func:`cache_dir`, so no later start pays for the export.
``torch`` runs the PyTorch network (the ``train`` extra) — on a GPU too.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facemtl.core.files import atomic_write
from facemtl.models.onnx_runtime import OnnxDetectorNet, OnnxNet, onnx_runtime_available, open_onnx
from facemtl.models.pretrained import PRETRAINED, get_pretrained, resolve_weights

if TYPE_CHECKING:
    from facemtl.models.detector import FaceDetectorNet
    from facemtl.models.multitask import MultiTaskNet

    Network = MultiTaskNet | FaceDetectorNet | OnnxNet | OnnxDetectorNet

#: What ``backend=`` takes: ``auto`` is ONNX Runtime where installed (and the device is the CPU), else PyTorch.
BACKENDS = ("auto", "onnx", "torch")
_TORCH_NEEDED = "pip install 'facemtl[train]' (PyTorch; install torch==2.13.0 first for the CPU build)"


def resolve_backend(backend: str, device: str = "cpu") -> str:
    """``auto`` → ``onnx`` or ``torch``; a name not in :data:`BACKENDS` is a ValueError."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "auto":
        return "onnx" if device == "cpu" and onnx_runtime_available() else "torch"
    if backend == "onnx" and device != "cpu":
        raise ValueError(f"the onnx backend runs on the CPU only; got device {device!r} (use backend='torch')")
    return backend


def cache_dir() -> Path:
    """Where exports of your own weights are kept: ``$FACEMTL_CACHE``, else ``$XDG_CACHE_HOME/facemtl``
    (``~/.cache/facemtl``)."""
    if os.environ.get("FACEMTL_CACHE"):
        return Path(os.environ["FACEMTL_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "facemtl"


def load_network(
    weights: str | Path | None,
    *,
    kind: str,
    default: str,
    backend: str = "auto",
    device: str = "cpu",
    threads: int = 1,
) -> Network:
    """The network of ``weights`` — a shipped model's name, a ``.safetensors`` file, a ``.onnx``
    export, or None for ``default`` — on ``backend`` (:data:`BACKENDS`); a file of the other
    ``kind`` ("landmarks" or "detector") is a ValueError saying where it belongs. ``threads``: the
    ONNX Runtime session's compute threads (PyTorch's are process-wide: ``torch.set_num_threads``)."""
    backend = resolve_backend(backend, device)
    name = default if weights is None else weights
    if backend == "torch":
        if Path(str(name)).suffix == ".onnx":
            raise ValueError(f"{name}: an ONNX export runs with backend 'onnx', not 'torch'")
        try:
            from facemtl.models.weights import load_model
        except ImportError:
            raise ImportError(f"the torch backend needs PyTorch: {_TORCH_NEEDED}") from None
        net: Any = load_model(name, device=device)
        found = net.config.kind
    else:
        net = open_onnx(_onnx_path(name), threads=threads)
        found = net.config.kind
    if found != kind:
        what = {"landmarks": "a landmark model", "detector": "a face detector"}
        raise ValueError(f"{name}: holds {what[found]}, not {what[kind]}")
    return net


def _onnx_path(weights: str | Path) -> Path:
    """The ONNX file for a weights argument: a shipped model's own, the file itself, or the cached
    export of a safetensors file (made here on first use; needs PyTorch once)."""
    if isinstance(weights, str) and weights in PRETRAINED:
        return get_pretrained(weights).verified_onnx_path()
    path = resolve_weights(weights, "")
    if path.suffix == ".onnx":
        if not path.is_file():
            raise FileNotFoundError(f"{path}: ONNX file not found")
        return path
    if not path.is_file():
        raise FileNotFoundError(f"{path}: weights file not found")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    cached = cache_dir() / "onnx" / f"{digest}.onnx"
    if cached.is_file():
        return cached
    try:
        from facemtl.models.export import onnx_bytes
        from facemtl.models.weights import load_model
    except ImportError:
        raise ImportError(
            f"{path}: your own weights run with ONNX Runtime once exported, and the export needs PyTorch: "
            f"{_TORCH_NEEDED}; or pass a .onnx file made by `facemtl export`"
        ) from None
    data = onnx_bytes(load_model(path))
    cached.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(cached, lambda tmp: Path(tmp).write_bytes(data))
    return cached
