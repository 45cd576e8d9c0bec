"""Fixed validation parts chosen by file name, so they hold on every machine and in any listing order."""

from __future__ import annotations

import hashlib
from pathlib import Path

#: The share of files a name-hashed split holds out for validation.
VALIDATION_SHARE = 0.2


def in_validation(name: str | Path, share: float = VALIDATION_SHARE) -> bool:
    """Whether a file belongs to the fixed validation part: a hash of its name (not its folder, not
    its order), so adding files to a folder never moves the others between parts."""
    digest = hashlib.sha256(Path(name).name.encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < share
