"""Landmark network speed on this CPU: one face at a time on one thread, and batched throughput.

    .venv/bin/python references/benchmarks/speed.py [--weights W]      # about 3 min

Prints Markdown tables (medians of repeated timed runs after warm-up) and writes them to
references/benchmarks/results/speed.md, with every figure in references/benchmarks/results/speed.json. Times each shipped landmark
network and every other registered landmark preset (TCDCN's, facemtl_m: untrained weights time
alike), batched throughput, each backend, each detector (facemtl's network in PyTorch and ONNX
Runtime, OpenCV's Haar cascades) and the whole analyze() call on a 512×512 photo.
"""

from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path

import cv2
import torch

from facemtl.analysis.analyzer import FaceAnalyzer
from facemtl.analysis.views import flip_averaged
from facemtl.detection import create_detector
from facemtl.evaluation import benchmarks as common
from facemtl.models import MultiTaskNet, create_model, get_config, list_models
from facemtl.models.arrays import array_net
from facemtl.models.pretrained import PRETRAINED
from facemtl.models.weights import load_model

ROOT = Path(__file__).resolve().parents[2]

#: single calls are short here: average 200 per timed run, after 20 warm-up calls
median_ms = partial(common.median_ms, number=200, warmup=20)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", default=None, help="the landmark network of the backend and photo tables")
    ap.add_argument(
        "--out", default=str(ROOT / "references/benchmarks/results/speed"), help="writes OUT.md and OUT.json"
    )
    args = ap.parse_args()
    torch.set_num_threads(1)
    emit = common.Report()
    result: dict[str, dict] = {"networks": {}, "batch_faces_per_s": {}, "backends": {}, "photo_512": {}}

    model = load_model(args.weights)
    assert isinstance(model, MultiTaskNet)
    s = model.config.input_size
    networks = [(f"{n} (shipped)", load_model(n)) for n, p in PRETRAINED.items() if p.kind == "landmarks"]
    shipped = {m.config.name for _, m in networks}  # presets without shipped weights run untrained
    networks += [
        (n, create_model(n).eval()) for n in list_models() if get_config(n).kind == "landmarks" and n not in shipped
    ]
    emit("| network | input | parameters | forward, batch 1, 1 thread (ms/face) |")
    emit("| --- | --- | --- | --- |")
    with torch.inference_mode():
        for name, m in networks:
            size = m.config.input_size
            x1 = torch.randn(1, m.config.channels, size, size)
            n = sum(p.numel() for p in m.parameters())
            ms = median_ms(lambda m=m, x=x1: m(x))
            result["networks"][name] = {"input": size, "parameters": n, "ms_per_face": ms}
            emit(f"| {name} | {size}×{size} | {n:,} | {ms:.3f} |")
    emit()
    emit(f"| batch size | faces/s ({model.config.name}, 1 thread) |")
    emit("| --- | --- |")
    with torch.inference_mode():
        for b in (1, 8, 32, 128):
            x = torch.randn(b, model.config.channels, s, s)
            ms = median_ms(lambda x=x: model(x), repeats=5, number=max(5, 200 // b))
            result["batch_faces_per_s"][str(b)] = b / ms * 1e3
            emit(f"| {b} | {b / ms * 1e3:,.0f} |")
    emit()
    emit(
        "| backend (shipped network, 1 thread) | batch 1 (ms/face) | batch 1, flip test (ms/face) | batch 32 (faces/s) |"
    )
    emit("| --- | --- | --- | --- |")
    tasks = model.config.tasks
    x1, x32 = torch.randn(1, model.config.channels, s, s), torch.randn(32, model.config.channels, s, s)
    onnx = None
    for name, make in backends(model):
        try:
            fn = make()
            with torch.inference_mode():
                one = median_ms(lambda fn=fn: fn(x1))
                flip = median_ms(lambda net=array_net(fn): flip_averaged(net, x1.numpy(), tasks))
                many = median_ms(lambda fn=fn: fn(x32), repeats=5, number=10)
        except Exception as e:  # a backend this machine cannot run is reported, not fatal
            result["backends"][name] = {"unavailable": f"{type(e).__name__}: {str(e).splitlines()[0][:80]}"}
            emit(f"| {name} | unavailable: {result['backends'][name]['unavailable']} | | |")
            continue
        result["backends"][name] = {
            "ms_per_face": one,
            "flip_ms_per_face": flip,
            "batch32_faces_per_s": 32 / many * 1e3,
        }
        emit(f"| {name} | {one:.3f} | {flip:.3f} | {32 / many * 1e3:,.0f} |")
        if name.startswith("ONNX"):
            onnx = fn
    import matplotlib.cbook as cbook  # a real 512×600 portrait that matplotlib ships

    photo = cv2.imread(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    photo = cv2.resize(photo, (512, 512))
    emit()
    emit(
        "| whole image, 512×512 photo, 1 thread | detector (ms) | analyze(): detect + crop + network ×2, refine = 1 (ms) |"
    )
    emit("| --- | --- | --- |")
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
        result["photo_512"][label] = {"detector_ms": det_ms, "analyze_ms": all_ms}
        emit(f"| {label} | {det_ms:.2f} | {all_ms:.2f} |")
    md, js = emit.save(args.out, result)
    print(f"\nwrote {md}, {js}")


def backends(model):
    """(name, factory) for each way of running the network; factories may raise."""

    def compiled():
        fn = torch.compile(model)
        with torch.inference_mode():
            fn(torch.randn(1, model.config.channels, model.config.input_size, model.config.input_size))
        return fn

    def ort():
        from facemtl.models.onnx_runtime import OnnxNet

        return OnnxNet.from_model(model, threads=1)

    return [("PyTorch eager", lambda: model), ("torch.compile (inductor)", compiled), ("ONNX Runtime (CPU)", ort)]


if __name__ == "__main__":
    main()
