"""Tiny real training runs on MTFL: learning happens, kills lose nothing, weights round-trip."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from facemtl import cli
from facemtl.models import create_model
from facemtl.models.weights import load_model, save_model
from facemtl.training.config import TrainConfig
from facemtl.training.engine import Trainer


@pytest.mark.slow
def test_tiny_real_training_run_reduces_landmark_error(tiny_config, tmp_path):
    result = Trainer(tiny_config(), tmp_path, progress=False).fit(log=lambda *_: None)
    nme = [r["val"]["nme"] for r in result.history]
    assert nme[-1] < 0.75 * nme[0], nme
    assert result.history[-1]["train"]["loss"] < result.history[0]["train"]["loss"]
    assert load_model(result.best_weights).config.name == "tcdcn"


FREEZE = Path(__file__).with_name("freeze_after.py")


def _wait_for_line(proc: subprocess.Popen, mark: str) -> bool:
    """Read the process's output until a line holds ``mark`` (True) or the output ends (False)."""
    for line in proc.stdout:
        if mark in line:
            return True
    return False


def _train_cmd(mtfl_dir: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "facemtl", "train", "--out", str(out), "--model", "tcdcn",
        "--train", str(mtfl_dir / "training.txt"), "--limit", "300", "--epochs", "6",
        "--batch-size", "32", "--threads", "1", "--seed", "3", *extra,
    ]  # fmt: skip


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_weights(mtfl_dir, tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    subprocess.run(_train_cmd(mtfl_dir, straight), check=True, capture_output=True)

    # kill -9 right after epoch 2's checkpoint: the run freezes itself there (tests/freeze_after.py)
    cmd = [sys.executable, str(FREEZE), "epoch   2/", *_train_cmd(mtfl_dir, killed)[3:]]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert _wait_for_line(proc, "epoch   2/"), "the run ended before its second epoch"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(json.loads((killed / "history.json").read_text()))
    assert done == 2
    torch.load(killed / "last.ckpt", weights_only=True)  # the checkpoint on disk is never torn

    subprocess.run(_train_cmd(mtfl_dir, killed, "--resume"), check=True, capture_output=True)
    a = torch.load(straight / "last.ckpt", weights_only=True)
    b = torch.load(killed / "last.ckpt", weights_only=True)
    assert a["epoch"] == b["epoch"] == 6
    for k in a["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], rtol=0, atol=0)
    assert [r["val"]["nme"] for r in a["history"]] == [r["val"]["nme"] for r in b["history"]]


def test_moving_average_is_scored_saved_and_resumed(tiny_config, tmp_path):
    cfg = tiny_config(epochs=2, limit=96, ema_decay=0.9)
    straight = Trainer(cfg, tmp_path / "straight", progress=False)
    snapshots: list[dict[str, torch.Tensor]] = []  # the average after each epoch

    def snapshot(line: str) -> None:
        if line.startswith("epoch "):
            snapshots.append({k: v.clone() for k, v in straight.scored.state_dict().items()})

    straight.fit(log=snapshot)
    assert len(snapshots) == 2
    averaged = snapshots[-1]
    live = straight.model.state_dict()
    assert not torch.equal(averaged["heads.landmarks.weight"], live["heads.landmarks.weight"])
    best = load_file(tmp_path / "straight" / "best.safetensors")  # the best epoch's average, not its live weights
    for k, v in snapshots[straight.best[1] - 1].items():
        torch.testing.assert_close(best[k], v, rtol=0, atol=0)

    class Killed(Exception):
        pass

    def die_after_epoch_1(line: str) -> None:
        if line.startswith("epoch   1/"):
            raise Killed  # after epoch 1's checkpoint, as a kill would

    with pytest.raises(Killed):
        Trainer(cfg, tmp_path / "killed", progress=False).fit(log=die_after_epoch_1)
    resumed = Trainer(cfg, tmp_path / "killed", progress=False)
    resumed.fit(resume=True, log=lambda *_: None)
    for k, v in averaged.items():
        torch.testing.assert_close(resumed.scored.state_dict()[k], v, rtol=0, atol=0)


def test_resume_refuses_a_different_config(tiny_config, tmp_path):
    Trainer(tiny_config(epochs=1, limit=64), tmp_path, progress=False).fit(log=lambda *_: None)
    with pytest.raises(ValueError, match="different config.*lr"):
        Trainer(tiny_config(epochs=1, limit=64, lr=1e-2), tmp_path, progress=False).fit(resume=True)


@pytest.mark.parametrize("overrides", [{}, {"feature_norm": True}, {"trunk": "mmoe", "feature_norm": True}])
def test_safetensors_round_trip(tmp_path, overrides):
    torch.manual_seed(0)
    model = create_model("facemtl_s", **overrides).eval()
    path = tmp_path / "m.safetensors"
    save_model(model, path, {"note": "test"})
    loaded = load_model(path)
    x = torch.randn(3, 1, 64, 64)
    with torch.no_grad():
        a, b = model(x), loaded(x)
    torch.testing.assert_close(a["landmarks"], b["landmarks"], rtol=0, atol=0)
    torch.testing.assert_close(a["attributes"]["pose"], b["attributes"]["pose"], rtol=0, atol=0)
    assert loaded.config == model.config
    assert json.loads(path.with_suffix(".json").read_text())["note"] == "test"
    assert set(load_file(path)) == set(model.state_dict())


def test_saving_the_same_weights_twice_writes_the_same_bytes(tmp_path):
    """A shipped file is named by its SHA-256, so re-packaging unchanged weights must not change it
    (safetensors reorders several metadata entries on every save; facemtl writes one)."""
    import hashlib

    model = create_model("facemtl_det")
    digests = set()
    for i in range(5):
        save_model(model, tmp_path / f"d{i}.safetensors")
        digests.add(hashlib.sha256((tmp_path / f"d{i}.safetensors").read_bytes()).hexdigest())
    assert len(digests) == 1


def test_weights_of_format_version_1_still_load(tmp_path):
    """Files written before the header record became one entry (format 1: three entries) load as before."""
    torch.manual_seed(0)
    model = create_model("tcdcn").eval()
    path = tmp_path / "v1.safetensors"
    meta = {"format": "facemtl", "format_version": "1", "config": json.dumps(model.config.to_dict())}
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path), metadata=meta)
    loaded = load_model(path)
    assert loaded.config == model.config
    x = torch.randn(2, 1, 40, 40)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x)["landmarks"], model(x)["landmarks"], rtol=0, atol=0)


