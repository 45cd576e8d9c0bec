"""Many photos at full speed: the analyzer in worker processes, results in input order, memory bounded.

Each worker builds the analyzer once from its options (:class:`~facemtl.analysis.options.AnalyzerOptions`)
and analyses chunks of photos with ``threads`` compute threads (ONNX Runtime sessions, OpenCV,
PyTorch): N single-threaded workers use N cores with no oversubscription, and on a machine that is
busy with other work they take turns instead of a dozen threads per process fighting over the cores
(``references/benchmarks/throughput.py`` measures both). Inputs stream through a window of
``window`` chunks per worker, so a list of 100,000 paths, or an endless stream on stdin, holds a few
dozen photos in flight at most; results come back in input order.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from facemtl.batch.work import Result, Work, analyze, run_chunk, set_threads

if TYPE_CHECKING:
    from facemtl.analysis.analyzer import FaceAnalyzer
    from facemtl.analysis.options import AnalyzerOptions


def usable_cpus() -> int:
    """The cores this process may run on (its affinity mask, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


#: With ``workers=0``, a worker process is started for every this many inputs (up to one per core):
#: starting one costs about half a second (the networks loaded), what one core spends on ~100
#: CelebA-size photos or ~20 1 MP ones, so a handful of photos are analysed here at once.
PHOTOS_PER_WORKER = 50


def resolve_workers(workers: int, total: int | None = None) -> int:
    """``0`` → one worker per usable core, fewer for a known short list (:data:`PHOTOS_PER_WORKER`);
    a negative count is an error."""
    if workers < 0:
        raise ValueError(f"workers must be >= 0 (0: one per core), got {workers}")
    if workers:
        return workers
    cpus = usable_cpus()
    return cpus if total is None else max(1, min(cpus, -(-total // PHOTOS_PER_WORKER)))


# -- worker processes ----------------------------------------------------------------------------
_ANALYZER: FaceAnalyzer | None = None


def _start_worker(options: AnalyzerOptions) -> None:
    global _ANALYZER
    from facemtl.analysis.analyzer import FaceAnalyzer

    _ANALYZER = FaceAnalyzer.from_options(options)
    set_threads(options.threads)


def _run_chunk(chunk: list[tuple[int, Any]], work: Work, lines: bool) -> list[Result]:
    assert _ANALYZER is not None, "worker not started"
    return run_chunk(_ANALYZER, chunk, work, lines)


def analyze_inputs(
    items: Iterable[Any],
    analyzer: FaceAnalyzer,
    *,
    workers: int = 0,
    chunk: int = 16,
    window: int = 2,
    inline: Callable[[Any], bool] | None = None,
    work: Work = analyze,
    lines: bool = False,
    progress: bool = False,
    total: int | None = None,
) -> Iterator[Result]:
    """Every input's :class:`Result`, in input order. ``workers`` (0: one per usable core; 1: this
    process) analyse ``chunk`` inputs at a time with ``analyzer``'s options; at most ``window`` chunks
    per worker are in flight. Inputs for which ``inline`` is true are not analysed: their result
    (``inline=True``) comes back in its place for the caller to handle. ``work``: what is done with
    each input (default: analyse it); ``lines``: each result carries its JSON record line instead of
    its faces (:attr:`Result.line`). ``progress``: a bar on a
    terminal (photos/s, faces/s) over ``total`` inputs where known."""
    workers = resolve_workers(workers, total)
    results = _results(items, analyzer, workers, max(1, chunk), max(1, window), inline or _never, work, lines)
    if progress:
        results = _with_progress(results, total)
    yield from results


def _results(
    items: Iterable[Any],
    analyzer: FaceAnalyzer,
    workers: int,
    chunk: int,
    window: int,
    inline: Callable[[Any], bool],
    work: Work,
    lines: bool,
) -> Iterator[Result]:
    numbered = enumerate(items)
    if workers == 1 or analyzer.options is None:  # here, with the caller's analyzer
        batch: list[tuple[int, Any]] = []
        for i, item in numbered:
            if inline(item) or len(batch) == chunk:
                yield from run_chunk(analyzer, batch, work, lines) if batch else ()
                batch = []
            if inline(item):
                yield Result(i, item, inline=True)
            else:
                batch.append((i, item))
        yield from run_chunk(analyzer, batch, work, lines) if batch else ()
        return
    ctx = _context()
    with ctx.Pool(workers, initializer=_start_worker, initargs=(analyzer.options,)) as pool:
        pending: deque[Any] = deque()  # per slot: an AsyncResult of a chunk, or an inline Result

        def submit() -> bool:
            batch: list[tuple[int, Any]] = []
            for i, item in numbered:
                if inline(item):
                    if batch:
                        pending.append(pool.apply_async(_run_chunk, (batch, work, lines)))
                    pending.append(Result(i, item, inline=True))
                    return True
                batch.append((i, item))
                if len(batch) == chunk:
                    break
            if batch:
                pending.append(pool.apply_async(_run_chunk, (batch, work, lines)))
            return bool(batch)

        while len(pending) < workers * window and submit():
            pass
        while pending:
            slot = pending.popleft()
            submit()
            if isinstance(slot, Result):
                yield slot
            else:
                yield from slot.get()


def _context() -> Any:
    """Worker processes start with ``spawn``: clean interpreters (no copy of this process's ONNX
    Runtime or PyTorch threads) that import in parallel; measured faster here than ``forkserver``,
    whose one server imports everything before the first fork."""
    return mp.get_context("spawn")


def _never(item: Any) -> bool:
    return False


def _with_progress(results: Iterator[Result], total: int | None) -> Iterator[Result]:
    """A tqdm bar on stderr where it is a terminal (off otherwise), counting photos and faces."""
    from tqdm import tqdm

    faces = 0
    with tqdm(total=total, unit=" photos", dynamic_ncols=True, disable=None, smoothing=0.1) as bar:
        for r in results:
            faces += r.face_count
            bar.update(1)
            elapsed = bar.format_dict.get("elapsed") or 0.0
            if elapsed:
                bar.set_postfix_str(f"{faces / elapsed:.0f} faces/s", refresh=False)
            yield r
