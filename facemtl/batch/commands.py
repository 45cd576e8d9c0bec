"""The collection commands' common ground and ``facemtl draw``: inputs streamed (files, folders,
globs, a list file or stdin, a shard of them) through the engine, results written in input order.

Every command goes on past a bad input (an error line naming it) and ends with status 0 when every
input was done, 1 when some failed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

from facemtl.analysis.analyzer import Face, FaceAnalyzer
from facemtl.analysis.options import AnalyzerOptions
from facemtl.batch.engine import analyze_inputs
from facemtl.batch.work import error_text, set_threads
from facemtl.core.inputs import is_video, iter_inputs, parse_shard, read_list, shard


def input_stream(args: argparse.Namespace) -> tuple[Iterator[Path], int | None]:
    """The inputs, in order, and their count where known (not for a list read from stdin)."""
    names: list[str] = [n for n in args.inputs if n != "-"]
    streaming = "-" in args.inputs or args.inputs_from == "-"
    sources: list[Any] = [names]
    if args.inputs_from:
        sources.append(read_list(args.inputs_from))
    if "-" in args.inputs and args.inputs_from != "-":
        sources.append(read_list("-"))
    if not names and not args.inputs_from and "-" not in args.inputs:
        raise ValueError("no input: name images, folders or videos, or --inputs-from FILE")
    stream: Iterator[Path] = iter_inputs((n for s in sources for n in s), recursive=args.recursive)
    if args.shard:
        stream = shard(stream, *parse_shard(args.shard))
    if streaming:
        return stream, None
    listed = list(stream)
    return iter(listed), len(listed)


def batch_end(command: str, done: int, failed: int) -> int:
    """The exit status of a batch: 0 when every input was done, 1 when some failed; a batch where
    nothing was done says so on stderr."""
    if not done:
        what = f"all {failed} input(s) failed" if failed else "no input"
        print(f"facemtl {command}: nothing done: {what}", file=sys.stderr)
    elif failed:
        print(f"facemtl {command}: {failed} of {done + failed} input(s) failed", file=sys.stderr)
    return 1 if failed or not done else 0


# -- draw ----------------------------------------------------------------------------------------
def draw_work(analyzer: FaceAnalyzer, item: tuple[Path, Path], write_json: bool) -> list[Face]:
    """A worker's job for ``draw``: one photo's faces drawn into its planned output."""
    from facemtl.analysis.annotate import annotate_image

    path, target = item
    return annotate_image(analyzer, path, target, write_json)


def run_draw(args: argparse.Namespace, options: AnalyzerOptions, params: Any) -> int:
    from facemtl.analysis.annotate import annotate_video, claim_outputs, output_suffix
    from facemtl.core.inputs import plan_outputs

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: --out names a file, not a folder")
    analyzer = FaceAnalyzer.from_options(options)
    set_threads(options.threads)  # this process's OpenCV and PyTorch, as each worker's
    inputs = list(input_stream(args)[0])
    protected = {p.resolve() for p in inputs}
    done = failed = 0
    planned = []
    for path, target in plan_outputs(inputs, out, output_suffix):
        try:  # an output that may not be written fails its input here, before any work
            claim_outputs(target, args.json, overwrite=args.overwrite, inputs=protected)
            planned.append((path, target))
        except Exception as e:  # noqa: BLE001  # one input's failure never ends the batch
            failed += 1
            print(f"facemtl draw: error: {error_text(e)}", file=sys.stderr)
    work = partial(draw_work, write_json=args.json)
    for r in analyze_inputs(
        planned,
        analyzer,
        workers=args.workers,
        inline=lambda item: is_video(item[0]),
        work=work,
        progress=True,
        total=len(planned),
    ):
        path, target = r.item
        if r.inline:
            try:
                annotate_video(analyzer, path, target, args.json, track=args.track, params=params)
            except Exception as e:  # noqa: BLE001
                r.error = error_text(e)
        if r.error is None:
            done += 1
            print(f"{path} -> {target}")
        else:
            failed += 1
            where = "" if r.error.startswith(str(path)) else f"{path}: "  # say which input met the error
            print(f"facemtl draw: error: {where}{r.error}", file=sys.stderr)
    return batch_end("draw", done, failed)
