"""Pieces the benchmarks share (``references/benchmarks`` and ``experiments/studies``): the timing rule,
the padded-MTFL protocol, the report files, the held-out faces and photos of a shipped model's run."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from facemtl.detection import annotated_detection

#: The data the benchmarks read by default: ``$FACEMTL_DATA``, else ``../shared/data`` beside the
#: checkout (the benchmarks run from a checkout; CI has ``../shared`` there).
DATA = Path(os.environ.get("FACEMTL_DATA") or Path(__file__).resolve().parents[3] / "shared" / "data")


def median_ms(fn: Callable[[], object], *, repeats: int = 7, number: int = 1, warmup: int = 2) -> float:
    """Median over ``repeats`` runs of the mean time of ``number`` calls, after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    runs = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(number):
            fn()
        runs.append((time.perf_counter() - t) / number * 1e3)
    return statistics.median(runs)


def one_thread() -> None:
    """The timing protocol: PyTorch and OpenCV each on one thread (peers set theirs alike)."""
    import torch

    torch.set_num_threads(1)
    cv2.setNumThreads(1)


def pad(image: np.ndarray) -> tuple[np.ndarray, int]:
    """The end-to-end protocol's padding: a replicated border of half the image's size on every
    side, so detectors have background around AFLW's tight crops. Returns the image and the border."""
    p = max(image.shape[:2]) // 2
    return cv2.copyMakeBorder(image, p, p, p, p, cv2.BORDER_REPLICATE), p


#: The protocol's "found": the index of the surest detection whose box contains the centre of the
#: annotated landmarks' box, or ``None`` when no detection does.
found_index = annotated_detection


class Report:
    """A benchmark's Markdown, printed line by line as it is written (``report(line)``) and saved
    with its figures by :meth:`save`: ``OUT.md`` (the tables ``scripts/gen_docs.py`` copies) and ``OUT.json``."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, text: str = "") -> None:
        print(text, flush=True)
        self.lines.append(text)

    def save(self, out: str | Path, figures: object) -> tuple[Path, Path]:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        md, js = out.with_suffix(".md"), out.with_suffix(".json")
        md.write_text("\n".join(self.lines) + "\n")
        js.write_text(json.dumps(figures, indent=2) + "\n")
        return md, js


def burners(n: int) -> list[subprocess.Popen]:
    """``n`` CPU-burner processes (a busy machine for the "busy" rows); the caller kills them."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def model_label(name: str) -> str:
    """A model's row label: a shipped name as it is, a run's file as RUN/FILE ("runs/celeba/best.safetensors" →
    "celeba/best")."""
    path = Path(name)
    return f"{path.parent.name}/{path.stem}" if path.suffix else name


def detector_label(spec: str, shipped: str = "facemtl") -> str:
    """A facemtl detector's row label: ``shipped`` for the shipped one, else "facemtl RUN/FILE"."""
    return shipped if spec == "facemtl" else f"facemtl {model_label(spec.partition(':')[2])}"


def _recipe(weights: str | Path, default: str):
    """The training recipe (:class:`facemtl.training.config.TrainConfig`) the card of ``weights`` (a shipped
    name, ``default`` when empty, or a file) records."""
    from facemtl.models.pretrained import resolve_weights
    from facemtl.models.weights import card_path
    from facemtl.training.config import TrainConfig

    card = json.loads(card_path(resolve_weights(str(weights), default)).read_text())
    return TrainConfig.from_dict(card["training"]["config"])


def validation_samples(weights: str | Path) -> list:
    """The landmark-annotated faces the training run behind ``weights`` (a shipped name or a file) held
    out for model selection: its card records the recipe; CelebA's held-out faces carry attributes only."""
    from facemtl.models.pretrained import DEFAULT_LANDMARKS
    from facemtl.training.jobs.landmarks import train_val_samples

    return [s for s in train_val_samples(_recipe(weights, DEFAULT_LANDMARKS))[2] if s.landmarks is not None]


def detector_held_out(detector_weights: str | Path) -> list:
    """The photos (:class:`facemtl.data.photos.PhotoSample`) that the detector run behind
    ``detector_weights`` (a shipped name or a file; its card records the recipe) held out for validation."""
    from facemtl.models.pretrained import DEFAULT_DETECTOR
    from facemtl.training.jobs.detector import split_photos

    return split_photos(_recipe(detector_weights, DEFAULT_DETECTOR))[1]
