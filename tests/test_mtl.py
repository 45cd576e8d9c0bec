"""Multi-task strategies: loss balancing, MMoE, partial labels and mixed sources."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from facemtl.core.tasks import MTFL_TASKS
from facemtl.data.samples import FaceSample
from facemtl.data.sampling import mixture_probabilities, withhold_attributes
from facemtl.models import create_model
from facemtl.training.balancing import DynamicWeightAverage, UncertaintyWeights, create_balancer
from facemtl.training.config import DatasetSpec, TrainConfig
from facemtl.training.engine import Trainer
from facemtl.training.losses import MultiTaskLoss


@pytest.mark.parametrize(
    "variant",
    [
        {"balancing": "uncertainty"},
        {"balancing": "dwa"},
        {"model_overrides": {"trunk": "mmoe", "experts": 3}},
        {"model_overrides": {"feature_norm": True}},
    ],
    ids=["uncertainty", "dwa", "mmoe", "feature_norm"],
)
@pytest.mark.slow
def test_each_strategy_trains_on_real_faces(tiny_config, tmp_path, variant):
    cfg = tiny_config(limit=300, val_fraction=0.2, epochs=5, **variant)
    result = Trainer(cfg, tmp_path, progress=False).fit(log=lambda *_: None)
    h = result.history
    assert h[-1]["val"]["nme"] < 0.75 * h[0]["val"]["nme"], [r["val"]["nme"] for r in h]
    assert h[-1]["train"]["landmarks"] < h[0]["train"]["landmarks"]
    assert set(h[-1]["balance"]) == {"landmarks", "gender", "smile", "glasses", "pose"}  # logged every epoch
    if variant.get("model_overrides", {}).get("trunk") == "mmoe":
        gates = h[-1]["val"]["gates"]
        assert set(gates) == set(h[-1]["balance"]) and all(len(g) == 3 for g in gates.values())


def test_uncertainty_weighting_turns_down_a_pure_noise_task():
    """Two regression tasks on one shared layer; one target is learnable, the other is noise."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(512, 8, generator=g)
    signal = x @ torch.randn(8, 1, generator=g)
    noise = 3.0 * torch.randn(512, 1, generator=g)
    shared, heads = (
        torch.nn.Linear(8, 16),
        torch.nn.ModuleDict({"signal": torch.nn.Linear(16, 1), "noise": torch.nn.Linear(16, 1)}),
    )
    balancer = UncertaintyWeights(["signal", "noise"])
    opt = torch.optim.Adam([*shared.parameters(), *heads.parameters(), *balancer.parameters()], lr=0.02)
    for _ in range(400):
        f = torch.relu(shared(x))
        losses = {
            "signal": ((heads["signal"](f) - signal) ** 2).mean(),
            "noise": ((heads["noise"](f) - noise) ** 2).mean(),
        }
        opt.zero_grad()
        balancer(losses, {"signal": 1.0, "noise": 1.0}).backward()
        opt.step()
    w = balancer.task_weights()
    assert w["noise"] < 0.3 < 1.0 < w["signal"], w  # started at 1 each; σ² tracks each task's loss
    assert w["noise"] == pytest.approx(1 / losses["noise"].detach().item(), rel=0.2)


def test_dwa_gives_the_stalled_task_more_weight():
    dwa = DynamicWeightAverage(["landmarks", "gender", "smile"])
    dwa.end_epoch({"landmarks": 1.0, "gender": 1.0, "smile": 1.0})
    assert dwa.task_weights() == {"landmarks": 1.0, "gender": 1.0, "smile": 1.0}  # needs two epochs
    dwa.end_epoch({"landmarks": 0.5, "gender": 1.0, "smile": 0.9})
    w = dwa.task_weights()
    assert sum(w.values()) == pytest.approx(3.0)
    assert w["gender"] > w["smile"] > w["landmarks"]
    again = DynamicWeightAverage(["landmarks", "gender", "smile"])
    again.load_state_dict(dwa.state_dict())  # resumable: the history travels in the checkpoint
    assert again.task_weights() == w


def test_unknown_balancing_is_a_clear_error():
    with pytest.raises(ValueError, match="balancing must be one of fixed, uncertainty, dwa; got 'gradnorm'"):
        create_balancer("gradnorm", ["landmarks"])


def test_bad_strategy_or_source_values_in_a_recipe_name_the_file(tmp_path):
    cfg = tmp_path / "recipe.json"
    cases = {
        '{"balancing": "gradnorm"}': r"recipe\.json: balancing must be one of fixed, uncertainty, dwa; got 'gradnorm'",
        '{"model_overrides": {"trunk": "moe"}}': r"recipe\.json: model_overrides\.trunk must be one of shared, mmoe",
        '{"train": [{"path": "a.txt", "attribute_fraction": 1.5}]}': r"recipe\.json: train source 'a\.txt': attribute_fraction must be in \[0, 1\], got 1\.5",
        '{"train": [{"path": "a.txt", "weight": -1}]}': r"recipe\.json: train source 'a\.txt': weight must be ≥ 0",
        '{"train": [{"path": "a", "kind": "wider"}]}': r"recipe\.json: train source 'a': kind must be one of mtfl, 300w, photos, celeba",
        '{"train": [{"path": "a", "kind": "celeba"}]}': r"recipe\.json: train source 'a': name CelebA's partition",
        '{"scenes": {"single": 0.8, "close_up": 0.4}}': r"recipe\.json: scenes\.whole \+ scenes\.single \+ scenes\.close_up must be ≤ 1",
        '{"scenes": {"size": 250}}': r"recipe\.json: scenes\.size must be a multiple of 32",
    }
    for text, message in cases.items():
        cfg.write_text(text)
        with pytest.raises(ValueError, match=message):
            TrainConfig.from_json(cfg)


