"""Where a collection's records go: JSON Lines or Parquet files that a killed run resumes.

Records are ``facemtl predict --json``'s (:class:`~facemtl.core.types.ImageRecord`: ``image``,
``faces``, and ``error`` for an input that failed; a video's frames carry ``frame`` and ``time``,
and its last frame ``last: true``). Each input is written exactly once, even across a kill and
``--resume``:

- **JSON Lines** (``.jsonl``, ``.json``, ``.ndjson``): a record is one ``write`` of one line, flushed.
  A kill can leave at most a cut last line; resuming drops it, and drops the frames of a video whose
  last frame was not written, then appends.
- **Parquet** (``.parquet``, pyarrow in the ``parquet`` extra): a folder of part files, as Spark and
  Ray Data write them (``pyarrow.parquet.read_table(folder)`` reads them as one table). A part is
  written whole (to a temporary name, then renamed), so a kill loses only the records not yet in a
  part, and resuming redoes exactly those.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

from facemtl.core.files import OutputExistsError, atomic_write

JSON_SUFFIXES = (".jsonl", ".json", ".ndjson")
#: A Parquet part holds at most this many records, and is written at least this often (seconds).
PART_RECORDS = 2000
PART_SECONDS = 60.0


class RecordWriter(Protocol):
    #: The inputs whose records the output holds already (resume skips them).
    done: set[str]

    def write(self, records: Iterable[dict[str, Any]]) -> None: ...

    def close(self) -> None: ...


def input_of(record: dict[str, Any]) -> str:
    """The input a record belongs to (a video frame's ``PATH#frame=N`` → ``PATH``)."""
    image = str(record.get("image", ""))
    return image.partition("#frame=")[0] if "frame" in record else image


def open_output(path: str | Path, *, resume: bool = False, overwrite: bool = False) -> RecordWriter:
    """A writer for ``path`` by its suffix. An existing output is continued (``resume``), replaced
    (``overwrite``) or refused (:class:`OutputExistsError`)."""
    path = Path(path)
    if resume and overwrite:
        raise ValueError("--resume and --overwrite exclude each other")
    suffix = path.suffix.lower()
    if suffix not in (*JSON_SUFFIXES, ".parquet"):
        raise ValueError(f"{path}: --output must end in .jsonl, .json, .ndjson or .parquet")
    if path.exists() and not (resume or overwrite):
        raise OutputExistsError(f"{path}: exists; --resume continues it, --overwrite replaces it")
    if suffix == ".parquet":
        return ParquetWriter(path, resume=resume)
    return JsonLinesWriter(path, resume=resume)


class JsonLinesWriter:
    """Records as JSON Lines, each line one flushed write."""

    def __init__(self, path: Path, *, resume: bool):
        self.path = path
        self.done: set[str] = set()
        if resume and path.exists():
            self._recover()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("a" if resume else "w", encoding="utf-8")

    def _recover(self) -> None:
        """Read the records already written; drop a cut last line and unfinished videos' frames."""
        text = self.path.read_text(encoding="utf-8")
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        elif lines:  # the last line was cut by a kill
            lines.pop()
        records = []
        for n, line in enumerate(lines, 1):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                raise ValueError(f"{self.path}:{n}: not a JSON line; cannot resume this file") from None
        finished = {input_of(r) for r in records if "frame" not in r or r.get("last")}
        kept = [line for line, r in zip(lines, records, strict=True) if input_of(r) in finished]
        if len(kept) != len(lines) or not text.endswith("\n"):
            body = "".join(line + "\n" for line in kept)
            atomic_write(self.path, lambda tmp: Path(tmp).write_text(body, encoding="utf-8"))
        self.done = finished

    def write(self, records: Iterable[dict[str, Any]]) -> None:
        from facemtl.analysis.analyzer import json_line

        self.write_lines([json_line(r) for r in records])

    def write_lines(self, lines: Iterable[str | None]) -> None:
        """Records already made into JSON lines (by a worker), in one flushed write."""
        text = "".join(f"{line}\n" for line in lines if line is not None)
        if text:
            self._file.write(text)
            self._file.flush()

    def close(self) -> None:
        self._file.close()


class ParquetWriter:
    """Records as a folder of Parquet parts, each written whole."""

    def __init__(self, path: Path, *, resume: bool):
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise ImportError("Parquet output needs pyarrow: pip install 'facemtl[parquet]'") from None
        self.path = path
        self.done: set[str] = set()
        if path.exists() and not path.is_dir():
            raise ValueError(f"{path}: a Parquet output is a folder of parts; this is a file")
        if path.exists() and not resume:  # --overwrite: the old parts go
            for part in path.glob("part-*.parquet"):
                part.unlink()
        path.mkdir(parents=True, exist_ok=True)
        parts = sorted(path.glob("part-*.parquet"))
        if parts:
            self.done = self._recover(parts)
        self._next = 1 + max((int(p.stem.split("-")[1]) for p in parts), default=-1)
        self._buffer: list[dict[str, Any]] = []
        self._since = time.monotonic()

    def _recover(self, parts: list[Path]) -> set[str]:
        import pyarrow.parquet as pq

        done: set[str] = set()
        for part in parts:
            table = pq.read_table(part, columns=["image", "frame", "last"])
            done |= {input_of(r) for r in table.to_pylist() if r["frame"] is None or r["last"]}
        return done

    def write(self, records: Iterable[dict[str, Any]]) -> None:
        self._buffer.extend(records)
        if len(self._buffer) >= PART_RECORDS or time.monotonic() - self._since >= PART_SECONDS:
            self.flush()

    def flush(self) -> None:
        if not self._buffer:
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist([_flat(r) for r in self._buffer], schema=SCHEMA())
        target = self.path / f"part-{self._next:05d}.parquet"
        atomic_write(target, lambda tmp: pq.write_table(table, tmp), suffix=".parquet")
        self._next += 1
        self._buffer = []
        self._since = time.monotonic()

    def close(self) -> None:
        self.flush()


def SCHEMA() -> Any:  # noqa: N802  # a constant built on first use (pyarrow is optional)
    """The Parquet schema of a record: one row per input (or video frame), faces nested; the
    attributes of a face as (task, label, prob) entries, whatever the model's tasks."""
    import pyarrow as pa

    attribute = pa.struct([("task", pa.string()), ("label", pa.string()), ("prob", pa.float64())])
    face = pa.struct(
        [
            ("box", pa.list_(pa.float64())),
            ("score", pa.float64()),
            ("landmarks", pa.list_(pa.list_(pa.float64()))),
            ("attributes", pa.list_(attribute)),
            ("track_id", pa.int64()),
        ]
    )
    return pa.schema(
        [
            ("image", pa.string()),
            ("faces", pa.list_(face)),
            ("error", pa.string()),
            ("frame", pa.int64()),
            ("time", pa.float64()),
            ("last", pa.bool_()),
        ]
    )


def _flat(record: dict[str, Any]) -> dict[str, Any]:
    """A JSON record in the Parquet schema's shape (attributes as a list of entries)."""
    faces = [
        {**f, "attributes": [{"task": k, **v} for k, v in f.get("attributes", {}).items()]}
        for f in record.get("faces", [])
    ]
    return {**record, "faces": faces}


def records_of_parquet(path: str | Path) -> list[dict[str, Any]]:
    """A Parquet output's records back in the JSON schema (fields that are null dropped)."""
    import pyarrow.parquet as pq

    return records_of_table(pq.read_table(str(path)))


def records_of_table(table: Any) -> list[dict[str, Any]]:
    """Rows of a pyarrow table in :func:`SCHEMA` back as JSON records (fields that are null dropped)."""
    out = []
    for row in table.to_pylist():
        faces = []
        for f in row["faces"] or []:
            face = {k: v for k, v in f.items() if v is not None and k != "attributes"}
            face["attributes"] = {a["task"]: {"label": a["label"], "prob": a["prob"]} for a in f["attributes"]}
            faces.append(face)
        record = {k: v for k, v in row.items() if v is not None and k != "faces"}
        if row.get("error") is None:
            record["faces"] = faces
        out.append(record)
    return out
