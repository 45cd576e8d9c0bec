"""A landmark network's outputs as numpy arrays, and the adapter that gives any network that form.

The runtime works on numpy around one network call: an ONNX Runtime session
(:class:`~facemtl.models.onnx_runtime.OnnxNet`) answers in arrays already, a PyTorch network is
wrapped by :func:`array_net` (torch imported only then, so the lean runtime never needs it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypedDict, cast

import numpy as np

if TYPE_CHECKING:
    from facemtl.core.types import NetOutputs


class _ArrayOutputs(TypedDict):
    landmarks: np.ndarray  # (N, K, 2) unit crop coordinates
    attributes: dict[str, np.ndarray]  # task → (N, classes) logits


class ArrayOutputs(_ArrayOutputs, total=False):
    """:class:`~facemtl.core.types.NetOutputs` as float32 numpy arrays."""

    gates: dict[str, np.ndarray]  # MMoE only


#: A landmark network on float32 numpy crops ``(B, C, S, S)``.
ArrayNet = Callable[[np.ndarray], ArrayOutputs]


def _each(out: Any, fn: Callable[[Any], Any]) -> dict[str, Any]:
    """A network's outputs (either form) with ``fn`` applied to every array in them."""
    res = {"landmarks": fn(out["landmarks"]), "attributes": {k: fn(v) for k, v in out["attributes"].items()}}
    if "gates" in out:
        res["gates"] = {k: fn(v) for k, v in out["gates"].items()}
    return res


def to_arrays(out: NetOutputs) -> ArrayOutputs:
    """A network's torch outputs as float32 numpy arrays (on the CPU)."""
    return cast(ArrayOutputs, _each(out, lambda t: t.detach().float().cpu().numpy()))


def to_tensors(out: ArrayOutputs, device: Any = "cpu") -> NetOutputs:
    """:func:`to_arrays` undone: the outputs as tensors on ``device``."""
    import torch

    return cast("NetOutputs", _each(out, lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(device)))


def array_net(model: Any) -> ArrayNet:
    """``model`` — a PyTorch landmark network (run in inference mode on its own device) or anything
    with a ``run_arrays`` method (:class:`~facemtl.models.onnx_runtime.OnnxNet`) — as an :data:`ArrayNet`."""
    if hasattr(model, "run_arrays"):
        return cast(ArrayNet, model.run_arrays)
    import torch

    device = next(model.parameters()).device

    def run(x: np.ndarray) -> ArrayOutputs:
        with torch.inference_mode():
            return to_arrays(model(torch.from_numpy(x).to(device)))

    return run