def test_mmoe_gates_sum_to_one_per_task():
    model = create_model("facemtl_s", trunk="mmoe", experts=5).eval()
    out = model(torch.randn(6, 1, 64, 64))
    assert set(out["gates"]) == {"landmarks", "gender", "smile", "glasses", "pose"}
    for g in out["gates"].values():
        assert g.shape == (6, 5)
        torch.testing.assert_close(g.sum(1), torch.ones(6))
    assert out["landmarks"].shape == (6, 5, 2) and out["attributes"]["pose"].shape == (6, 5)
    with pytest.raises(ValueError, match="trunk must be one of shared, mmoe; got 'moe'"):
        create_model("tcdcn", trunk="moe")


@pytest.mark.parametrize(
    "model_kw, balancing",
    [({}, "uncertainty"), ({"trunk": "mmoe"}, "fixed"), ({"trunk": "mmoe"}, "dwa")],
    ids=["shared+uncertainty", "mmoe+fixed", "mmoe+dwa"],
)
def test_missing_label_sends_no_gradient_into_its_head(model_kw, balancing):
    model = create_model("tcdcn", **model_kw)
    torch.manual_seed(0)
    batch = {
        "image": torch.randn(4, 1, 40, 40),
        "landmarks": torch.rand(4, 5, 2) * 2 - 1,
        "landmark_mask": torch.ones(4, dtype=torch.bool),
        "attributes": torch.tensor([[0, 1, -1, 2], [1, 0, -1, 3], [0, 0, -1, 1], [1, 1, -1, 0]]),  # no 'glasses'
    }
    MultiTaskLoss(MTFL_TASKS, balancing=balancing)(model(batch["image"]), batch).total.backward()
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in model.task_parameters("glasses"))
    assert all(p.grad.abs().sum() > 0 for p in model.task_parameters("smile"))
    if model_kw:  # the glasses gate only steers the glasses head, so it learns nothing either
        assert all(p.grad.abs().sum() == 0 for p in model.trunk.gates["glasses"].parameters())
        assert all(p.grad.abs().sum() > 0 for p in model.trunk.gates["smile"].parameters())


def test_withheld_attributes_keep_landmarks_and_the_requested_fraction():
    samples = [FaceSample(Path(f"{i}.jpg"), np.zeros((5, 2)), {"gender": 1, "pose": 2}) for i in range(4000)]
    kept = withhold_attributes(samples, 0.25, seed=0)
    has = np.array([bool(s.attributes) for s in kept])
    assert abs(has.mean() - 0.25) < 0.03
    assert all(s.landmarks is not None for s in kept) and samples[0].attributes  # the originals are untouched
    assert [bool(s.attributes) for s in withhold_attributes(samples, 0.25, seed=0)] == has.tolist()  # seeded


def test_mixture_gives_each_source_its_share():
    sources = np.array([0] * 900 + [1] * 100)
    assert mixture_probabilities(sources, [None, None], None) is None  # proportional = plain shuffling
    p = mixture_probabilities(sources, [0.5, 0.5], None)
    assert p[sources == 0].sum() == pytest.approx(0.5) and p[sources == 1].sum() == pytest.approx(0.5)
    within = np.r_[np.full(900, 2.0), np.ones(100)]
    within[0] = 20.0
    p = mixture_probabilities(sources, [None, None], within)  # pose weights act inside each source only
    assert p[sources == 1].sum() == pytest.approx(0.1)
    assert p[0] == pytest.approx(p[1] * 10)
    with pytest.raises(ValueError, match="positive total"):
        mixture_probabilities(sources, [0, 0], None)


@pytest.mark.slow
def test_mixed_mtfl_and_landmark_only_300w_run(mtfl_train_samples, w300_dir, tmp_path):
    from facemtl.data.mtfl import format_mtfl_line

    mtfl = tmp_path / "mtfl.txt"  # 400 real MTFL faces (absolute paths) + 60 real 300-W faces
    mtfl.write_text("\n".join(format_mtfl_line(s) for s in mtfl_train_samples[:400]) + "\n")
    w300 = tmp_path / "300w"
    w300.mkdir()
    for pts in sorted((w300_dir / "helen").glob("*.pts"))[:60]:
        for f in (pts, pts.with_suffix(".jpg")):
            (w300 / f.name).symlink_to(f)
    train = (
        DatasetSpec(str(mtfl), attribute_fraction=0.5, weight=0.5),
        DatasetSpec(str(w300), kind="300w", weight=0.5),
    )
    cfg = TrainConfig(model="tcdcn", train=train, val_fraction=0.1, epochs=3, batch_size=32, lr=3e-3, threads=1)
    trainer = Trainer(cfg, tmp_path / "run", progress=False)
    result = trainer.fit(log=lambda *_: None)
    sources, attrs = trainer.sources, trainer.train_data.attributes
    assert (attrs[sources == 1] == -1).all()  # 300-W carries landmarks only
    assert 0.4 < (attrs[sources == 0] >= 0).all(1).mean() < 0.6  # half of MTFL keeps its attributes
    drawn = np.concatenate([np.concatenate(trainer._batches(e)[0]) for e in range(5)])
    assert 0.4 < (sources[drawn] == 1).mean() < 0.6  # 60 of ~410 faces, drawn half the time
    h = result.history
    assert h[-1]["train"]["landmarks"] < h[0]["train"]["landmarks"]
