"""The shipped weights load without unpickling and still locate real MTFL test faces.

A broken weights file, a changed crop rule or changed normalisation fails here.
"""

from __future__ import annotations

import numpy as np
import pytest

from facemtl.data.dataset import FaceDataset
from facemtl.evaluation import evaluate
from facemtl.pretrained import get_pretrained
from facemtl.weights import load_model

SHIPPED = get_pretrained("facemtl_mtfl")


def test_shipped_weights_are_small_and_carry_their_card():
    assert SHIPPED.path.stat().st_size < 5_000_000
    card = SHIPPED.card()
    assert card["config"]["tasks"]["landmarks"]["names"] == [
        "left_eye",
        "right_eye",
        "nose",
        "mouth_left",
        "mouth_right",
    ]
    assert {a["name"] for a in card["config"]["tasks"]["attributes"]} == {"gender", "smile", "glasses", "pose"}
    assert "MTFL" in card["provenance"]["data"]


@pytest.mark.parametrize("flip_test", [False, True])
def test_shipped_weights_locate_real_test_faces(mtfl_test_samples, flip_test):
    model = load_model()
    data = FaceDataset.for_model(mtfl_test_samples[:200], model.config)
    report = evaluate(model, data, flip_test=flip_test)
    # The full test set scores the README's figures; these 200 faces must stay close to them.
    assert report.landmarks.nme < 8.5, report.table()
    assert np.median(report.landmarks.per_face) < 0.07
    assert report.attributes["glasses"]["accuracy"] > 90
    assert report.attributes["pose"]["accuracy"] > 70
