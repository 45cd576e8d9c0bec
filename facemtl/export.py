"""ONNX export of the landmark + attribute network (the part after the crop).

The graph takes normalised crops ``image`` (batch, C, S, S) — batch is a dynamic axis — and
returns ``landmarks`` (batch, K, 2) in unit crop coordinates plus one logits output per attribute
task, named after the task. The model config (input size, normalisation, crop rule, tasks)
travels in the ONNX metadata under ``facemtl_config``, as it does in the safetensors header,
so a runtime can rebuild the exact preprocessing. Needs the ``onnx`` extra.
"""

from __future__ import annotations

import importlib
import io
import json
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from facemtl.models import ModelConfig, MultiTaskNet
from facemtl.weights import atomic_write

OPSET = 17
CONFIG_KEY = "facemtl_config"


def _require(module: str):
    """Import an optional dependency of the 'onnx' extra, or say how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"{module} is not installed; ONNX support needs: pip install 'facemtl[onnx]'") from None


class _Outputs(nn.Module):
    """The network with its dict output flattened to a tuple, in a fixed order."""

    def __init__(self, model: MultiTaskNet):
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(image)
        return (out["landmarks"], *(out["attributes"][t.name] for t in self.model.config.tasks.attributes))


def output_names(model: MultiTaskNet) -> list[str]:
    return ["landmarks", *model.config.tasks.attribute_names]


def onnx_bytes(model: MultiTaskNet, *, opset: int = OPSET) -> bytes:
    """The serialised ONNX model (``model`` is put in eval mode), config in its metadata."""
    onnx = _require("onnx")

    model = model.eval()
    wrapper = _Outputs(model).eval()
    c = model.config
    example = torch.zeros(2, c.channels, c.input_size, c.input_size, device=next(model.parameters()).device)
    names = output_names(model)
    buf = io.BytesIO()
    with warnings.catch_warnings():  # torch 2.13 marks the TorchScript exporter deprecated
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        torch.onnx.export(
            wrapper,
            (example,),
            buf,
            input_names=["image"],
            output_names=names,
            dynamic_axes={"image": {0: "batch"}} | {n: {0: "batch"} for n in names},
            opset_version=opset,
            dynamo=False,  # the TorchScript exporter: no onnxscript dependency, a plain static graph
        )
    model.eval()  # the exporter restores the wrapper's mode recursively; leave the model in eval
    proto = onnx.load_from_string(buf.getvalue())
    entry = proto.metadata_props.add()
    entry.key, entry.value = CONFIG_KEY, json.dumps(c.to_dict())
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def export_onnx(model: MultiTaskNet, path: str | Path, *, opset: int = OPSET) -> Path:
    """Write ``model`` as ONNX with a dynamic batch axis (atomically); returns the path."""
    data = onnx_bytes(model, opset=opset)
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
    return Path(path)


class OnnxNet:
    """An exported network run by ONNX Runtime, called like :class:`MultiTaskNet` in eval mode:
    crops ``(B, C, S, S)`` → ``{"landmarks": (B, K, 2), "attributes": {task: logits}}``.

    ``source`` is a ``.onnx`` path or the bytes of :func:`onnx_bytes`. On this machine it runs the
    shipped network about 4× faster than eager PyTorch at batch 1 (``bench/speed.py``).
    """

    device = torch.device("cpu")

    def __init__(self, source: str | Path | bytes, *, threads: int = 1):
        ort = _require("onnxruntime")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        name = "ONNX model" if isinstance(source, bytes) else str(source)
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
        try:
            self.session = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types for unreadable models
            raise ValueError(f"{name}: not a valid ONNX model ({str(e).splitlines()[0][:200]})") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        if CONFIG_KEY not in meta:
            raise ValueError(f"{name}: not a facemtl export (no {CONFIG_KEY} metadata)")
        self.config = ModelConfig.from_dict(json.loads(meta[CONFIG_KEY]))
        self.names = [o.name for o in self.session.get_outputs()]

    @classmethod
    def from_model(cls, model: MultiTaskNet, *, threads: int = 1) -> OnnxNet:
        return cls(onnx_bytes(model), threads=threads)

    def eval(self) -> OnnxNet:
        return self

    def __call__(self, image: torch.Tensor) -> dict[str, torch.Tensor | dict[str, torch.Tensor]]:
        outs = self.session.run(None, {"image": image.detach().cpu().numpy().astype(np.float32, copy=False)})
        res = dict(zip(self.names, (torch.from_numpy(o) for o in outs), strict=True))
        return {"landmarks": res.pop("landmarks"), "attributes": res}
