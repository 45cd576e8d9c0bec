"""Training throughput on this machine: input pipeline, processes, dataset size.

    .venv/bin/python experiments/studies/training_scaling.py --out experiments/results/training_scaling

Three tables, each measured in this one run on the shipped recipe's model (facemtl_s, batch 64):

1. Input pipeline — decoded-crop cache on/off × DataLoader workers 0/2 on 2,000 MTFL faces:
   one-off set-up (decoding), loader-only images/s, and training images/s and epoch time.
2. Processes — the same 5,000 faces for 2 epochs by one process (1 or 2 threads) and by
   ``torchrun --nproc_per_node 2`` (1 thread each, gloo): epoch time and speed-up.
3. Dataset size — 1k, 5k, 10k faces: decoding time and epoch time.

Times are medians over the measured epochs (the first epoch is a warm-up and not counted).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from facemtl.evaluation.benchmarks import DATA, Report
from facemtl.training.config import DatasetSpec, TrainConfig

MTFL = str(DATA / "MTFL/training.txt")


def _cfg(**kw) -> TrainConfig:
    base = dict(model="facemtl_s", train=(DatasetSpec(MTFL),), val_fraction=0.0, epochs=3, batch_size=64, threads=2)
    return TrainConfig(**(base | kw))


def _prepared(cfg: TrainConfig):
    """A trainer (2 threads) with its data loaded, and the seconds loading took."""
    from facemtl.training.engine import Trainer

    torch.set_num_threads(2)
    t = Trainer(cfg, tempfile.mkdtemp(prefix="facemtl_bench_"), device="cpu", progress=False)
    t0 = time.perf_counter()
    t._prepare_data()
    return t, time.perf_counter() - t0


def _median_epoch(t, epochs: int) -> float:
    """Median seconds of ``epochs`` training epochs after one warm-up epoch."""
    times = []
    for e in range(epochs + 1):
        t.epoch = e
        t0 = time.perf_counter()
        t.train_epoch()
        times.append(time.perf_counter() - t0)
    return statistics.median(times[1:])


def pipeline(n: int, epochs: int) -> list[dict]:
    rows = []
    for cache in (True, False):
        for workers in (0, 2):
            t, setup = _prepared(_cfg(limit=n, cache=cache, workers=workers, epochs=epochs + 1))
            data = t.train_data
            data.set_epoch(0)
            loader = DataLoader(data, batch_sampler=t._batches(0)[0], num_workers=workers)
            t0 = time.perf_counter()
            for _ in loader:
                pass
            load_rate = len(data) / (time.perf_counter() - t0)
            epoch = _median_epoch(t, epochs)
            rows.append(
                {"cache": cache, "workers": workers, "faces": len(data), "setup_s": setup,
                 "loader_images_per_s": load_rate, "epoch_s": epoch, "train_images_per_s": len(data) / epoch}
            )  # fmt: skip
            print(f"  pipeline cache={cache} workers={workers}: {rows[-1]}", file=sys.stderr, flush=True)
    return rows


def _run_cli(cmd: list[str], out: Path, env: dict[str, str]) -> dict:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=os.environ | env, capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stderr[-3000:]}")
    wall = time.perf_counter() - t0
    history = json.loads((out / "history.json").read_text())
    return {"epoch_s": statistics.median(h["seconds"] for h in history[1:]), "wall_s": wall}


def processes(n: int, epochs: int) -> list[dict]:
    rows = []
    common = ["-m", "facemtl", "train", "--model", "facemtl_s", "--train", MTFL, "--limit", str(n),
              "--val-fraction", "0", "--epochs", str(epochs + 1), "--device", "cpu"]  # fmt: skip
    for procs, threads in ((1, 1), (1, 2), (2, 1)):
        out = Path(tempfile.mkdtemp(prefix="facemtl_bench_"))
        launcher = [sys.executable] if procs == 1 else [
            sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}"
        ]  # fmt: skip
        cmd = [*launcher, *common, "--threads", str(threads), "--out", str(out)]
        r = _run_cli(cmd, out, {"OMP_NUM_THREADS": str(threads)})
        rows.append({"processes": procs, "threads_each": threads, "faces": n} | r)
        print(f"  processes={procs} threads={threads}: {rows[-1]}", file=sys.stderr, flush=True)
    base = rows[0]["epoch_s"]
    for r in rows:
        r["speedup_vs_1x1"] = base / r["epoch_s"]
    return rows


def sizes(counts: list[int], epochs: int) -> list[dict]:
    rows = []
    for n in counts:
        t, setup = _prepared(_cfg(limit=n, epochs=epochs + 1))
        epoch = _median_epoch(t, epochs)
        rows.append({"faces": n, "decode_s": setup, "epoch_s": epoch, "us_per_face": 1e6 * epoch / n})
        print(f"  size {n}: {rows[-1]}", file=sys.stderr, flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="experiments/results/training_scaling")
    ap.add_argument("--epochs", type=int, default=2, help="measured epochs per setting (after one warm-up)")
    args = ap.parse_args()
    if not Path(MTFL).exists():
        sys.exit(f"{MTFL}: MTFL training data not found (run from the repository root beside ../shared)")

    res = {
        "machine": f"{os.cpu_count()} CPU cores, torch {torch.__version__}",
        "pipeline": pipeline(2000, args.epochs),
        "processes": processes(5000, args.epochs),
        "sizes": sizes([1000, 5000, 10000], args.epochs),
    }
    lines = [f"Training throughput, facemtl_s, batch 64 ({res['machine']})", ""]
    lines += ["Input pipeline (2,000 faces, 1 process, 2 threads):", ""]
    lines += ["| crop cache | workers | set-up (s) | loader only (img/s) | training (img/s) | epoch (s) |"]
    lines += ["| --- | --- | --- | --- | --- | --- |"]
    for r in res["pipeline"]:
        lines.append(
            f"| {'memory' if r['cache'] else 'none'} | {r['workers']} | {r['setup_s']:.1f} | "
            f"{r['loader_images_per_s']:,.0f} | {r['train_images_per_s']:,.0f} | {r['epoch_s']:.2f} |"
        )
    lines += ["", "Processes (5,000 faces, memory cache, workers 0):", ""]
    lines += [
        "| processes × threads | epoch (s) | speed-up vs 1 × 1 | wall incl. start-up (s) |",
        "| --- | --- | --- | --- |",
    ]
    for r in res["processes"]:
        lines.append(
            f"| {r['processes']} × {r['threads_each']} | {r['epoch_s']:.2f} | {r['speedup_vs_1x1']:.2f} | {r['wall_s']:.0f} |"
        )
    lines += ["", "Dataset size (1 process, 2 threads, memory cache):", ""]
    lines += ["| faces | decode + crop once (s) | epoch (s) | µs per face |", "| --- | --- | --- | --- |"]
    for r in res["sizes"]:
        lines.append(f"| {r['faces']:,} | {r['decode_s']:.1f} | {r['epoch_s']:.2f} | {r['us_per_face']:.0f} |")
    report = Report()
    for line in lines:
        report(line)
    report.save(args.out, res)


if __name__ == "__main__":
    main()
