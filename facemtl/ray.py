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

from facemtl.analysis.analyzer import FaceAnalyzer, image_record
from facemtl.analysis.options import DEFAULTS, AnalyzerOptions
from facemtl.batch.engine import error_text, set_threads
from facemtl.batch.outputs import SCHEMA, _flat


class FaceAnalyzerActor:
    """A Ray Data actor: ``options`` (:class:`~facemtl.analysis.options.AnalyzerOptions`, or a dict of
    its fields) build the analyzer once; each call analyses a batch of photos."""

    def __init__(self, options: AnalyzerOptions | dict[str, Any] | None = None):
        opts = options if isinstance(options, AnalyzerOptions) else DEFAULTS.replace(**(options or {}))
        set_threads(opts.threads)
        self.analyzer = FaceAnalyzer.from_options(opts)

    def __call__(self, batch: dict[str, np.ndarray]) -> Any:
        """A batch (``path`` and/or ``image`` columns) → a pyarrow table of records."""
        import pyarrow as pa

        n = len(batch["image"] if "image" in batch else batch["path"])
        records = []
        for i in range(n):
            name = str(batch["path"][i]) if "path" in batch else f"#{i}"
            try:
                if "image" in batch:
                    faces = self.analyzer.analyze(np.asarray(batch["image"][i]), color="rgb")
                else:
                    faces = self.analyzer.analyze(name)
                records.append(_flat(dict(image_record(name, faces))))
            except Exception as e:  # noqa: BLE001  # one photo's failure never ends the batch
                records.append({"image": name, "faces": None, "error": error_text(e)})
        return pa.Table.from_pylist(records, schema=SCHEMA())
