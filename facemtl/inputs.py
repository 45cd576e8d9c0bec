"""Expanding user inputs (files, folders) into the images and videos to process, and naming
each one's output so that no two inputs, and no input itself, share an output path."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv"}


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


def _readable(f: Path) -> bool:
    return f.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES and f.is_file()


def expand_inputs(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given (whatever their suffix, so a bad one is reported, not skipped); folders
    expanded to the images and videos directly inside them, sorted. A folder holding none stays
    in the list as itself, so that reading it says why (:func:`describe_folder`) instead of the
    folder vanishing in silence. A file named twice is processed once."""
    out: list[Path] = []
    seen: set[Path] = set()
    for p in map(Path, paths):
        found = sorted(f for f in p.iterdir() if _readable(f)) if p.is_dir() else [p]
        for f in found or [p]:
            key = f.resolve() if f.exists() else f
            if key not in seen:
                seen.add(key)
                out.append(f)
    return out


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
    stem, lengthened by its parent folders only where two inputs would otherwise share it
    (``a/p.jpg`` and ``b/p.jpg`` → ``a/p``, ``b/p``), and by its own suffix where even the full
    paths agree (``p.jpg``, ``p.png`` → ``p.jpg``, ``p.png``). Distinct inputs never share a base."""
    full = [p.resolve() for p in inputs]

    def candidate(p: Path, level: int) -> Path:
        parents = p.parent.parts[1:]  # without the root
        if level <= len(parents):
            return Path(*parents[len(parents) - level :], p.stem)
        return Path(*parents, p.name)

    levels = [0] * len(inputs)
    while True:
        names = [candidate(p, lv) for p, lv in zip(full, levels, strict=True)]
        counts = Counter(names)
        clashing = [i for i, n in enumerate(names) if counts[n] > 1 and levels[i] <= len(full[i].parent.parts)]
        if not clashing:
            return names
        for i in clashing:
            levels[i] += 1


def plan_outputs(inputs: Sequence[Path], out_dir: Path, suffix: Callable[[Path], str]) -> list[tuple[Path, Path]]:
    """(input, output) pairs: ``out_dir / base + suffix(input)``, bases from :func:`output_bases`."""
    return [(p, out_dir / f"{base}{suffix(p)}") for p, base in zip(inputs, output_bases(inputs), strict=True)]
