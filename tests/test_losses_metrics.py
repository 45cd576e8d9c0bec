"""Loss masking and metric values on hand-made cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facemtl.core.tasks import MTFL5, MTFL_TASKS
from facemtl.evaluation.metrics import attribute_accuracy, auc, landmark_report
from facemtl.models import create_model
from facemtl.training.losses import MultiTaskLoss, wing_loss


def _batch(n=4, attrs=None):
    torch.manual_seed(0)
    return {
        "image": torch.randn(n, 1, 40, 40),
        "landmarks": torch.rand(n, 5, 2) * 2 - 1,
        "landmark_mask": torch.ones(n, dtype=torch.bool),
        "attributes": attrs if attrs is not None else torch.zeros(n, 4, dtype=torch.long),
    }


def test_masked_head_gets_no_gradient_but_shared_layers_do():
    model = create_model("tcdcn")
    attrs = torch.tensor([[0, 1, -1, 2], [1, 0, -1, 3], [0, 0, -1, 1], [1, 1, -1, 0]])  # nobody has 'glasses'
    batch = _batch(attrs=attrs)
    out = MultiTaskLoss(MTFL_TASKS)(model(batch["image"]), batch)
    out.total.backward()
    assert all(p.grad is not None and p.grad.abs().sum() == 0 for p in model.task_parameters("glasses"))
    assert all(p.grad.abs().sum() > 0 for p in model.task_parameters("gender"))
    assert all(p.grad.abs().sum() > 0 for p in model.shared_parameters())
    assert float(out.per_task["glasses"]) == 0.0


def test_sample_without_landmarks_still_trains_shared_layers_through_attributes():
    model = create_model("tcdcn")
    batch = _batch()
    batch["landmark_mask"][:] = False
    out = MultiTaskLoss(MTFL_TASKS)(model(batch["image"]), batch)
    out.total.backward()
    assert all(p.grad.abs().sum() == 0 for p in model.task_parameters("landmarks"))
    assert all(p.grad.abs().sum() > 0 for p in model.shared_parameters())


def test_masked_sample_does_not_change_a_task_loss():
    model = create_model("tcdcn").eval()
    batch = _batch(n=2, attrs=torch.tensor([[0, 0, 0, 0], [1, 1, 1, 1]]))
    loss = MultiTaskLoss(MTFL_TASKS)
    outputs = model(batch["image"])
    full = loss.task_losses(outputs, batch)
    batch["attributes"] = torch.tensor([[0, 0, 0, 0], [-1, -1, -1, -1]])
    one = loss.task_losses(outputs, batch)
    single = {k: v[:1] for k, v in outputs["attributes"].items()}
    ref = torch.nn.functional.cross_entropy(single["gender"], torch.tensor([0]))
    assert torch.isclose(one["gender"], ref)
    assert not torch.isclose(full["gender"], ref)


def test_lambda_zero_removes_task_from_total():
    model = create_model("tcdcn")
    batch = _batch()
    outputs = model(batch["image"])
    loss = MultiTaskLoss(MTFL_TASKS.with_weights({"gender": 0, "smile": 0, "glasses": 0, "pose": 0}))
    out = loss(outputs, batch)
    assert torch.isclose(out.total, out.per_task["landmarks"])


def test_wing_loss_is_log_near_zero_and_linear_far():
    z = torch.zeros(1, 1, 2)
    small = wing_loss(torch.full((1, 1, 2), 1 / 32), z)  # 1 px
    assert torch.isclose(small, torch.tensor(10 * np.log(1.5), dtype=torch.float32))
    big1, big2 = wing_loss(torch.full((1, 1, 2), 20 / 32), z), wing_loss(torch.full((1, 1, 2), 21 / 32), z)
    assert torch.isclose(big2 - big1, torch.tensor(1.0), atol=1e-4)


def test_nme_failure_and_per_landmark_on_hand_made_faces():
    gt = np.zeros((2, 5, 2))
    gt[:, 1, 0] = 100.0  # eyes 100 px apart
    pred = gt.copy()
    pred[0, 2] += [5.0, 0.0]  # face 0: one point off by 5 px → mean 1 % of IOD
    pred[1] += [0.0, 20.0]  # face 1: all off by 20 px → 20 %
    r = landmark_report(pred, gt, MTFL5)
    assert r.nme == pytest.approx((1 + 20) / 2)
    assert r.failure_rate == pytest.approx(50.0)
    assert r.per_landmark["nose"] == pytest.approx((5 + 20) / 2)
    assert r.per_landmark["left_eye"] == pytest.approx(10.0)


def test_auc_of_perfect_and_useless_predictions():
    assert auc(np.zeros(10)) == pytest.approx(1.0)
    assert auc(np.full(10, 0.2)) == 0.0
    assert auc(np.full(10, 0.05)) == pytest.approx(0.5, abs=1e-3)


def test_attribute_accuracy_skips_missing_labels():
    acc, majority, n = attribute_accuracy(np.array([0, 1, 1, 0]), np.array([0, 1, -1, 1]))
    assert (acc, n) == (pytest.approx(200 / 3), 3)
    assert majority == pytest.approx(200 / 3)


def test_iod_normalised_loss_weighs_a_narrow_face_more():
    """The same pixel error costs more on a face whose eyes are close together (a profile)."""
    loss = MultiTaskLoss(MTFL_TASKS.subset([]), "l1", landmark_norm="iod")
    wide = torch.tensor([[[-0.4, 0.0], [0.4, 0.0], [0, 0.2], [-0.3, 0.5], [0.3, 0.5]]])
    narrow = wide.clone()
    narrow[..., 0] *= 0.25
    err = torch.full_like(wide, 0.05)
    per = []
    for target in (wide, narrow):
        batch = {
            "landmarks": target,
            "landmark_mask": torch.ones(1, dtype=torch.bool),
            "attributes": torch.zeros(1, 0, dtype=torch.long),
        }
        per.append(float(loss.task_losses({"landmarks": target + err, "attributes": {}}, batch)["landmarks"]))
    assert per[1] == pytest.approx(4 * per[0])
