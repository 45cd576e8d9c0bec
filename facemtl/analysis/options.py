"""How a photo is analysed: every run-time option, declared once with its default, help and allowed
values. :class:`~facemtl.analysis.analyzer.FaceAnalyzer` takes its defaults from here, and
``facemtl predict`` / ``draw`` generate their flags from it, as ``facemtl train`` does from the
recipe, so the API and the command line cannot drift apart.

Imports no numpy: the command line parses its flags before anything heavy is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from facemtl.core.fields import check_fields, option

#: Where a face's first crop comes from (see :class:`~facemtl.analysis.analyzer.FaceAnalyzer`).
SEEDS = ("hybrid", "points", "box")
#: When a photo is looked at again in its mirror image (:func:`~facemtl.analysis.combine.look_again`).
MIRROR_MODES = ("never", "auto", "always")
#: The shift test's view sets (:data:`~facemtl.analysis.views.SHIFT_VIEWS`).
VIEW_SETS = ("split", "cross", "plus")
#: What runs the networks (:data:`~facemtl.models.loading.BACKENDS`).
BACKENDS = ("auto", "onnx", "torch")
#: The shift of the shift test, a fraction of the crop side (3 px of a 64-px crop), chosen among
#: 0.03 / 0.05 / 0.07 on validation faces (docs/notebook.md).
SHIFT_TEST = 0.05
#: The default view set, chosen on validation faces (docs/notebook.md, "The shift test's views").
DEFAULT_VIEWS = "split"


@dataclass(frozen=True)
class AnalyzerOptions:
    """The options of a :class:`~facemtl.analysis.analyzer.FaceAnalyzer` (the defaults were chosen
    on validation faces, weighing time too: ``references/benchmarks/end_to_end.py --validation``)."""

    model: str | None = option(
        None,
        "a shipped landmark model by name (see facemtl models), a .safetensors file or its .onnx export "
        "(default: facemtl_mtfl_celeba)",
        flag="--model",
    )
    detector: str = option(
        "facemtl",
        "facemtl (default: the shipped detector network), facemtl:NAME|FILE, haar (OpenCV's cascades) or "
        "yunet:PATH (your YuNet .onnx)",
    )
    min_face: float = option(
        0.0,
        "the smallest face to find, px: smaller ones are dropped, and facemtl's detector looks at the photo "
        "at the size that finds such faces (default: faces of 24 px, or of 1.5 percent of a large photo's longer side)",
        low=0,
        high=1e5,
    )
    score_threshold: float | None = option(
        None,
        "detector confidence threshold, one for faces of every size (default: the detector's own; facemtl's "
        "weights carry two: score_threshold, and small_face_threshold for faces under 20 px on its input)",
        above=0,
        high=0.999999,
    )
    max_side: int | None = option(
        None,
        "the detector sees the image downscaled to this longer side (facemtl's default: from the photo, "
        "at least 352 and at most 1344 px, so faces of 24 px or 1.5 percent of the photo's side are found; "
        "a smaller side is faster and misses small faces)",
        low=32,
        high=65536,
    )
    seed: str = option(
        "hybrid",
        "first crop centred by the detector's 5 points and sized by its box (default), from the points alone, "
        "or the box alone",
        choices=SEEDS,
    )
    refine: int = option(1, "re-crop passes from predicted landmarks (default 1)", low=0, high=16)
    average: bool = option(
        True,
        "return the last pass's landmarks instead of the mean over the first crop and its re-crops (where they agree)",
        flag="--last-pass",
    )
    backend: str = option(
        "auto",
        "what runs the networks: onnx (ONNX Runtime), torch (PyTorch, the train extra), auto (default: onnx "
        "where installed)",
        choices=BACKENDS,
    )
    threads: int = option(
        1,
        "compute threads of each network session (default 1: many photos run in parallel processes instead, "
        "and a busy machine is shared without thrashing)",
        low=1,
        high=256,
    )
    flip_test: bool = option(False, "average each face with its mirror image (two passes per face)")
    shift_test: float = option(
        SHIFT_TEST,
        "average each crop with copies shifted by this fraction of its side (default 0.05, chosen on "
        "validation faces; 0: the crop alone)",
        low=0,
        high=0.49,
    )
    shift_views: str = option(
        DEFAULT_VIEWS,
        "the shifted copies each pass sees: split (default: left/right on the first crop, up/down on the "
        "re-crop), cross (all four in every pass), plus (those and the crop itself: 5 views per crop)",
        choices=VIEW_SETS,
    )
    mirror: str = option(
        "auto",
        "look at faces again in the mirrored photo (detector included) and merge the two results: auto "
        "(default) where a face's passes disagree, always (every face, twice the time), never",
        choices=MIRROR_MODES,
    )

    def __post_init__(self) -> None:
        check_fields(self)

    def replace(self, **changes: Any) -> AnalyzerOptions:
        """A copy with some options changed (checked)."""
        return replace(self, **changes)

    #: The options that go to the landmark network on crops (:class:`~facemtl.analysis.landmarker.Landmarker`).
    LANDMARKER = ("refine", "average", "flip_test", "shift_test", "shift_views")
    #: The options that go to the detector (:func:`~facemtl.detection.create_detector`).
    DETECTOR = ("min_face", "score_threshold", "max_side", "threads")


#: The defaults, for every caller.
DEFAULTS = AnalyzerOptions()


def option_names() -> tuple[str, ...]:
    return tuple(f.name for f in fields(AnalyzerOptions))
