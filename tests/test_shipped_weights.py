"""The shipped weights load without unpickling and still locate real MTFL test faces.

A broken weights file, a changed crop rule or changed normalisation fails here.
"""

from __future__ import annotations

import numpy as np
import pytest

from facemtl.data.dataset import FaceDataset
from facemtl.evaluation.evaluator import evaluate
from facemtl.models.pretrained import get_pretrained
from facemtl.models.weights import load_model

#: The shipped 5-point models: MTFL only (the default), and MTFL + CelebA (better attributes).
FIVE_POINT = ("facemtl_mtfl", "facemtl_mtfl_celeba")


@pytest.mark.parametrize("name", FIVE_POINT)
def test_shipped_weights_are_small_and_carry_their_card(name):
    shipped = get_pretrained(name)
    assert shipped.path.stat().st_size < 5_000_000
    card = shipped.card()
    assert card["config"]["tasks"]["landmarks"]["names"] == [
        "left_eye",
        "right_eye",
        "nose",
        "mouth_left",
        "mouth_right",
    ]
    assert {a["name"] for a in card["config"]["tasks"]["attributes"]} == {"gender", "smile", "glasses", "pose"}
    assert "MTFL" in card["provenance"]["data"]


@pytest.mark.parametrize("name", FIVE_POINT)
@pytest.mark.parametrize("flip_test", [False, True])
def test_shipped_weights_locate_real_test_faces(mtfl_test_samples, name, flip_test):
    model = load_model(name)
    data = FaceDataset.for_model(mtfl_test_samples[:200], model.config)
    report = evaluate(model, data, flip_test=flip_test)
    # The full test set scores the README's figures; these 200 faces must stay close to them.
    assert report.landmarks.nme < 8.5, report.table()
    assert np.median(report.landmarks.per_face) < 0.07
    assert report.attributes["glasses"]["accuracy"] > 90
    assert report.attributes["pose"]["accuracy"] > 70


@pytest.mark.parametrize("name", FIVE_POINT)
def test_shift_test_locates_real_faces_better_than_one_pass(mtfl_test_samples, name):
    """Why predict runs it by default: the network's answer moves with the crop's framing, and
    the mean over shifted copies is closer (0.15 point on these 200 faces; docs/notebook.md)."""
    model = load_model(name)
    data = FaceDataset.for_model(mtfl_test_samples[:200], model.config)
    one, shifted = evaluate(model, data), evaluate(model, data, shift_test=0.05)
    assert shifted.landmarks.nme < one.landmarks.nme - 0.05
    assert shifted.landmarks.n == one.landmarks.n == 200


def test_shipped_68_point_model_locates_held_out_300w_faces(w300_dir):
    from facemtl.data.w300 import read_300w_folder

    model = load_model("facemtl_300w68")
    faces = read_300w_folder(w300_dir, split="holdout")[:60]
    report = evaluate(model, FaceDataset.for_model(faces, model.config))
    # The whole held-out part scores the model card's 5.00 %; these 60 faces must stay close.
    assert report.landmarks.nme < 7.0, report.table()
    assert len(report.landmarks.per_landmark) == 68


def test_analyzer_with_the_68_point_model_returns_68_points_on_a_photo(w300_dir):
    from facemtl.analysis.analyzer import FaceAnalyzer
    from facemtl.core.tasks import IBUG68
    from facemtl.data.w300 import read_300w_folder
    from facemtl.evaluation.metrics import point_errors

    face = read_300w_folder(w300_dir, split="holdout")[0]
    found = FaceAnalyzer.from_pretrained("facemtl_300w68").analyze(face.image)
    assert found and found[0].landmarks.shape == (68, 2) and found[0].landmark_names == IBUG68.names
    assert point_errors(found[0].landmarks[None], face.landmarks[None], IBUG68).mean() < 0.1


def test_the_mirror_view_rescues_turned_heads_end_to_end(mtfl_test_samples):
    """Profiles are where facemtl's first crops go wrong most; looking again in the mirror image
    (``mirror="auto"``, the default) changes the faces whose passes disagree, and on the real MTFL
    test profiles, padded as in references/benchmarks/end_to_end.py, it must make more of them better than worse
    and keep the mean error within 0.1 point. Measured with the shipped weights: at the fourth detector release's first
    defaults 26 better, 18 worse of 303, mean 9.56 → 8.66 %; since photos of 282–351 px are seen at 352
    (2026-12-08: these padded photos mostly are) the first view alone is much better and the mirror
    view's gain is gone: 30 better, 23 worse, 8.53 → 8.59 % (docs/notebook.md)."""
    import cv2

    from facemtl.analysis.analyzer import FaceAnalyzer
    from facemtl.core.images import read_image
    from facemtl.core.tasks import MTFL5
    from facemtl.detection import Detection, annotated_detection
    from facemtl.evaluation.metrics import point_errors

    profiles = [s for s in mtfl_test_samples if s.attributes.get("pose") in (0, 4)]
    analyzers = {mode: FaceAnalyzer.from_pretrained(mirror=mode) for mode in ("never", "auto")}
    errors: dict[str, list[float]] = {mode: [] for mode in analyzers}
    for s in profiles:
        image = read_image(s.image)
        pad = max(image.shape[:2]) // 2
        image = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        truth = s.landmarks + pad
        for mode, analyzer in analyzers.items():
            faces = analyzer.analyze(image)
            i = annotated_detection([Detection(f.box, f.score) for f in faces], truth)
            if i is not None:
                errors[mode].append(float(point_errors(faces[i].landmarks[None], truth[None], MTFL5).mean()))
    assert len(errors["never"]) == len(errors["auto"]) >= 300  # the same faces found: the photo's own detections
    never, auto = np.array(errors["never"]), np.array(errors["auto"])
    better, worse = int((auto < never - 1e-9).sum()), int((auto > never + 1e-9).sum())
    assert better > worse and better >= 15, (better, worse)
    assert auto.mean() < never.mean() + 0.001, (never.mean(), auto.mean())
