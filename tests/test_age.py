"""The age task: FairFace's bins as an ordered task — its loss spreads a label over neighbouring
bins, a prediction reports the expected age beside the most probable bin."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facemtl.analysis.analyzer import Face, attribute_predictions
from facemtl.core.tasks import AGE, MTFL_TASKS, AttributeTask, ordinal_targets
from facemtl.training.losses import MultiTaskLoss


def test_ordinal_targets_spread_each_bin_over_its_neighbours():
    t = ordinal_targets(9)
    np.testing.assert_allclose(t.sum(1), 1.0)
    assert all(t[y].argmax() == y for y in range(9))
    assert t[4, 3] == pytest.approx(t[4, 5]) and t[4, 3] > t[4, 2] > t[4, 1]
    assert t[0, 1] > t[0, 2]  # the youngest bin's mass goes to its one neighbour side


def test_a_guess_one_bin_off_costs_less_than_one_five_bins_off():
    tasks = MTFL_TASKS.subset(["gender", "age"])
    loss = MultiTaskLoss(tasks)

    def cost(guess: int) -> float:
        logits = torch.full((1, 9), -4.0)
        logits[0, guess] = 4.0
        out = {"landmarks": torch.zeros(1, 5, 2), "attributes": {"gender": torch.zeros(1, 2), "age": logits}}
        batch = {
            "landmarks": torch.zeros(1, 5, 2),
            "landmark_mask": torch.zeros(1, dtype=torch.bool),
            "attributes": torch.tensor([[-1, 4]]),
        }
        return float(loss.task_losses(out, batch)["age"])

    assert cost(4) < cost(3) < cost(0)
    assert cost(3) == pytest.approx(cost(5), rel=1e-5)


def test_recipes_add_the_age_task_to_a_models_set():
    tasks = MTFL_TASKS.subset(["gender", "smile", "glasses", "pose", "age"])
    assert tasks.attribute_names == ("gender", "smile", "glasses", "pose", "age") and tasks.attribute("age") == AGE
    with pytest.raises(KeyError):
        MTFL_TASKS.subset(["shoe_size"])
    with pytest.raises(ValueError, match="values: one per class"):
        AttributeTask("x", ("a", "b"), values=(1.0,))


def test_a_recipes_task_weights_keep_the_age_bins_midpoints():
    # a recipe's task set is subset(...).with_weights(...): the weights must not drop what else a task carries
    tasks = MTFL_TASKS.subset(["gender", "age"]).with_weights({"age": 0.5, "gender": 0.3})
    assert tasks.attribute("age").values == AGE.values and tasks.attribute("age").weight == 0.5


def test_an_age_prediction_reports_its_bin_and_expected_age_in_the_json():
    tasks = MTFL_TASKS.subset(["gender", "age"])
    p_age = np.zeros(9)
    p_age[3], p_age[4] = 0.6, 0.4  # 20-29 more likely than 30-39
    preds = attribute_predictions(tasks, {"gender": np.array([0.2, 0.8]), "age": p_age})
    assert preds["age"].label == "20-29" and preds["age"].expected == pytest.approx(0.6 * 25 + 0.4 * 35)
    assert preds["gender"].expected is None
    face = Face((0, 0, 10, 10), 0.9, np.zeros((5, 2)), tasks.landmarks.names, preds)
    record = face.to_dict()["attributes"]
    assert record["age"] == {"label": "20-29", "prob": 0.6, "expected": 29.0}
    assert record["gender"] == {"label": "female", "prob": 0.8}  # fields only added


def test_a_model_with_an_age_head_is_scored_on_mtfl_without_it(mtfl_train_samples):
    """MTFL has no age labels: its attribute report covers the tasks it labels and says nothing of age
    (the attributes benchmark failed on such a model)."""
    from facemtl.evaluation.attributes import mtfl_test
    from facemtl.models.multitask import MultiTaskNet
    from facemtl.models.registry import get_config

    cfg = get_config("facemtl_s").with_overrides(tasks=MTFL_TASKS.subset(["gender", "smile", "glasses", "pose", "age"]))
    torch.manual_seed(0)
    out = mtfl_test(MultiTaskNet(cfg).eval(), mtfl_train_samples[:16])
    assert set(out["attributes"]) == {"gender", "smile", "glasses", "pose"}
    assert np.isfinite(out["nme"])


def test_the_shipped_age_model_reports_an_expected_age_on_a_photo(data_root):
    from facemtl import FaceAnalyzer
    from facemtl.data.fairface import in_validation, read_fairface_labels

    analyzer = FaceAnalyzer.from_pretrained("facemtl_m_age")
    assert analyzer.model.config.channels == 3
    assert analyzer.model.config.tasks.attribute("age").values == AGE.values  # what the expected age needs
    root = data_root / "FairFace"
    label = next(lab for lab in read_fairface_labels(root) if in_validation(lab.name))  # never trained on
    faces = analyzer.analyze(root / label.name)
    assert faces, label.name
    age = faces[0].attributes["age"]
    assert age.label in AGE.labels and 0 < age.expected < 80
    assert faces[0].to_dict()["attributes"]["age"]["expected"] == pytest.approx(age.expected, abs=0.01)
