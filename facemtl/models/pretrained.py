"""The shipped pretrained weights, by name (as torchvision's weight enums and timm's pretrained tags).

Each entry names a safetensors file that ships inside the package, its SHA-256 (checked before the
file is used, so a damaged or swapped file is an error, never a silently different model), its
kind, and the model-card fields its headline metrics come from. The card (``NAME.json`` beside
the weights) holds the rest: provenance, data licence, recipe and every measured figure.

The repository keeps the files in its top-level ``weights/``; the wheel carries the same folder
as the package ``facemtl.shipped_weights`` (see ``pyproject.toml``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from facemtl.core.files import data_package_dir

_CHECKOUT_WEIGHTS = Path(__file__).resolve().parents[2] / "weights"


@dataclass(frozen=True)
class Pretrained:
    """One shipped weights file: name → file, checksum, kind, card and headline metrics."""

    name: str
    file: str
    sha256: str
    kind: str  # "landmarks" (landmark + attribute net) or "detector"
    summary: str
    #: (label, dotted path into the model card) of the figures ``facemtl models`` shows.
    headline: tuple[tuple[str, str], ...] = ()
    #: SHA-256 of the ONNX export shipped beside the weights (``NAME.onnx``; ``scripts/package_weights.py``
    #: writes it, a test checks it against the PyTorch network): what a plain install runs.
    onnx_sha256: str = ""

    @property
    def path(self) -> Path:
        return weights_dir() / self.file

    @property
    def card_path(self) -> Path:
        return self.path.with_suffix(".json")

    def card(self) -> dict[str, Any]:
        """The model card: provenance, licence, recipe, measured figures."""
        return json.loads(self.card_path.read_text())

    @property
    def licence(self) -> str:
        return str(self.card().get("provenance", {}).get("licence", "unknown"))

    def metrics(self) -> dict[str, float | None]:
        """The headline figures, read from the card (None where the card lacks one)."""
        card = self.card()
        out: dict[str, float | None] = {}
        for label, dotted in self.headline:
            value: Any = card
            for key in dotted.split("."):
                value = value.get(key) if isinstance(value, dict) else None
            out[label] = float(value) if isinstance(value, (int, float)) else None
        return out

    @property
    def onnx_path(self) -> Path:
        return self.path.with_suffix(".onnx")

    def verified_path(self) -> Path:
        """The weights file, after checking that it is the file this entry names."""
        return _verified(self.path, self.sha256, self.name)

    def verified_onnx_path(self) -> Path:
        """The ONNX export shipped beside the weights, after checking that it is the one this entry names."""
        return _verified(self.onnx_path, self.onnx_sha256, self.name)


def _verified(path: Path, sha256: str, name: str) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: shipped weights {name!r} missing from this installation")
    digest = _sha256(path, path.stat().st_mtime_ns, path.stat().st_size)
    if digest != sha256:
        raise ValueError(f"{path}: SHA-256 {digest} does not match {name!r} ({sha256}); reinstall facemtl")
    return path


#: A landmark model's MTFL-test attribute accuracies, as its card records them.
MTFL_ATTRIBUTE_HEADLINE = tuple((f"{t} %", f"mtfl_test.attributes.{t}") for t in ("gender", "smile", "glasses", "pose"))
#: A 5-point landmark model's headline: MTFL-test landmark error, then its attributes.
FIVE_POINT_HEADLINE = (("MTFL test NME %", "mtfl_test.nme"), *MTFL_ATTRIBUTE_HEADLINE)

PRETRAINED: dict[str, Pretrained] = {
    p.name: p
    for p in (
        Pretrained(
            name="facemtl_mtfl",
            file="facemtl_mtfl.safetensors",
            sha256="5ab107652511ccfe2356dd7eb35589b9d097e02f442583a590ffab2dd554f278",
            onnx_sha256="8e2a420138c10d00e7bb9f316cec341ae114cd558747a3e9b781b6582641223d",
            kind="landmarks",
            summary="5 landmarks + gender, smile, glasses, head pose; MTFL train; 64×64 gray crops",
            headline=FIVE_POINT_HEADLINE,
        ),
        Pretrained(
            name="facemtl_mtfl_celeba",
            file="facemtl_mtfl_celeba.safetensors",
            sha256="e51f4aa236c3719f6ec5e41edcb545f9a28a5bde511eb72965777392bd621251",
            onnx_sha256="5575a7cd381eba47a7abf15d44f86085575af678fbc8eb351373fe4e9f084742",
            kind="landmarks",
            summary="5 landmarks + gender, smile, glasses, head pose; MTFL + CelebA train (CelebA's landmarks "
            "pseudo-labelled by facemtl_mtfl); 64×64 gray crops",
            headline=FIVE_POINT_HEADLINE,
        ),
        Pretrained(
            name="facemtl_300w68",
            file="facemtl_300w68.safetensors",
            sha256="3e53b8ccd4ca02909a3c352ccc47e547d740c6eb1acc418085a02bfe75e44e99",
            onnx_sha256="abadacde1c1d71c7c29a67848fe0725520fd1930626d5368d876991c018006be",
            kind="landmarks",
            summary="68 iBUG landmarks + gender, smile, glasses, head pose; 300-W + MTFL train; 80×80 gray crops",
            headline=(
                ("300-W held-out NME %", "w300_holdout.nme"),
                ("MTFL test NME % (5 derived points)", "mtfl_test.nme"),
                *MTFL_ATTRIBUTE_HEADLINE,
            ),
        ),
        Pretrained(
            name="facemtl_m_age",
            file="facemtl_m_age.safetensors",
            sha256="e1530c174ec33af2c7a22266282b95bc5eb74a9c491fa7d7257a12496a14b5f2",
            onnx_sha256="d65ceb7d63b6d7bef8858bc29099dc8b9be1d4f6c4b02a94dc4bce9ed2ac8e48",
            kind="landmarks",
            summary="5 landmarks + gender, smile, glasses, head pose and age (FairFace's 9 bins); MTFL + CelebA + "
            "FairFace train; 96×96 colour crops (opt-in: landmarks less precise than the default's)",
            headline=(
                *FIVE_POINT_HEADLINE,
                ("FairFace val age exact %", "fairface_val.accuracy.age exact|all"),
                ("FairFace val age ±1 bin %", "fairface_val.accuracy.age ±1 bin|all"),
                ("FairFace val gender %", "fairface_val.accuracy.gender|all"),
            ),
        ),
        Pretrained(
            name="facemtl_det",
            file="facemtl_det.safetensors",
            sha256="ebac2ada4ac4f0427b8496e8138976f7ee987141fc1df4fb227b87054b7d8ca4",
            onnx_sha256="5fe3bcdb22a8cfb7509d9a3ec2ad5f6740fd810780e92f7a343d950b60ddd1f4",
            kind="detector",
            summary="face detector: score + box + 5 points, strides 8/16/32; teacher-labelled photos, photos of people",
            headline=(
                ("MTFL test found %", "mtfl_test_end_to_end.detectors.facemtl.detection_rate"),
                (
                    "end-to-end NME % (landmarks: facemtl_mtfl_celeba)",
                    "mtfl_test_end_to_end.detectors.facemtl.mirror.auto.nme",
                ),
                (
                    "crowd recall % (faces ≥ 24 px)",
                    "crowds.methods.facemtl (default: input side from the photo).recall",
                ),
                ("crowd precision %", "crowds.methods.facemtl (default: input side from the photo).precision"),
                (
                    "real photos of people: recall % (faces ≥ 24 px)",
                    "people_photos.accuracy.facemtl (default: input side from the photo).recall",
                ),
                (
                    "real photos of people: precision %",
                    "people_photos.accuracy.facemtl (default: input side from the photo).precision",
                ),
            ),
        ),
    )
}
#: What ``FaceAnalyzer.from_pretrained()`` and ``create_detector("facemtl")`` use.
DEFAULT_LANDMARKS = "facemtl_mtfl_celeba"
DEFAULT_DETECTOR = "facemtl_det"
#: What a recipe's ``pseudo_landmarks: true`` labels with: the model trained on MTFL alone, so a
#: photo's landmark targets never come from a model that trained on that photo.
PSEUDO_LABELLER = "facemtl_mtfl"


def weights_dir() -> Path:
    """Where the shipped weights are: inside the installed package, or a checkout's ``weights/``."""
    return data_package_dir("facemtl.shipped_weights", _CHECKOUT_WEIGHTS)


def get_pretrained(name: str) -> Pretrained:
    """A shipped model's entry by name; a wrong name is a KeyError listing the shipped ones."""
    try:
        return PRETRAINED[name]
    except KeyError:
        raise KeyError(f"no pretrained model {name!r}; shipped: {', '.join(PRETRAINED)}") from None


def resolve_weights(weights: str | Path | None, default: str) -> Path:
    """A path for a weights argument: a shipped model's name (checked), a file path, or None for ``default``."""
    if weights is None:
        return get_pretrained(default).verified_path()
    if isinstance(weights, str) and weights in PRETRAINED:
        return PRETRAINED[weights].verified_path()
    path = Path(weights)
    if not path.exists() and isinstance(weights, str) and "/" not in weights and not path.suffix:
        raise KeyError(f"{weights!r} is neither a file nor a pretrained model; shipped: {', '.join(PRETRAINED)}")
    return path


@cache
def _sha256(path: Path, mtime_ns: int, size: int) -> str:
    """SHA-256 of a file (memoised per path, mtime and size: a few ms per shipped file, once)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
