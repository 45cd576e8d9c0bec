"""Run ``facemtl ARGS`` and freeze this process (SIGSTOP) as soon as it prints MARK.

    python tests/freeze_after.py MARK ARGS...

The kill tests use it to stop a training run at a known point — right after an epoch's line,
which the loop prints once that epoch's checkpoint and history are on disk — and then kill -9
it: an observable event instead of a race between polling a file and the run finishing. Under
``torchrun`` every worker runs this script; only rank 0 prints epoch lines, and the other ranks
block at their next collective.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any


class _FreezeOnMark:
    def __init__(self, stream: Any, mark: str):
        self.stream, self.mark = stream, mark

    def write(self, text: str) -> int:
        n = self.stream.write(text)
        if self.mark in text:
            self.stream.write("\n")
            self.stream.flush()
            os.kill(os.getpid(), signal.SIGSTOP)
        return n

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


if __name__ == "__main__":
    mark, args = sys.argv[1], sys.argv[2:]
    sys.stdout = _FreezeOnMark(sys.stdout, mark)
    from facemtl.cli import main

    sys.exit(main(args))
