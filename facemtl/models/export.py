"""ONNX export of facemtl's networks: the landmark + attribute net and the face detector.

Landmark nets take normalised crops ``image`` (batch, C, S, S) — batch is a dynamic axis — and
return ``landmarks`` (batch, K, 2) in unit crop coordinates plus one logits output per attribute
task, named after the task. The detector takes a normalised RGB image (batch, 3, H, W) with H and
W dynamic (multiples of 32) and returns its raw map ``raw`` (batch, N, 15), decoded by
:mod:`facemtl.detection.net` exactly as the PyTorch model's. The model config (input size,
normalisation, crop rule, tasks) travels in the ONNX metadata under ``facemtl_config``, as it does
in the safetensors header, so a runtime can rebuild the exact preprocessing
(:mod:`facemtl.models.onnx_runtime` runs the files). Needs PyTorch and the ``onnx`` package (the
``train`` extra).
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import torch
from torch import nn

from facemtl.core.files import atomic_write
from facemtl.models.detector import FaceDetectorNet
from facemtl.models.multitask import MultiTaskNet
from facemtl.models.onnx_runtime import CONFIG_KEY, require

OPSET = 17


class _Outputs(nn.Module):
    """The network with its dict output flattened to a tuple, in a fixed order."""

    def __init__(self, model: MultiTaskNet | FaceDetectorNet):
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(image)
        if isinstance(self.model, FaceDetectorNet):
            return (out,)
        return (out["landmarks"], *(out["attributes"][t.name] for t in self.model.config.tasks.attributes))


def output_names(model: MultiTaskNet | FaceDetectorNet) -> list[str]:
    if isinstance(model, FaceDetectorNet):
        return ["raw"]
    return ["landmarks", *model.config.tasks.attribute_names]


def onnx_bytes(model: MultiTaskNet | FaceDetectorNet, *, opset: int = OPSET) -> bytes:
    """The serialised ONNX model (``model`` is put in eval mode), config in its metadata."""
    onnx = require("onnx", "exporting to ONNX needs the onnx package: pip install 'facemtl[train]'")

    model = model.eval()
    wrapper = _Outputs(model).eval()
    device = next(model.parameters()).device
    names = output_names(model)
    if isinstance(model, FaceDetectorNet):
        example = torch.zeros(2, 3, 96, 128, device=device)
        axes = {"image": {0: "batch", 2: "height", 3: "width"}, "raw": {0: "batch", 1: "locations"}}
    else:
        c = model.config
        example = torch.zeros(2, c.channels, c.input_size, c.input_size, device=device)
        axes = {"image": {0: "batch"}} | {n: {0: "batch"} for n in names}
    buf = io.BytesIO()
    with warnings.catch_warnings():  # torch 2.13 marks the TorchScript exporter deprecated
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        torch.onnx.export(
            wrapper,
            (example,),
            buf,  # type: ignore[arg-type]  # a file object is accepted; the stubs say path
            input_names=["image"],
            output_names=names,
            dynamic_axes=axes,
            opset_version=opset,
            dynamo=False,  # the TorchScript exporter: no onnxscript dependency, a plain static graph
        )
    model.eval()  # the exporter restores the wrapper's mode recursively; leave the model in eval
    proto = onnx.load_from_string(buf.getvalue())
    entry = proto.metadata_props.add()
    entry.key, entry.value = CONFIG_KEY, json.dumps(model.config.to_dict())
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def export_onnx(model: MultiTaskNet | FaceDetectorNet, path: str | Path, *, opset: int = OPSET) -> Path:
    """Write ``model`` as ONNX with a dynamic batch axis (atomically); returns the path."""
    data = onnx_bytes(model, opset=opset)
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
    return Path(path)
