"""facemtl on Ray Data, for collections that outgrow one machine (the ``ray`` extra).

:class:`FaceAnalyzerActor` is a callable class for :meth:`ray.data.Dataset.map_batches`: each actor
builds the analyzer once (weights loaded once per actor, one compute thread each) and turns a batch
of photos — a ``path`` column, or an ``image`` column of decoded RGB arrays as
:func:`ray.data.read_images` gives (with ``include_paths=True`` for a ``path`` column) — into
``facemtl predict``'s records, one row per photo in the Parquet schema of
:data:`facemtl.batch.outputs.SCHEMA`::

    import ray
    from facemtl.ray import FaceAnalyzerActor

    ds = ray.data.read_images("s3://bucket/photos/", include_paths=True, mode="RGB")
    ds = ds.map_batches(FaceAnalyzerActor, batch_size=16, concurrency=8, batch_format="numpy")
    ds.write_parquet("s3://bucket/faces/")

``facemtl predict --engine ray`` does the same for local paths (``RAY_ADDRESS`` names a running
cluster; without it a local Ray starts on this machine).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from facemtl.analysis.analyzer import FaceAnalyzer
from facemtl.analysis.options import DEFAULTS, AnalyzerOptions
from facemtl.batch.outputs import SCHEMA, _flat
from facemtl.batch.work import analyze, record_of, run_chunk, set_threads


class FaceAnalyzerActor:
    """A Ray Data actor: ``options`` (:class:`~facemtl.analysis.options.AnalyzerOptions`, or a dict of
    its fields) build the analyzer once; each call analyses a batch of photos."""

    def __init__(self, options: AnalyzerOptions | dict[str, Any] | None = None):
        opts = options if isinstance(options, AnalyzerOptions) else DEFAULTS.replace(**(options or {}))
        set_threads(opts.threads)
        self.analyzer = FaceAnalyzer.from_options(opts)

    def __call__(self, batch: dict[str, np.ndarray]) -> Any:
        """A batch (``path`` and/or ``image`` columns) → a pyarrow table of records; the photos run
        as one network batch (:func:`facemtl.batch.engine.run_chunk`), a failure its own row."""
        import pyarrow as pa

        n = len(batch["image"] if "image" in batch else batch["path"])
        names = [str(batch["path"][i]) if "path" in batch else f"#{i}" for i in range(n)]
        if "image" in batch:  # decoded RGB arrays → BGR, facemtl's layout
            items: list[Any] = [np.ascontiguousarray(np.asarray(batch["image"][i])[..., ::-1]) for i in range(n)]
        else:
            items = names
        records = []
        for r in run_chunk(self.analyzer, list(enumerate(items)), analyze):
            r.item = names[r.index]
            record = record_of(r)
            records.append(_flat(record) if r.error is None else {**record, "faces": None})
        return pa.Table.from_pylist(records, schema=SCHEMA())
