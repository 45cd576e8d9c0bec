"""CelebA's official lists (Liu et al., ICCV 2015): partitions of the aligned photos."""

from __future__ import annotations

from pathlib import Path

from facemtl.data.samples import AnnotationError

PARTITIONS = {"train": 0, "val": 1, "test": 2}


def celeba_photos(root: str | Path, partition: str = "train") -> list[Path]:
    """The ``img_align_celeba`` photos of one official partition, in file order."""
    root = Path(root)
    if partition not in PARTITIONS:
        raise ValueError(f"partition must be one of {', '.join(PARTITIONS)}, got {partition!r}")
    lists = root / "list_eval_partition.txt"
    if not lists.is_file():
        raise FileNotFoundError(f"{lists}: CelebA partition list not found")
    out = []
    for i, line in enumerate(lists.read_text().splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
            raise AnnotationError(f"{lists}:{i}: expected 'NAME 0|1|2', got {line.strip()[:80]!r}")
        if int(parts[1]) == PARTITIONS[partition]:
            out.append(root / "img_align_celeba" / parts[0])
    return out