def test_load_model_rejects_foreign_files(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="bad.safetensors: not a safetensors file"):
        load_model(bad)
    with pytest.raises(FileNotFoundError, match="nope.safetensors"):
        load_model(tmp_path / "nope.safetensors")
    plain = tmp_path / "plain.safetensors"  # a safetensors file, but not facemtl's
    save_file({"w": torch.zeros(2)}, str(plain), metadata={"facemtl": "not json"})
    with pytest.raises(ValueError, match="plain.safetensors: safetensors file without a facemtl model config"):
        load_model(plain)
    det = create_model("facemtl_det")  # a config value no detector takes
    config = det.config.to_dict() | {"anchors": "corner"}
    odd = tmp_path / "odd.safetensors"
    save_file(
        dict(det.state_dict()), str(odd), metadata={"facemtl": json.dumps({"format_version": 2, "config": config})}
    )
    with pytest.raises(ValueError, match=r"odd\.safetensors: its model config is not valid .*anchors must be one of"):
        load_model(odd)
    config = det.config.to_dict() | {"small_face_threshold": 1.5}  # a threshold no detector takes
    save_file(
        dict(det.state_dict()), str(odd), metadata={"facemtl": json.dumps({"format_version": 2, "config": config})}
    )
    with pytest.raises(ValueError, match=r"odd\.safetensors: .*small_face_threshold must be in \(0, 1\), got 1\.5"):
        load_model(odd)


