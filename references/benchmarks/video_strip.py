"""A strip of frames from a real photo filmed by a moving camera, for judging the tracker by eye.

    .venv/bin/python references/benchmarks/video_strip.py                       # → docs/video_strip.jpg
    .venv/bin/python references/benchmarks/video_strip.py --video strip.mp4     # also the annotated clip

The photo is matplotlib's public-domain portrait of Grace Hopper (it ships with matplotlib, so
anyone can rebuild this). A virtual camera pans, zooms and rolls over it for four seconds at
30 frames/s (640 × 480, with sensor noise and JPEG compression), and ``facemtl draw``'s tracker
follows the face; six frames, evenly spaced, are tiled into the strip with their times.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def camera_clip(photo: np.ndarray, seconds: float = 4.0, fps: float = 30.0) -> list[np.ndarray]:
    h, w = photo.shape[:2]
    rng = np.random.default_rng(0)
    frames = []
    for i in range(int(seconds * fps)):
        u = i / (seconds * fps)
        zoom = 1.0 + 0.6 * (0.5 - 0.5 * math.cos(2 * math.pi * u))  # in and out again
        cx = w / 2 + 0.12 * w * math.sin(2 * math.pi * u)
        cy = h * 0.45 + 0.08 * h * math.sin(4 * math.pi * u)
        roll = 0.15 * math.sin(2 * math.pi * u)
        scale = 480 / (h * 0.9) * zoom
        m = cv2.getRotationMatrix2D((cx, cy), math.degrees(roll), scale)
        m[:, 2] += np.array([320 - cx, 240 - cy])
        frame = cv2.warpAffine(photo, m, (640, 480), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        frame = np.clip(frame + rng.normal(0, 3, frame.shape), 0, 255).astype(np.uint8)
        ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 80])
        frames.append(cv2.imdecode(data, cv2.IMREAD_COLOR))
    return frames


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "video_strip.jpg"))
    ap.add_argument("--video", help="also write the annotated clip here (.mp4)")
    args = ap.parse_args()

    import matplotlib.cbook as cbook

    from facemtl.analysis.analyzer import FaceAnalyzer
    from facemtl.analysis.drawing import draw_faces
    from facemtl.video.io import VideoWriter
    from facemtl.video.tracking import FaceTracker

    photo = cv2.imread(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    frames = camera_clip(photo)
    tracker = FaceTracker(FaceAnalyzer.from_pretrained(), fps=30)
    drawn = [draw_faces(f, tracker.update(f), attributes=False) for f in frames]
    if args.video:
        with VideoWriter(args.video, 30, (640, 480)) as writer:
            for f in drawn:
                writer.write(f)
    picks = np.linspace(0, len(drawn) - 1, 6).round().astype(int)
    tiles = []
    for i in picks:
        tile = cv2.resize(drawn[i], (320, 240), interpolation=cv2.INTER_AREA)
        cv2.putText(tile, f"{i / 30:.1f} s", (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2, cv2.LINE_AA)
        tiles.append(tile)
    strip = np.vstack([np.hstack(tiles[:3]), np.hstack(tiles[3:])])
    cv2.imwrite(args.out, strip, [cv2.IMWRITE_JPEG_QUALITY, 85])
    print(f"{args.out}: frames {list(picks)}; detector runs {tracker.detections} of {len(frames)} frames")
    return 0


if __name__ == "__main__":
    sys.exit(main())
