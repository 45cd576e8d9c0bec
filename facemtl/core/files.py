"""Writing files so that nothing is lost: atomic replacement, and errors that name the file.

Every file facemtl writes (weights, checkpoints, histories, annotated images and videos, JSON
sidecars) goes through :func:`atomic_write`: a kill at any moment leaves the previous complete
file, and a full disk or a read-only folder is an :class:`OSError` naming the file, not a bare
``[Errno 28]`` from deep inside a library. Torch-free.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def data_package_dir(package: str, checkout: Path) -> Path:
    """Where a data-only package (no ``__init__.py``: the shipped weights, the recipes) lies:
    inside the installed wheel, or the checkout folder ``pyproject.toml`` maps it from."""
    from importlib import util

    spec = util.find_spec(package)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        if Path(folder).is_dir():
            return Path(folder)
    return checkout


class OutputExistsError(FileExistsError):
    """An output would replace a file that is there already (no flag allows it) or an input."""


def atomic_write(path: str | Path, write: Callable[[str], object], *, suffix: str = ".tmp") -> None:
    """Write via a temp file in the same folder + rename, so a kill never leaves half a file.

    ``write`` receives the temp file's path; ``suffix`` is the temp file's ending (a video writer
    picks its container from it)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    except OSError as e:
        raise named_os_error(e, f"{path}: cannot write ({e.strerror or e})") from None
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file a normal new file's mode
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if is_writing_error(e) and not str(e).startswith(str(path)):
            reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            raise named_os_error(e, f"{path}: cannot write ({reason})") from None
        raise


def named_os_error(cause: BaseException, message: str) -> OSError:
    """An OSError whose text is ``message`` alone (no ``[Errno N]`` prefix) keeping the cause's errno."""
    error = OSError(message)
    error.errno = getattr(cause, "errno", None)
    return error


#: How writers other than Python's report a failed write: PyTorch's zip writer ("unexpected pos"
#: when the disk is full), safetensors ("I/O error").
_WRITE_FAILURES = ("no space left", "file too large", "write failed", "unexpected pos", "i/o error", "errno")


def is_writing_error(e: BaseException) -> bool:
    """Whether an exception raised while writing is the file system's (full disk, read-only
    folder, file too large): an OSError, or a library's own error type saying so."""
    if isinstance(e, OSError):
        return True
    if isinstance(e, (KeyboardInterrupt, SystemExit, MemoryError)):
        return False
    text = str(e).lower()
    return any(s in text for s in _WRITE_FAILURES)
