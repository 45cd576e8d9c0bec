"""Training as a hostile user meets it (issue 34): an earlier run is never overwritten without a
flag, a cut checkpoint, a full disk and Ctrl-C each end in one named line, and a run without
validation data says what its figure is."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from facemtl.cli import main


def _args(mtfl_dir: Path, out: Path, *extra: str) -> list[str]:
    return [
        "train", "--out", str(out), "--model", "tcdcn", "--train", str(mtfl_dir / "training.txt"),
        "--limit", "96", "--epochs", "1", "--batch-size", "32", "--threads", "1", *extra,
    ]  # fmt: skip


def test_a_run_folder_is_never_overwritten_without_a_flag(mtfl_dir, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(_args(mtfl_dir, run)) == 0
    files = {p.name: p.read_bytes() for p in run.iterdir()}
    assert {"last.ckpt", "best.safetensors", "best.json", "history.json"} <= set(files)
    capsys.readouterr()

    assert main(_args(mtfl_dir, run, "--lr", "0.01")) == 2
    err = capsys.readouterr().err
    assert "holds a training run" in err and "--resume" in err and "--overwrite" in err
    assert {p.name: p.read_bytes() for p in run.iterdir()} == files  # untouched

    assert main(_args(mtfl_dir, run, "--lr", "0.01", "--overwrite")) == 0
    assert (run / "last.ckpt").read_bytes() != files["last.ckpt"]


def test_out_naming_a_file_is_refused(mtfl_dir, tmp_path, capsys):
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    assert main(_args(mtfl_dir, target)) == 2
    assert "is a file, not a run folder" in capsys.readouterr().err
    assert target.read_text() == "mine"


def test_resume_from_a_cut_checkpoint_is_a_named_error(mtfl_dir, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(_args(mtfl_dir, run)) == 0
    ckpt = run / "last.ckpt"
    ckpt.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 3])
    capsys.readouterr()
    assert main(_args(mtfl_dir, run, "--epochs", "2", "--resume")) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"facemtl train: error: {ckpt}: not a readable facemtl checkpoint")
    assert "Traceback" not in err


def test_without_validation_data_the_figure_is_named_for_what_it_is(mtfl_dir, tmp_path, capsys):
    assert main(_args(mtfl_dir, tmp_path / "run", "--val-fraction", "0", "--epochs", "2")) == 0
    out = capsys.readouterr().out
    assert "best training loss (no validation data)" in out and "at epoch 2" in out
    assert "val NME" not in out.splitlines()[-2]


def _limit_file_size() -> None:  # in the child: a disk that takes 20 kB more, then refuses
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))


@pytest.mark.slow
def test_a_full_disk_is_one_named_line(mtfl_dir, tmp_path):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "facemtl", *_args(mtfl_dir, run)]
    r = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=_limit_file_size, timeout=300)
    assert r.returncode == 2, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith(f"facemtl train: error: {run}/") and "cannot write (" in last, r.stderr
    assert "Traceback" not in r.stderr
    assert not [p for p in run.iterdir() if p.name.startswith(".")]  # no temp file left behind


@pytest.mark.slow
def test_ctrl_c_ends_training_with_one_line_and_a_checkpoint_to_resume(mtfl_dir, tmp_path):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "facemtl", *_args(mtfl_dir, run, "--epochs", "30", "--limit", "200")]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}
    )
    assert proc.stdout is not None
    for line in proc.stdout:  # wait for the first epoch's line: its checkpoint is on disk
        if line.startswith("epoch   1/"):
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert len(err.strip().splitlines()) == 1, err
    assert "interrupted; " in err and "last.ckpt holds epoch" in err and "--resume" in err
    state = torch.load(run / "last.ckpt", weights_only=True)  # complete: written atomically
    assert state["epoch"] >= 1 and len(state["history"]) == state["epoch"]


def test_init_from_weights_of_another_input_geometry_is_said_loudly(tmp_path):
    from facemtl.training.config import TrainConfig
    from facemtl.training.jobs import create_job

    cfg = TrainConfig(model="facemtl_s", landmarks=68, init="facemtl_300w68")  # 64 px, crop 2.2: not its 80 px, 3.0
    text = create_job(cfg).describe()
    assert "41 of 42 tensors from facemtl_300w68" in text
    assert "WARNING: the model's input differs from facemtl_300w68's: input_size 80 in the weights, 64 here" in text
    assert "start untrained: trunk." in text and "shape" in text
