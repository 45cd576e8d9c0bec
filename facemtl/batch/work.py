"""What one worker does with its inputs: each photo analysed (or another work), photos of a chunk in
batches, every failure its own input's result — never an exception that ends the batch."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from facemtl.analysis.analyzer import Face, FaceAnalyzer


@dataclass
class Result:
    """One input's outcome: its faces, or the error that stopped it (``inline``: an input the engine
    left to its caller, e.g. a video, which a tracker follows frame by frame in order)."""

    index: int
    item: Any
    faces: list[Face] | None = None
    error: str | None = None
    error_type: str = ""
    inline: bool = False
    #: With ``lines=True``: the input's record as one line of JSON, made where the photo was
    #: analysed (a worker), so the process writing the output only writes; ``faces`` is then None.
    line: str | None = None
    face_count: int = 0

    def exception(self) -> Exception:
        """The error as an exception of its kind (OSError, ValueError…), for API callers."""
        kinds: dict[str, type[Exception]] = {"OSError": OSError, "FileNotFoundError": FileNotFoundError}
        return kinds.get(self.error_type, ValueError)(self.error)


def set_threads(threads: int) -> None:
    """This process's compute threads for OpenCV and (where loaded) PyTorch; ONNX Runtime's are per
    session (:attr:`AnalyzerOptions.threads`)."""
    import cv2

    cv2.setNumThreads(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def error_text(e: BaseException) -> str:
    """One input's failure as one line: a named error says what it is; anything else (a fault of
    facemtl's, or no memory left for a huge photo) says its type."""
    from facemtl.core.images import ImageReadError

    if isinstance(e, (ImageReadError, OSError)):
        return str(e)
    if isinstance(e, MemoryError):
        return f"out of memory ({e or 'MemoryError'})"
    return f"{type(e).__name__}: {e}"


#: What a worker does with one input: the analyzer's faces for it (and anything else, e.g. writing
#: a drawing). A top-level function or a ``functools.partial`` of one, so a worker process can run it.
Work = Callable[["FaceAnalyzer", Any], "list[Face]"]


def analyze(analyzer: FaceAnalyzer, item: Any) -> list[Face]:
    """The default work: :meth:`FaceAnalyzer.analyze`."""
    return analyzer.analyze(item)


def analyze_one(analyzer: FaceAnalyzer, index: int, item: Any, work: Work = analyze) -> Result:
    """One input through ``work``; any failure becomes the result's error, never an exception."""
    try:
        return Result(index, item, faces=work(analyzer, item))
    except Exception as e:  # noqa: BLE001  # one input's failure never ends the batch
        return Result(index, item, error=error_text(e), error_type=type(e).__name__)


#: A chunk's photos are analysed in batches of at most this many pixels (decoded: 3 bytes each), so a
#: chunk of 12 MP phone photos holds two at a time while one of CelebA-size photos is one batch.
BATCH_PIXELS = 8_000_000


def run_chunk(analyzer: FaceAnalyzer, chunk: list[tuple[int, Any]], work: Work, lines: bool = False) -> list[Result]:
    """A chunk of inputs through ``work``; with the default work, the photos are analysed in batches
    (:meth:`FaceAnalyzer.analyze_batch`: every pass of every face in one network call, a third less
    time a photo at 16 CelebA-size photos), each failure its own input's result."""
    from facemtl.analysis.analyzer import json_line

    results = _run(analyzer, chunk, work)
    for r in results:
        r.face_count = len(r.faces or ())
        if lines:
            r.line, r.faces = json_line(record_of(r)), None  # made here: the writing process only writes
    return results


def record_of(r: Result) -> dict[str, Any]:
    """An input's ``facemtl predict --json`` record: its faces, or its error."""
    from facemtl.analysis.analyzer import image_record

    if r.error is not None:
        return {"image": str(r.item), "error": r.error}
    return dict(image_record(str(r.item), r.faces or []))


def _run(analyzer: FaceAnalyzer, chunk: list[tuple[int, Any]], work: Work) -> list[Result]:
    if work is not analyze or len(chunk) == 1:
        return [analyze_one(analyzer, i, item, work) for i, item in chunk]
    from facemtl.analysis.analyzer import load_input

    results: dict[int, Result] = {}
    group: list[tuple[int, Any, Any]] = []
    pixels = 0
    for n, (i, item) in enumerate(chunk):
        try:
            image = load_input(item)
            group.append((i, item, image))
            pixels += image.shape[0] * image.shape[1]
        except Exception as e:  # noqa: BLE001  # one input's failure never ends the batch
            results[i] = Result(i, item, error=error_text(e), error_type=type(e).__name__)
        if group and (pixels >= BATCH_PIXELS or n == len(chunk) - 1):
            _analyze_group(analyzer, group, results)
            group, pixels = [], 0
    return [results[i] for i, _ in chunk]


def _analyze_group(analyzer: FaceAnalyzer, group: list[tuple[int, Any, Any]], results: dict[int, Result]) -> None:
    try:
        for (i, item, _), faces in zip(group, analyzer.analyze_batch([im for _, _, im in group]), strict=True):
            results[i] = Result(i, item, faces=faces)
    except Exception:  # noqa: BLE001  # find which photo it was: one at a time
        for i, item, image in group:
            result = analyze_one(analyzer, i, image, analyze)
            result.item = item
            results[i] = result
