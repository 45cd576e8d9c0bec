"""``facemtl predict --engine ray``: the photos through :class:`facemtl.ray.FaceAnalyzerActor` on Ray
Data — a running cluster where ``RAY_ADDRESS`` names one, else a local Ray with ``--workers`` CPUs.

Records go to ``--output``: a ``.parquet`` folder written by Ray's workers (the same schema as the
local engine's), or JSON Lines written here in input order. ``--resume`` skips the inputs the output
holds already, as the local engine does.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from facemtl.analysis.options import AnalyzerOptions
from facemtl.batch.commands import batch_end, input_stream
from facemtl.batch.outputs import open_output, records_of_table
from facemtl.core.inputs import is_video


def run_predict_ray(args: argparse.Namespace, options: AnalyzerOptions) -> int:
    try:
        import ray
    except ImportError:
        raise ImportError("--engine ray needs Ray: pip install 'facemtl[ray]'") from None
    from facemtl.ray import FaceAnalyzerActor

    if not args.output:
        raise ValueError("--engine ray writes to --output (a .parquet folder or a .jsonl file)")
    writer = open_output(args.output, resume=args.resume, overwrite=args.overwrite)
    inputs = list(input_stream(args)[0])  # read once: a list on stdin cannot be read twice
    paths = [str(p) for p in inputs if not is_video(p) and str(p) not in writer.done]
    videos = [p for p in inputs if is_video(p)]
    for v in videos:
        print(
            f"facemtl predict: error: {v}: --engine ray takes photos; run videos with the local engine", file=sys.stderr
        )
    if not paths:
        writer.close()
        return batch_end("predict", 0, len(videos))
    workers = args.workers or None
    if not ray.is_initialized():
        if os.environ.get("RAY_ADDRESS"):
            ray.init(address=os.environ["RAY_ADDRESS"])
        else:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True  # JSON Lines come back in input order
    ctx.enable_progress_bars = sys.stderr.isatty()
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    ds = ray.data.from_items([{"path": p} for p in paths]).map_batches(
        FaceAnalyzerActor,
        fn_constructor_kwargs={"options": options},
        batch_size=64,
        concurrency=workers or max(1, int(ray.available_resources().get("CPU", 1))),
        batch_format="numpy",
    )
    done = failed = 0
    if Path(args.output).suffix.lower() == ".parquet":
        writer.close()
        ds.write_parquet(str(args.output))
        import pyarrow.parquet as pq

        table = pq.read_table(str(args.output), columns=["image", "error"])
        rows = [r for r in table.to_pylist() if r["image"] in set(paths)]
        failed = sum(r["error"] is not None for r in rows)
        done = len(rows) - failed
    else:
        try:
            for batch in ds.iter_batches(batch_format="pyarrow", batch_size=64):
                records = records_of_table(batch)
                writer.write(records)
                failed += sum("error" in r for r in records)
                done += sum("error" not in r for r in records)
        finally:
            writer.close()
    return batch_end("predict", done, failed + len(videos))
