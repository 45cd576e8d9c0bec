"""Landmark network speed on this CPU: one face at a time on one thread, and batched throughput.

    .venv/bin/python bench/speed.py [--weights W]

Prints a Markdown table (median of repeated timed runs after warm-up). Also times each detector
(facemtl's network in PyTorch and ONNX Runtime, OpenCV's Haar cascades) and the whole analyze()
call on a 512×512 photo.
"""

from __future__ import annotations

import argparse
from functools import partial

import common
import cv2
import torch

from facemtl.detection import create_detector
from facemtl.inference import FaceAnalyzer
from facemtl.models import create_model
from facemtl.models.flip import flip_averaged
from facemtl.weights import load_model

#: single calls are short here: average 200 per timed run, after 20 warm-up calls
median_ms = partial(common.median_ms, number=200, warmup=20)


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
    print()
    print(
        "| backend (shipped network, 1 thread) | batch 1 (ms/face) | batch 1, flip test (ms/face) | batch 32 (faces/s) |"
    )
    print("| --- | --- | --- | --- |")
    tasks = model.config.tasks
    x1, x32 = torch.randn(1, model.config.channels, s, s), torch.randn(32, model.config.channels, s, s)
    onnx = None
    for name, make in backends(model):
        try:
            fn = make()
            with torch.inference_mode():
                one = median_ms(lambda fn=fn: fn(x1))
                flip = median_ms(lambda fn=fn: flip_averaged(fn, x1, tasks))
                many = median_ms(lambda fn=fn: fn(x32), repeats=5, number=10)
        except Exception as e:  # a backend this machine cannot run is reported, not fatal
            print(f"| {name} | unavailable: {type(e).__name__}: {str(e).splitlines()[0][:80]} | | |")
            continue
        print(f"| {name} | {one:.3f} | {flip:.3f} | {32 / many * 1e3:,.0f} |")
        if name.startswith("ONNX"):
            onnx = fn
    import matplotlib.cbook as cbook  # a real 512×600 portrait that matplotlib ships

    photo = cv2.imread(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    photo = cv2.resize(photo, (512, 512))
    print()
    print(
        "| whole image, 512×512 photo, 1 thread | detector (ms) | analyze(): detect + crop + network ×2, refine = 1 (ms) |"
    )
    print("| --- | --- | --- |")
    rows = [
        ("facemtl detector, PyTorch", "facemtl", "torch", model),
        ("Haar cascades, PyTorch", "haar", "torch", model),
    ]
    if onnx is not None:
        rows.insert(1, ("facemtl detector, ONNX Runtime (both networks)", "facemtl", "onnx", onnx))
    for label, spec, backend, net in rows:
        det = create_detector(spec, backend=backend)
        analyzer = FaceAnalyzer(net, det)
        det_ms = median_ms(lambda det=det: det.detect(photo), repeats=5, number=20)
        all_ms = median_ms(lambda a=analyzer: a.analyze(photo), repeats=5, number=20)
        print(f"| {label} | {det_ms:.2f} | {all_ms:.2f} |")


def backends(model):
    """(name, factory) for each way of running the network; factories may raise."""

    def compiled():
        fn = torch.compile(model)
        with torch.inference_mode():
            fn(torch.randn(1, model.config.channels, model.config.input_size, model.config.input_size))
        return fn

    def ort():
        from facemtl.export import OnnxNet

        return OnnxNet.from_model(model, threads=1)

    return [("PyTorch eager", lambda: model), ("torch.compile (inductor)", compiled), ("ONNX Runtime (CPU)", ort)]


if __name__ == "__main__":
    main()
