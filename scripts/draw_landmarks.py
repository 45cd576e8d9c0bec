"""Draw facemtl's landmarks, boxes and attributes on images, folders of images, or videos.

    python scripts/draw_landmarks.py photo.jpg more/ clip.mp4 --out annotated/ [--json]

The same as ``facemtl draw`` (which ships with the package; this script is its checkout
shortcut): each image ``NAME.ext`` becomes ``OUT/NAME.jpg``, a video ``OUT/NAME.mp4``; ``--json``
also writes ``OUT/NAME.json`` in the ``facemtl predict --json`` schema. A bad input is reported
and skipped; the exit status is 1 if any input failed.
"""

from __future__ import annotations

import sys

from facemtl.cli import main

if __name__ == "__main__":
    sys.exit(main(["draw", *sys.argv[1:]]))
