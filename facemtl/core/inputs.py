"""Expanding user inputs (files, folders) into the images and videos to process, and naming
each one's output so that no two inputs, and no input itself, share an output path."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv"}


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


def _readable(f: Path) -> bool:
    return f.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES and f.is_file()


GLOB_CHARS = set("*?[")


def expand_inputs(paths: Iterable[str | Path], *, recursive: bool = False) -> list[Path]:
    """:func:`iter_inputs` as a list."""
    return list(iter_inputs(paths, recursive=recursive))


def iter_inputs(paths: Iterable[str | Path], *, recursive: bool = False) -> Iterator[Path]:
    """The images and videos named by ``paths``, streamed: files as given (whatever their suffix, so
    a bad one is reported, not skipped); folders expanded to the images and videos inside them,
    sorted (``recursive``: in every subfolder too, depth first in name order); a pattern that is not
    a file (``photos/*.jpg``, ``**/*.png``) expanded as a glob, sorted. A folder holding none, or a
    pattern matching none, stays as itself, so that reading it says why (:func:`describe_folder`)
    instead of vanishing in silence. A file named twice is processed once."""
    seen: set[Path] = set()
    for p in map(Path, paths):
        if p.is_dir():
            found = _folder(p, recursive)
        elif not p.exists() and GLOB_CHARS & set(str(p)):
            found = sorted(f for f in _glob(p) if _readable(f))
        else:
            found = [p]
        for f in found or [p]:
            key = f.resolve() if f.exists() else f
            if key not in seen:
                seen.add(key)
                yield f


def _folder(folder: Path, recursive: bool) -> list[Path]:
    entries = sorted(folder.iterdir())
    found = [f for f in entries if _readable(f)]
    if recursive:
        for sub in (f for f in entries if f.is_dir()):
            found += _folder(sub, True)
    return found


def _glob(pattern: Path) -> Iterator[Path]:
    parts = pattern.parts
    first = next(i for i, part in enumerate(parts) if GLOB_CHARS & set(part))
    root = Path(*parts[:first]) if first else Path(".")
    return root.glob(str(Path(*parts[first:])))


def read_list(source: str) -> Iterator[str]:
    """The paths of a list file, one per line (``-``: standard input, read as it arrives); blank
    lines and lines starting with ``#`` are skipped."""
    f = sys.stdin if source == "-" else open(source, encoding="utf-8")  # noqa: SIM115  # closed below
    try:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                yield line
    finally:
        if f is not sys.stdin:
            f.close()


def parse_shard(text: str) -> tuple[int, int]:
    """``I/N`` → (I, N): this job's share of the inputs, 0 <= I < N (a job array's task index)."""
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard takes I/N (e.g. 0/4), got {text!r}") from None
    if not 0 <= i < n:
        raise ValueError(f"--shard I/N needs 0 <= I < N, got {text!r}")
    return i, n


def shard(items: Iterable[Path], index: int, count: int) -> Iterator[Path]:
    """The inputs of shard ``index`` of ``count``: every count-th input of the expanded, ordered
    stream, starting at ``index`` — the shards of one input list partition it exactly."""
    for k, item in enumerate(items):
        if k % count == index:
            yield item


def describe_folder(folder: Path) -> str:
    """Why a folder is not an image: what it holds (when no image or video, what instead)."""
    try:
        entries = list(folder.iterdir())
    except OSError as e:
        return f"{folder}: cannot list folder ({e.strerror or e})"
    if any(_readable(f) for f in entries):
        return f"{folder}: is a directory, not an image (facemtl predict and draw expand folders)"
    if not entries:
        return f"{folder}: empty folder"
    files = Counter(f.suffix.lower() or "(no suffix)" for f in entries if f.is_file())
    folders = sum(f.is_dir() for f in entries)
    held = [f"{n} {s}" for s, n in files.most_common(4)] + (
        [f"{folders} subfolder(s), not searched"] if folders else []
    )
    readable = " ".join(sorted(IMAGE_SUFFIXES | VIDEO_SUFFIXES))
    return f"{folder}: no image or video in this folder (it holds {', '.join(held)}; facemtl reads {readable})"


def output_bases(inputs: Sequence[Path]) -> list[Path]:
    """Each input's output path without its suffix, relative to the output folder: the input's
    stem, lengthened only where two inputs would otherwise share it — by their parent folders
    where those differ (``a/p.jpg``, ``b/p.png`` → ``a/p``, ``b/p``), by their own suffix where they
    sit in one folder (``p.jpg``, ``p.png`` → ``p.jpg``, ``p.png``). Distinct files never share a base."""
    full = [p.resolve() for p in inputs]
    levels = [0] * len(full)
    keep_suffix = [False] * len(full)

    def base(i: int) -> Path:
        parents = full[i].parent.parts[1:]  # without the root
        name = full[i].name if keep_suffix[i] else full[i].stem
        return Path(*parents[len(parents) - min(levels[i], len(parents)) :], name)

    while True:
        names = [base(i) for i in range(len(full))]
        groups: dict[Path, list[int]] = {}
        for i, n in enumerate(names):
            groups.setdefault(n, []).append(i)
        changed = False
        for group in (g for g in groups.values() if len(g) > 1):
            if len({full[i].parent for i in group}) > 1:
                for i in group:
                    levels[i] += 1
                changed = True
            elif not all(keep_suffix[i] for i in group):
                for i in group:
                    keep_suffix[i] = True
                changed = True
        if not changed:  # unique, or the same file named twice (expand_inputs drops those)
            return names


def plan_outputs(inputs: Sequence[Path], out_dir: Path, suffix: Callable[[Path], str]) -> list[tuple[Path, Path]]:
    """(input, output) pairs: ``out_dir / base + suffix(input)``, bases from :func:`output_bases`."""
    return [(p, out_dir / f"{base}{suffix(p)}") for p, base in zip(inputs, output_bases(inputs), strict=True)]