def test_evaluate_cli_prints_table_and_json(mtfl_dir, tmp_path):
    from facemtl.data.mtfl import format_mtfl_line, read_mtfl

    model = create_model("tcdcn")
    w = tmp_path / "w.safetensors"
    save_model(model, w)
    samples = read_mtfl(mtfl_dir / "testing.txt")[:20]
    sub = tmp_path / "sub.txt"  # a 20-face annotation file with absolute image paths
    sub.write_text("\n".join(format_mtfl_line(s) for s in samples) + "\n")
    out = tmp_path / "m.json"
    r = subprocess.run(
        [sys.executable, "-m", "facemtl", "evaluate", "--weights", str(w), "--annotations", str(sub), "--json", str(out)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    assert "mean error" in r.stdout
    m = json.loads(out.read_text())
    assert set(m) >= {"nme", "failure_rate", "per_landmark", "attributes", "n"}
    assert m["n"] == 20 and set(m["per_landmark"]) == {"left_eye", "right_eye", "nose", "mouth_left", "mouth_right"}
    assert set(m["attributes"]) == {"gender", "smile", "glasses", "pose"}


def test_cli_reports_bad_annotation_file_cleanly(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("a.jpg 1 2\n")
    w = tmp_path / "w.safetensors"
    save_model(create_model("tcdcn"), w)
    r = subprocess.run(
        [sys.executable, "-m", "facemtl", "evaluate", "--weights", str(w), "--annotations", str(bad)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert r.returncode == 2
    assert "bad.txt:1: expected 11 fields" in r.stderr and "Traceback" not in r.stderr


def test_bad_training_config_names_the_file(tmp_path):
    cfg = tmp_path / "recipe.json"
    cfg.write_text('{"epochs": 3, "learning_rate": 0.1}')
    with pytest.raises(ValueError, match=r"recipe\.json: unknown training config key\(s\): \['learning_rate'\]"):
        TrainConfig.from_json(cfg)
    cfg.write_text('{"epochs": 3,\n "lr": }')
    with pytest.raises(ValueError, match=r"recipe\.json:2: invalid JSON"):
        TrainConfig.from_json(cfg)
    cfg.write_text('{"augment": {"rotate": 10, "spin": 1}}')
    with pytest.raises(ValueError, match=r"recipe\.json: .*spin"):
        TrainConfig.from_json(cfg)


@pytest.mark.parametrize("balancing", ["fixed", "dwa"])
def test_epoch_line_names_stopped_tasks_under_every_balancing(tiny_config, tmp_path, balancing):
    trainer = Trainer(tiny_config(balancing=balancing), tmp_path, progress=False)
    record = {
        "epoch": 3, "seconds": 1.0, "train": {"loss": 1.0}, "stopped_tasks": ["smile"],
        "val": {"nme": 5.0, "failure_rate": 2.0, "attributes": {"smile": 80.0}},
        "balance": {"landmarks": 1.0, "smile": 1.0},
    }  # fmt: skip
    line = trainer._summary(record)
    assert "stopped: smile" in line
    assert ("weights landmarks 1.00" in line) == (balancing != "fixed")


@pytest.mark.slow
def test_frozen_trunk_and_landmark_head_train_only_the_attribute_heads(tiny_config, tmp_path):
    torch.manual_seed(0)
    start = tmp_path / "start.safetensors"
    save_model(create_model("facemtl_s"), start)  # batch norm: its statistics must not drift either
    cfg = tiny_config(model="facemtl_s", init=str(start), freeze=("trunk", "heads.landmarks"), epochs=2, limit=200)
    trainer = Trainer(cfg, tmp_path / "run", progress=False)
    assert trainer.job.metric_name == "val attribute loss"  # the landmarks cannot pick an epoch
    result = trainer.fit(log=lambda *_: None)
    before, after = load_file(str(start)), load_file(str(result.best_weights))
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed, "nothing trained"
    assert all(k.startswith("heads.") and not k.startswith("heads.landmarks.") for k in changed), changed


def test_freezing_an_unknown_part_names_the_parts(tiny_config, tmp_path):
    with pytest.raises(ValueError, match=r"no part 'torso'; its parts: trunk, .*heads\.landmarks"):
        Trainer(tiny_config(freeze=("torso",)), tmp_path, progress=False)


def test_train_names_the_recipe_file_a_bad_freeze_came_from(tiny_config, tmp_path, capsys):
    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps(tiny_config(freeze=("torso",)).to_dict()))
    assert cli.main(["train", "--config", str(recipe), "--out", str(tmp_path / "run"), "--device", "cpu"]) == 2
    assert capsys.readouterr().err.startswith(f"facemtl train: error: {recipe}: freeze: the model has no part 'torso'")
