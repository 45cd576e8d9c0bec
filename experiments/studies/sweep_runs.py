"""One training run of a benchmark sweep: train (resuming an interrupted run, skipping a finished
one), then score the validation-selected weights on a test file. Shared by ablation.py and
mtl_experiments.py."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from facemtl.evaluation.benchmarks import DATA


def train_run(run_dir: Path, train_args: list[str], epochs: int, log: Path) -> Path:
    """``facemtl train --out run_dir *train_args`` until ``epochs`` are done (resuming an
    interrupted run, skipping a finished one); returns the validation-selected weights."""
    history = run_dir / "history.json"
    if not history.exists() or len(json.loads(history.read_text())) < epochs:
        cmd = [sys.executable, "-m", "facemtl", "train", "--out", str(run_dir), *train_args]
        if (run_dir / "last.ckpt").exists():
            cmd.append("--resume")
        with open(log, "a") as f:
            subprocess.run(cmd, check=True, stdout=f, stderr=subprocess.STDOUT)
    return run_dir / "best.safetensors"


def train_then_test(run_dir: Path, train_args: list[str], epochs: int, test: str, log: Path) -> dict:
    """:func:`train_run`, then ``facemtl evaluate`` of its weights on ``test``; the metrics,
    cached in ``test.json``."""
    result = run_dir / "test.json"
    if result.exists():
        return json.loads(result.read_text())
    train_run(run_dir, train_args, epochs, log)
    subprocess.run(
        [sys.executable, "-m", "facemtl", "evaluate", "--weights", str(run_dir / "best.safetensors"),
         "--annotations", test, "--json", str(result), "--threads", "1"],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return json.loads(result.read_text())


def add_sweep_arguments(ap: argparse.ArgumentParser, *, out: str, epochs: int) -> None:
    """The options every sweep takes: where its runs go, the base recipe, the test file, the
    shortened length, and how many runs train at once."""
    ap.add_argument("--out", default=out)
    ap.add_argument("--config", default="experiments/recipes/facemtl_mtfl_v1.json")
    ap.add_argument("--test", default=str(DATA / "MTFL/testing.txt"))
    ap.add_argument("--epochs", type=int, default=epochs)
    ap.add_argument("--jobs", type=int, default=2)
