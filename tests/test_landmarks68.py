"""68-point landmarks: the markup, its five derived points, mixed 5/68-point training, 300-W splits."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from facemtl.analysis.analyzer import Face
from facemtl.analysis.drawing import draw_faces
from facemtl.core.tasks import IBUG68, MTFL5, MTFL_TASKS, LandmarkSpec, TaskSet, mtfl5_points
from facemtl.data.augment import hflip
from facemtl.data.dataset import FaceDataset
from facemtl.data.samples import FaceSample
from facemtl.data.w300 import HOLDOUT_PERCENT, read_300w_folder, reduce_68_to_5
from facemtl.models import create_model, get_config
from facemtl.models.weights import init_from, save_model
from facemtl.training.config import DatasetSpec, parse_source
from facemtl.training.losses import MultiTaskLoss, wing_loss

TASKS68 = TaskSet(IBUG68, MTFL_TASKS.attributes)


def _face68(cx: float = 100.0, cy: float = 100.0, s: float = 1.0) -> np.ndarray:
    """A plausible upright 68-point face (jaw below, brows above, eyes level), ``s`` × 40 px IOD."""
    t = np.linspace(-1, 1, 17)
    jaw = np.stack([t * 45, 10 + 35 * np.sqrt(1 - 0.8 * t**2)], 1)
    brows = np.concatenate([np.stack([np.linspace(-35, -8, 5), np.full(5, -30.0)], 1),
                            np.stack([np.linspace(8, 35, 5), np.full(5, -30.0)], 1)])  # fmt: skip
    nose = np.concatenate([np.stack([np.zeros(4), np.linspace(-15, 5, 4)], 1),
                           np.stack([np.linspace(-8, 8, 5), np.full(5, 10.0)], 1)])  # fmt: skip
    ring = np.stack([np.cos(np.linspace(np.pi, -np.pi, 6, endpoint=False)) * 8,
                     np.sin(np.linspace(np.pi, -np.pi, 6, endpoint=False)) * 3], 1)  # fmt: skip
    eyes = np.concatenate([ring + [-20, -18], ring + [20, -18]])
    lips = np.stack([np.cos(np.linspace(np.pi, -np.pi, 12, endpoint=False)) * 15,
                     25 + np.sin(np.linspace(np.pi, -np.pi, 12, endpoint=False)) * 5], 1)  # fmt: skip
    inner = np.stack([np.cos(np.linspace(np.pi, -np.pi, 8, endpoint=False)) * 10,
                      25 + np.sin(np.linspace(np.pi, -np.pi, 8, endpoint=False)) * 2], 1)  # fmt: skip
    pts = np.concatenate([jaw, brows, nose, eyes, lips, inner]) * s + [cx, cy]
    assert pts.shape == (68, 2)
    return pts.astype(np.float32)


def test_five_derived_points_are_the_usual_68_to_5_reduction_in_numpy_and_torch():
    p = _face68()
    five = IBUG68.mtfl5(p)
    np.testing.assert_allclose(five, reduce_68_to_5(p))
    np.testing.assert_allclose(five[0], p[36:42].mean(0), rtol=1e-6)  # eye centre = mean of its contour
    np.testing.assert_allclose(five[2], p[30])  # nose tip
    batch = torch.from_numpy(np.stack([p, p + 1]))
    np.testing.assert_allclose(IBUG68.mtfl5(batch).numpy(), np.stack([five, five + 1]), rtol=1e-6)
    np.testing.assert_array_equal(MTFL5.mtfl5(five), five)  # five points are their own
    np.testing.assert_array_equal(mtfl5_points(p), five)
    with pytest.raises(ValueError, match="no landmark markup with 7 points"):
        mtfl5_points(np.zeros((7, 2)))


def test_markup_survives_the_json_round_trip_and_old_cards_still_read():
    assert LandmarkSpec.from_dict(IBUG68.to_dict()) == IBUG68
    assert TaskSet.from_dict(TASKS68.to_dict()) == TASKS68
    old = {k: v for k, v in MTFL5.to_dict().items() if k not in ("to_mtfl5", "contours")}  # before 68 points
    assert LandmarkSpec.from_dict(old) == MTFL5


def test_flip_of_68_points_mirrors_each_contour_and_twice_is_identity():
    img = np.zeros((200, 200), np.uint8)
    p = _face68()
    attrs = np.array([0, 1, 0, 1])
    fi, fp, _ = hflip(img, p, attrs, TASKS68)
    np.testing.assert_allclose(fp[45], [199 - p[36, 0], p[36, 1]])  # outer eye corners trade places
    np.testing.assert_allclose(fp[0], [199 - p[16, 0], p[16, 1]])  # jaw ends too
    np.testing.assert_allclose(fp[8], [199 - p[8, 0], p[8, 1]])  # the chin stays
    np.testing.assert_allclose(hflip(fi, fp, attrs, TASKS68)[1], p)
    # A face annotated with only five points, training the 68-point model, flips as five points.
    _, f5, _ = hflip(img, IBUG68.mtfl5(p), attrs, TASKS68)
    np.testing.assert_allclose(f5, IBUG68.mtfl5(fp), atol=1e-4)


def _batch68(five: list[bool]) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    n = len(five)
    target = torch.rand(n, 68, 2) * 2 - 1
    for i, f in enumerate(five):
        if f:
            target[i, :5] = IBUG68.mtfl5(target[i])
            target[i, 5:] = 0
    return {
        "image": torch.randn(n, 1, 80, 80),
        "landmarks": target,
        "landmark_mask": torch.ones(n, dtype=torch.bool),
        "landmark_five": torch.tensor(five),
        "attributes": torch.full((n, 4), -1, dtype=torch.long),
    }


def test_a_five_point_face_is_scored_on_the_models_five_derived_points():
    model = create_model("facemtl_s", tasks=TASKS68, input_size=80).eval()
    loss = MultiTaskLoss(TASKS68, "wing")
    batch = _batch68([True, False])
    out = model(batch["image"])
    got = torch.stack([loss.task_losses({"landmarks": out["landmarks"][i : i + 1], "attributes": {
        k: v[i : i + 1] for k, v in out["attributes"].items()}}, {k: v[i : i + 1] for k, v in batch.items()})[
        "landmarks"] for i in range(2)])  # fmt: skip
    five_ref = wing_loss(IBUG68.mtfl5(out["landmarks"][:1]), batch["landmarks"][:1, :5])[0]
    full_ref = wing_loss(out["landmarks"][1:], batch["landmarks"][1:])[0]
    torch.testing.assert_close(got, torch.stack([five_ref, full_ref]))


def test_a_five_point_face_moves_only_the_points_its_five_are_made_of():
    pred = torch.zeros(1, 68, 2, requires_grad=True)
    batch = _batch68([True])
    out = {"landmarks": pred, "attributes": {t.name: torch.zeros(1, t.num_classes) for t in MTFL_TASKS.attributes}}
    MultiTaskLoss(TASKS68, "wing").task_losses(out, batch)["landmarks"].backward()
    moved = set(np.flatnonzero(pred.grad[0].abs().sum(1).numpy()).tolist())
    assert moved == set(range(36, 48)) | {30, 48, 54}


def test_dataset_mixes_5_and_68_point_faces_framed_alike(tmp_path):
    rng = np.random.default_rng(0)
    image = tmp_path / "face.png"
    cv2.imwrite(str(image), rng.integers(0, 255, (220, 220, 3), np.uint8))
    p = _face68(110, 100)
    samples = [FaceSample(image, p, {}, "a"), FaceSample(image, IBUG68.mtfl5(p), {"gender": 1}, "b")]
    data = FaceDataset(samples, TASKS68, input_size=80, crop_scale=3.0, channels=1, mean=0.5, std=0.5)
    full, five = data[0], data[1]
    assert not full["landmark_five"] and five["landmark_five"]
    assert torch.equal(full["image"], five["image"])  # the crop rule read the same five points
    torch.testing.assert_close(five["landmarks"][:5], IBUG68.mtfl5(full["landmarks"]), atol=1e-5, rtol=0)
    assert five["landmarks"][5:].abs().sum() == 0
    assert full["landmarks"].abs().max() < 1  # a 3× crop of the five points holds the jaw and brows
    with pytest.raises(ValueError, match="c: 7 landmarks; a 68-point model takes faces of 68 or 5 points"):
        FaceDataset([FaceSample(image, np.zeros((7, 2)), {}, "c")], TASKS68, input_size=80, crop_scale=3.0,
                    channels=1, mean=0.5, std=0.5)  # fmt: skip


def test_300w_holdout_is_a_fixed_disjoint_fifth(w300_dir):
    train = read_300w_folder(w300_dir, split="train")
    hold = read_300w_folder(w300_dir, split="holdout")
    names = {str(s.image) for s in train}
    assert not names & {str(s.image) for s in hold}
    assert len(train) + len(hold) == len(read_300w_folder(w300_dir)) == 1672
    assert abs(len(hold) / 1672 - HOLDOUT_PERCENT / 100) < 0.03
    assert [str(s.image) for s in read_300w_folder(w300_dir, split="holdout")] == [str(s.image) for s in hold]
    assert {s.image.parent.name for s in hold} == {"lfpw", "helen"}


def test_source_text_and_config_name_the_300w_part():
    assert parse_source("300w:../x@holdout") == DatasetSpec("../x", "300w", split="holdout")
    assert parse_source("300w:../x") == DatasetSpec("../x", "300w")
    with pytest.raises(ValueError, match="split applies to 300w, celeba, fairface and photos sources"):
        DatasetSpec("a.txt", "mtfl", split="holdout")


def test_init_copies_every_tensor_that_fits(tmp_path):
    five = create_model("facemtl_s")
    w = tmp_path / "five.safetensors"
    save_model(five, w)
    torch.manual_seed(1)
    many = create_model("facemtl_s", tasks=TASKS68)
    report = init_from(many, w)
    assert (report.copied, report.total) == (
        len(five.state_dict()) - 2,
        len(many.state_dict()),
    )  # all but the landmark head
    assert {s.split(" ")[0] for s in report.skipped} == {"heads.landmarks.weight", "heads.landmarks.bias"}
    assert not report.geometry  # same input: only the head differs
    assert torch.equal(many.trunk.convs[0].weight, five.trunk.convs[0].weight)
    assert torch.equal(many.heads["smile"].weight, five.heads["smile"].weight)
    det = tmp_path / "det.safetensors"
    save_model(create_model("facemtl_det"), det)
    with pytest.raises(ValueError, match="no tensor fits this model"):
        init_from(many, det)


def test_evaluate_reads_a_300w_folder_in_the_models_markup(w300_dir, tmp_path):
    torch.manual_seed(0)
    w = tmp_path / "w68.safetensors"
    save_model(create_model("facemtl_s", tasks=TASKS68, input_size=80, crop_scale=3.0), w)
    out = tmp_path / "m.json"
    r = subprocess.run(
        [sys.executable, "-m", "facemtl", "evaluate", "--model", str(w), "--annotations",
         f"300w:{w300_dir}@holdout", "--json", str(out)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    m = json.loads(out.read_text())
    assert m["n"] == len(read_300w_folder(w300_dir, split="holdout"))
    assert list(m["per_landmark"]) == list(IBUG68.names) and m["attributes"] == {}
    assert "error: jaw (17 points)" in r.stdout


def test_68_point_faces_are_drawn_as_contours():
    img = np.zeros((200, 200, 3), np.uint8)
    p = _face68()
    face = Face((50, 50, 150, 150), 0.9, p, IBUG68.names)
    drawn = draw_faces(img, [face], attributes=False)
    mid = np.round((p[3] + p[4]) / 2).astype(int)  # between two jaw points: only a contour line passes
    assert drawn[mid[1], mid[0]].any()
    inner = np.round((p[60] + p[64]) / 2).astype(int)  # inside the inner lip: nothing drawn
    assert not drawn[inner[1], inner[0]].any()


def test_68_point_model_config_keeps_its_markup_through_save_and_load(tmp_path):
    from facemtl.models.weights import load_model

    w = tmp_path / "w68.safetensors"
    cfg = get_config("facemtl_s").with_overrides(tasks=TASKS68, input_size=80, crop_scale=3.0)
    save_model(create_model(cfg), w)
    back = load_model(w)
    assert back.config.tasks.landmarks == IBUG68 and back.config.crop_scale == 3.0
    assert back(torch.zeros(2, 1, 80, 80))["landmarks"].shape == (2, 68, 2)


@pytest.mark.slow
def test_tiny_68_point_run_on_300w_and_mtfl_faces_learns(w300_dir, mtfl_dir, tmp_path):
    from facemtl.training.config import TrainConfig
    from facemtl.training.engine import Trainer

    few = tmp_path / "300w"  # 150 faces of the train part, linked, so the run mixes both kinds
    few.mkdir()
    for s in read_300w_folder(w300_dir, split="train")[:150]:
        for f in (s.image, s.image.with_suffix(".pts")):
            (few / f"{s.image.parent.name}_{f.name}").symlink_to(f)
    cfg = TrainConfig(
        model="tcdcn", landmarks=68, model_overrides={"crop_scale": 3.0},
        train=(DatasetSpec(str(few), "300w"), DatasetSpec(str(mtfl_dir / "training.txt"))),
        limit=350, val_fraction=0.25, epochs=8, batch_size=32, lr=3e-3, threads=1,
    )  # fmt: skip
    result = Trainer(cfg, tmp_path / "run", progress=False).fit(log=lambda *_: None)
    nme = [r["val"]["nme"] for r in result.history]
    assert nme[-1] < 0.75 * nme[0], nme
    assert "five_point" in result.history[-1]["val"]  # the MTFL faces are scored on the 5 derived points
    assert result.history[-1]["val"]["attributes"]  # and still train the attribute heads


def test_attribute_labels_stay_inside_the_image_where_the_face_reaches_its_edges():
    # a portrait crop: the face box reaches the bottom and right edges, where the lines used to fall off
    from facemtl.analysis.analyzer import attribute_predictions

    img = np.zeros((120, 120, 3), np.uint8)
    probs = {"gender": np.array([0.1, 0.9]), "smile": np.array([0.8, 0.2]), "glasses": np.array([0.9, 0.1]),
             "pose": np.array([0.1, 0.1, 0.6, 0.1, 0.1])}  # fmt: skip
    face = Face((10, 10, 119, 119), 0.9, np.array([[40.0, 50], [80, 50], [60, 70], [45, 90], [75, 90]]), MTFL5.names,
                attribute_predictions(MTFL_TASKS, probs))  # fmt: skip
    drawn = draw_faces(img, [face])
    white = drawn.min(-1) > 150  # the labels' text (box and points are green and coloured)
    assert white.sum() > 200  # four lines of text are in the picture


def test_labels_of_faces_side_by_side_cover_neither_each_other_nor_a_face():
    from facemtl.analysis.drawing import label_positions

    def _overlap(a, b):
        return max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))

    boxes = [(100, 100, 160, 160), (170, 100, 230, 160), (240, 100, 300, 160)]  # a row of faces, as in a group
    size = (150, 80)  # each label wider than a face: below the faces they would cover each other
    spots = label_positions([size] * 3, boxes, (400, 640))
    rects = [(x, y, x + size[0], y + size[1]) for x, y in spots]
    assert spots[0] == (100, 163)  # the first where it always went: under its box
    assert all(_overlap(a, b) == 0 for i, a in enumerate(rects) for b in rects[i + 1 :])
    assert all(_overlap(r, b) == 0 for r in rects for b in boxes)
    assert all(0 <= x <= 640 - size[0] and 0 <= y <= 400 - size[1] for x, y in spots)
    assert label_positions([size], [(100, 100, 160, 160)], (400, 640)) == [(100, 163)]  # one face: unchanged
