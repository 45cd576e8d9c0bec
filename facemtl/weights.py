"""Saving and loading models: safetensors tensors + a JSON model card, never pickled code.

The model's full config (architecture, input size, crop rule, normalisation, tasks) is stored in
the safetensors header, so the file alone rebuilds the model; ``NAME.json`` beside it is the same
card for people, with provenance, licence and measured results.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, safe_open, save_file

from facemtl.models import AnyConfig, FaceDetectorNet, MultiTaskNet, config_from_dict, create_model
from facemtl.pretrained import DEFAULT_LANDMARKS, resolve_weights

#: 2: the header's facemtl record is one metadata entry (:data:`META_KEY`); 1 (still read): three
#: entries, ``format``, ``format_version`` and ``config``.
FORMAT_VERSION = 2
#: The safetensors metadata key holding ``{"format_version", "config"}`` as JSON. One key, because
#: safetensors writes several metadata entries in a new order on every save (they pass through a
#: hash map), so the same weights would get different bytes, and another SHA-256, each time.
META_KEY = "facemtl"


def atomic_write(path: str | Path, write: Callable[[str], object]) -> None:
    """Write via a temp file in the same folder + rename, so a kill never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file a normal new file's mode
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def card_path(weights: str | Path) -> Path:
    return Path(weights).with_suffix(".json")


def save_model(model: MultiTaskNet | FaceDetectorNet, path: str | Path, card: dict[str, Any] | None = None) -> None:
    """Write ``path`` (.safetensors) and its model card ``path`` with a .json suffix."""
    config = model.config.to_dict()
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {META_KEY: json.dumps({"format_version": FORMAT_VERSION, "config": config})}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))
    full_card = {"format_version": FORMAT_VERSION, "config": config} | (card or {})
    text = json.dumps(full_card, indent=2) + "\n"
    atomic_write(card_path(path), lambda tmp: Path(tmp).write_text(text))


def read_config(path: str | Path) -> AnyConfig:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: weights file not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as e:  # safetensors raises its own error types for non-safetensors files
        raise ValueError(f"{path}: not a safetensors file ({e})") from None
    try:
        if META_KEY in meta:
            config = json.loads(meta[META_KEY])["config"]
        elif meta.get("format") == "facemtl":  # format version 1
            config = json.loads(meta["config"])
        else:
            raise KeyError(META_KEY)
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{path}: safetensors file without a facemtl model config in its header") from None
    try:
        return config_from_dict(config)
    except (KeyError, TypeError, ValueError) as e:  # a field a model config does not take, or a bad value
        raise ValueError(f"{path}: its model config is not valid ({type(e).__name__}: {e})") from None


def load_model(
    weights: str | Path | None = None, *, device: str | torch.device = "cpu"
) -> MultiTaskNet | FaceDetectorNet:
    """Rebuild a model, in eval mode, from a facemtl .safetensors file or a shipped model's name
    (:data:`facemtl.pretrained.PRETRAINED`; default: the shipped landmark model). The file's
    header says which kind of model it is."""
    path = resolve_weights(weights, DEFAULT_LANDMARKS)
    model = create_model(read_config(path))
    state = load_file(str(path), device=str(device))
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"{path}: weights do not match the model config (missing {missing}, unexpected {unexpected})")
    return model.to(device).eval()


#: OpenCV's BGR → gray weights (``cv2.COLOR_BGR2GRAY``), in the colour models' channel order.
LUMA_BGR = (0.114, 0.587, 0.299)


def gray_to_color(kernel: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """A gray model's first conv kernel ``(O, 1, k, k)`` for a colour model ``(O, 3, k, k)``: each
    channel gets the kernel × its luma weight, so on a BGR crop the layer computes exactly what it
    did on the gray crop (the weights sum to 1 and ``mean``/``std`` are shared by the channels).
    Any other tensor is returned as is."""
    if kernel.ndim == 4 and kernel.shape[1] == 1 and tuple(shape) == (kernel.shape[0], 3, *kernel.shape[2:]):
        return torch.cat([kernel * w for w in LUMA_BGR], dim=1)
    return kernel


def init_from(model: torch.nn.Module, weights: str | Path) -> tuple[int, int]:
    """Copy into ``model`` every tensor of ``weights`` (a shipped name or a file) whose name and
    shape match — fine-tuning a model with other heads, another input size or colour input (see
    :func:`gray_to_color`) from a trained one. Returns (tensors copied, tensors of ``model``)."""
    path = resolve_weights(weights, DEFAULT_LANDMARKS)
    read_config(path)  # a facemtl file, or a clear error
    own = model.state_dict()
    source = {k: gray_to_color(v, own[k].shape) if k in own else v for k, v in load_file(str(path)).items()}
    fits = {k: v for k, v in source.items() if k in own and own[k].shape == v.shape}
    if not fits:
        raise ValueError(f"{path}: no tensor fits this model (names or shapes all differ)")
    model.load_state_dict(fits, strict=False)
    return len(fits), len(own)
