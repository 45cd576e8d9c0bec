"""Landmark network speed on this CPU: one face at a time on one thread, and batched throughput.

    .venv/bin/python bench/speed.py [--weights W]

Prints a Markdown table (median of repeated timed runs after warm-up). Also times the Haar
detector and the whole analyze() call on a 512×512 photo.
"""

from __future__ import annotations

import argparse
import statistics
import time

import cv2
import torch

from facemtl.inference import FaceAnalyzer
from facemtl.models import create_model
from facemtl.weights import load_model


def median_ms(fn, repeats: int = 7, number: int = 200) -> float:
    for _ in range(20):
        fn()
    runs = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(number):
            fn()
        runs.append((time.perf_counter() - t) / number * 1e3)
    return statistics.median(runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = load_model(args.weights)
    s = model.config.input_size
    rows = []
    with torch.inference_mode():
        for name, m in [(model.config.name + " (shipped)", model), ("tcdcn", create_model("tcdcn").eval())]:
            size = m.config.input_size
            x1 = torch.randn(1, m.config.channels, size, size)
            rows.append(
                (name, f"{size}×{size}", sum(p.numel() for p in m.parameters()), median_ms(lambda m=m, x=x1: m(x)))
            )
    print("| network | input | parameters | forward, batch 1, 1 thread (ms/face) |")
    print("| --- | --- | --- | --- |")
    for name, inp, n, ms in rows:
        print(f"| {name} | {inp} | {n:,} | {ms:.3f} |")
    print()
    print("| batch size | faces/s (1 thread) |")
    print("| --- | --- |")
    with torch.inference_mode():
        for b in (1, 8, 32, 128):
            x = torch.randn(b, model.config.channels, s, s)
            ms = median_ms(lambda x=x: model(x), repeats=5, number=max(5, 200 // b))
            print(f"| {b} | {b / ms * 1e3:,.0f} |")
    import matplotlib.cbook as cbook  # a real 512×600 portrait that matplotlib ships

    photo = cv2.imread(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    photo = cv2.resize(photo, (512, 512))
    analyzer = FaceAnalyzer(model)
    det_ms = median_ms(lambda: analyzer.detector.detect(photo), repeats=5, number=20)
    all_ms = median_ms(lambda: analyzer.analyze(photo), repeats=5, number=20)
    print()
    print("| whole image, 512×512 photo, 1 thread | ms |")
    print("| --- | --- |")
    print(f"| Haar detector | {det_ms:.1f} |")
    print(f"| analyze(): detect + crop + network ×3 (refine=2) | {all_ms:.1f} |")


if __name__ == "__main__":
    main()
