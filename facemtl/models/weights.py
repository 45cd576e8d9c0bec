"""Saving and loading models: safetensors tensors + a JSON model card, never pickled code.

The model's full config (architecture, input size, crop rule, normalisation, tasks) is stored in
the safetensors header, so the file alone rebuilds the model; ``NAME.json`` beside it is the same
card for people, with provenance, licence and measured results.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, safe_open, save_file

from facemtl.core.files import atomic_write
from facemtl.models import AnyConfig, FaceDetectorNet, MultiTaskNet, config_from_dict, create_model
from facemtl.models.pretrained import DEFAULT_LANDMARKS, resolve_weights

#: 2: the header's facemtl record is one metadata entry (:data:`META_KEY`); 1 (still read): three
#: entries, ``format``, ``format_version`` and ``config``.
FORMAT_VERSION = 2
#: The safetensors metadata key holding ``{"format_version", "config"}`` as JSON. One key, because
#: safetensors writes several metadata entries in a new order on every save (they pass through a
#: hash map), so the same weights would get different bytes, and another SHA-256, each time.
META_KEY = "facemtl"


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
        why = str(e) if type(e) is ValueError else f"{type(e).__name__}: {e}"
        raise ValueError(f"{path}: its model config is not valid ({why})") from None


def load_model(
    weights: str | Path | None = None, *, device: str | torch.device = "cpu"
) -> MultiTaskNet | FaceDetectorNet:
    """Rebuild a model, in eval mode, from a facemtl .safetensors file or a shipped model's name
    (:data:`facemtl.models.pretrained.PRETRAINED`; default: the shipped landmark model). The file's
    header says which kind of model it is."""
    path = resolve_weights(weights, DEFAULT_LANDMARKS)
    config = read_config(path)
    check_tensor_shapes(path, config)  # before anything the header asks for is allocated
    model = create_model(config)
    state = load_file(str(path), device=str(device))
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise ValueError(f"{path}: tensor(s) holding NaN or infinite values: {', '.join(bad[:5])}")
    model.load_state_dict(state, strict=True)
    return model.to(device).eval()


def check_tensor_shapes(path: str | Path, config: AnyConfig) -> None:
    """The file's tensors (names and shapes, read from its header alone) are exactly those of the
    model its config describes. The model is built on PyTorch's ``meta`` device, which allocates
    nothing, so a header asking for a huge model is refused before any memory is spent on it."""
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in create_model(config).state_dict().items()}
    with safe_open(str(path), framework="pt") as f:
        found = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118  # not a dict
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    wrong = [
        f"{k} {list(found[k])} (the config's model: {list(expected[k])})"
        for k in expected
        if k in found and found[k] != expected[k]
    ]
    if missing or unexpected or wrong:
        parts = [f"missing {missing[:5]}" if missing else "", f"unexpected {unexpected[:5]}" if unexpected else ""]
        parts.append(f"shapes {'; '.join(wrong[:3])}" if wrong else "")
        raise ValueError(f"{path}: tensors do not match its model config ({', '.join(p for p in parts if p)})")


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


@dataclass(frozen=True)
class InitReport:
    """What :func:`init_from` copied: ``copied`` of the model's ``total`` tensors; ``skipped``, each
    tensor left as initialised and why; ``geometry``, how the model's input differs from the one
    the weights were trained on (another input side, channels, crop rule or normalisation: the
    copied filters then see faces at another scale or contrast)."""

    copied: int
    total: int
    skipped: tuple[str, ...] = ()
    geometry: tuple[str, ...] = ()

    def describe(self, source: str) -> str:
        """One line for the run log; the skipped tensors and geometry differences loudly below it."""
        text = f"{self.copied} of {self.total} tensors from {source}"
        if self.geometry:
            text += f"\n  WARNING: the model's input differs from {source}'s: {'; '.join(self.geometry)}"
        if self.skipped:
            shown = "; ".join(self.skipped[:8]) + (
                f"; and {len(self.skipped) - 8} more" if len(self.skipped) > 8 else ""
            )
            text += f"\n  WARNING: {len(self.skipped)} tensor(s) start untrained: {shown}"
        return text


#: Config fields that fix what a landmark network's input means.
_GEOMETRY = ("input_size", "channels", "crop_scale", "mean", "std")


def init_from(model: torch.nn.Module, weights: str | Path) -> InitReport:
    """Copy into ``model`` every tensor of ``weights`` (a shipped name or a file) whose name and
    shape match — fine-tuning a model with other heads, another input size or colour input (see
    :func:`gray_to_color`) from a trained one — and report what was not copied, and why."""
    path = resolve_weights(weights, DEFAULT_LANDMARKS)
    source_config = read_config(path)  # a facemtl file, or a clear error
    own = model.state_dict()
    source = {k: gray_to_color(v, own[k].shape) if k in own else v for k, v in load_file(str(path)).items()}
    fits = {k: v for k, v in source.items() if k in own and own[k].shape == v.shape}
    if not fits:
        raise ValueError(f"{path}: no tensor fits this model (names or shapes all differ)")
    model.load_state_dict(fits, strict=False)
    skipped = []
    for k, v in own.items():
        if k in fits:
            continue
        why = (
            f"shape {list(source[k].shape)} in the weights, {list(v.shape)} here"
            if k in source
            else "not in the weights"
        )
        skipped.append(f"{k} ({why})")
    geometry = []
    config = getattr(model, "config", None)
    for name in _GEOMETRY:
        a, b = getattr(source_config, name, None), getattr(config, name, None)
        if a is not None and b is not None and a != b:
            geometry.append(f"{name} {a} in the weights, {b} here")
    return InitReport(len(fits), len(own), tuple(skipped), tuple(geometry))
