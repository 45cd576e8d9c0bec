"""Attribute-only faces (CelebA), their lists, and calibrated probabilities."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from facemtl.core.tasks import MTFL_TASKS
from facemtl.data.celeba import celeba_attributes, celeba_identities, celeba_partition, read_celeba
from facemtl.data.dataset import FaceDataset
from facemtl.data.samples import AnnotationError, FaceSample
from facemtl.evaluation.calibration import fit_temperature, reliability
from facemtl.models import create_model, get_config
from facemtl.training.config import DatasetSpec, parse_source


def _celeba(tmp_path, attr_line: str | None = None):
    root = tmp_path / "CelebA"
    (root / "img_align_celeba").mkdir(parents=True)
    header = "5_o_Clock_Shadow Eyeglasses Male Smiling"
    lines = ["2", header, "000001.jpg -1 1 -1 1", attr_line or "000002.jpg 1 -1 1 -1"]
    (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    (root / "list_eval_partition.txt").write_text("000001.jpg 0\n000002.jpg 1\n")
    (root / "identity_CelebA.txt").write_text("000001.jpg 7\n000002.jpg 9\n")
    for n in ("000001.jpg", "000002.jpg"):
        cv2.imwrite(str(root / "img_align_celeba" / n), np.full((218, 178, 3), 128, np.uint8))
    return root


def test_celeba_lists_map_male_smiling_eyeglasses_to_the_tasks(tmp_path):
    root = _celeba(tmp_path)
    labels = celeba_attributes(root)
    # gender: 0 male / 1 female; smile: 0 smiling; glasses: 0 glasses (facemtl's class order)
    assert labels["000001.jpg"] == {"gender": 1, "smile": 0, "glasses": 0}
    assert labels["000002.jpg"] == {"gender": 0, "smile": 1, "glasses": 1}
    assert celeba_partition(root, "train") == ["000001.jpg"] and celeba_partition(root, "val") == ["000002.jpg"]
    assert celeba_identities(root) == {"000001.jpg": 7, "000002.jpg": 9}


@pytest.mark.parametrize(
    ("line", "message"),
    [("000002.jpg 1 -1 1", r"list_attr_celeba\.txt:4: expected a name and 4 values, got 4 fields"),
     ("000002.jpg 1 0 1 -1", r"list_attr_celeba\.txt:4: Eyeglasses must be 1 or -1, got '0'")],
)  # fmt: skip
def test_bad_celeba_line_names_file_and_line(tmp_path, line, message):
    with pytest.raises(AnnotationError, match=message):
        celeba_attributes(_celeba(tmp_path, line))


def test_celeba_faces_are_framed_by_located_points_and_never_train_landmarks(tmp_path):
    root = _celeba(tmp_path)
    five = np.array([[70, 110], [108, 110], [89, 132], [74, 152], [104, 152]], np.float64)
    faces = read_celeba(root, "train", lambda images: [five for _ in images])
    assert len(faces) == 1 and faces[0].landmarks is None and faces[0].attributes["gender"] == 1
    assert read_celeba(root, "val", lambda images: [None for _ in images]) == []  # no face found: left out
    data = FaceDataset.for_model(faces, get_config("facemtl_s"))
    assert not data[0]["landmark_mask"]
    assert data[0]["attributes"].tolist() == [1, 0, 0, -1]  # no pose label in CelebA
    with pytest.raises(ValueError, match="a crop needs landmarks or located crop points"):
        _ = FaceSample(root / "x.jpg", None, {}, "x").points


def test_celeba_source_must_name_its_partition():
    assert parse_source("celeba:../CelebA@train") == DatasetSpec("../CelebA", "celeba", split="train")
    with pytest.raises(ValueError, match="name CelebA's partition"):
        parse_source("celeba:../CelebA")


def test_reliability_of_calibrated_and_overconfident_predictions():
    rng = np.random.default_rng(0)
    p = rng.uniform(0.5, 1.0, 20000)
    honest = (rng.random(20000) < p).astype(int)  # right exactly as often as claimed
    probs = np.stack([p, 1 - p], 1)
    labels = np.where(honest == 1, 0, 1)
    assert reliability(probs, labels).ece < 1.0
    sure = np.stack([np.full(20000, 0.99), np.full(20000, 0.01)], 1)
    assert reliability(sure, labels).ece == pytest.approx(99 - (labels == 0).mean() * 100, abs=0.5)
    masked = labels.copy()
    masked[:10000] = -1
    assert reliability(probs, masked).count.sum() == 10000


def test_fitted_temperature_undoes_sharpened_logits():
    rng = np.random.default_rng(1)
    z = rng.normal(0, 2, (20000, 3))
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    labels = np.array([rng.choice(3, p=row) for row in p])
    assert fit_temperature(z * 2.5, labels) == pytest.approx(2.5, rel=0.05)


def test_temperature_in_the_config_scales_logits_without_changing_the_answer():
    torch.manual_seed(0)
    plain = create_model("facemtl_s").eval()
    warm = create_model(plain.config.with_overrides(temperatures={"smile": 2.0})).eval()
    warm.load_state_dict(plain.state_dict())
    x = torch.randn(4, 1, 64, 64)
    a, b = plain(x)["attributes"], warm(x)["attributes"]
    torch.testing.assert_close(b["smile"], a["smile"] / 2.0)
    torch.testing.assert_close(b["gender"], a["gender"])
    assert MTFL_TASKS.attribute_names == tuple(a)


def test_located_points_come_from_the_shipped_detector_once_then_from_the_cache(data_root, tmp_path, monkeypatch):
    import facemtl.training.jobs.landmarks as job

    monkeypatch.setenv("FACEMTL_CACHE", str(tmp_path))
    photos = sorted((data_root / "CelebA" / "img_align_celeba").glob("*.jpg"))[:3]
    first = job.locate_faces(photos)
    assert all(p is not None and p.shape == (5, 2) for p in first)
    assert all((0 <= p[:, 0]).all() and (p[:, 0] < 178).all() and (p[:, 1] < 218).all() for p in first)
    assert first[0][0, 0] < first[0][1, 0]  # image-left eye first, as in MTFL

    def no_detector(*_a, **_k):
        raise AssertionError("the cache should have answered")

    monkeypatch.setattr(job, "create_detector", no_detector)
    again = job.locate_faces(photos)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))


def test_pseudo_landmarks_come_from_the_shipped_model_once_then_from_the_cache(data_root, tmp_path, monkeypatch):
    import facemtl.analysis.analyzer
    import facemtl.training.jobs.landmarks as job

    monkeypatch.setenv("FACEMTL_CACHE", str(tmp_path))
    photos = sorted((data_root / "CelebA" / "img_align_celeba").glob("*.jpg"))[:3]
    points, landmarks = job.locate_faces(photos), job.locate_landmarks(photos, "facemtl_mtfl")
    for p, lm in zip(points, landmarks, strict=True):
        assert lm.shape == (5, 2) and lm[0, 0] < lm[1, 0]  # image-left eye first
        iod = np.linalg.norm(lm[0] - lm[1])
        assert np.linalg.norm(lm - p, axis=1).mean() < 0.3 * iod  # the same face as the detector's points

    def no_model(*_a, **_k):
        raise AssertionError("the cache should have answered")

    monkeypatch.setattr(facemtl.analysis.analyzer.FaceAnalyzer, "from_pretrained", no_model)
    again = job.locate_landmarks(photos, "facemtl_mtfl")
    assert all(np.array_equal(a, b) for a, b in zip(landmarks, again, strict=True))


def test_a_damaged_located_points_cache_is_named(tmp_path, monkeypatch):
    from facemtl.models.pretrained import get_pretrained
    from facemtl.training.jobs.landmarks import locate_faces

    monkeypatch.setenv("FACEMTL_CACHE", str(tmp_path))
    cache = tmp_path / f"located-{get_pretrained('facemtl_det').sha256[:16]}.json"
    cache.write_text('{"a.jpg": [[1, 2]')
    with pytest.raises(ValueError, match=r"located-.*\.json:1: not a located-points cache .*delete it to rebuild"):
        locate_faces([tmp_path / "a.jpg"])


def test_colour_model_fine_tuned_from_gray_weights_sees_what_the_gray_model_saw(tmp_path):
    from facemtl.core.images import to_channels
    from facemtl.data.augment import to_tensor
    from facemtl.models.weights import init_from, save_model

    torch.manual_seed(0)
    gray = create_model("facemtl_s").eval()
    w = tmp_path / "gray.safetensors"
    save_model(gray, w)
    colour = create_model("facemtl_m").eval()
    assert get_config("facemtl_m").channels == 3
    report = init_from(colour, w)
    assert report.copied == report.total - 1  # all but the shared FC layer's weight (a 6×6 map at 96 px, not 4×4)
    assert len(report.skipped) == 1 and "shape" in report.skipped[0]
    assert any(g.startswith("input_size 64") for g in report.geometry)  # said loudly in the run log
    assert "WARNING" in report.describe("gray")
    crop = np.random.default_rng(0).integers(0, 256, (96, 96, 3), dtype=np.uint8)
    with torch.no_grad():
        seen_gray = gray.trunk.convs[:3](to_tensor(to_channels(crop, 1)[None], 0.5, 0.5))
        seen_colour = colour.trunk.convs[:3](to_tensor(crop[None], 0.5, 0.5))
    # equal but for OpenCV rounding the gray crop to whole levels (≤ 0.5 / 255 per pixel)
    bound = gray.trunk.convs[0].weight.abs().sum((1, 2, 3)).max() * (0.5 / 255) / 0.5
    bn = gray.trunk.convs[1]
    bound = bound * (bn.weight.abs() / (bn.running_var + bn.eps).sqrt()).max()
    assert (seen_gray - seen_colour).abs().max() <= bound + 1e-5


def test_calibration_refuses_faces_the_model_trained_on(mtfl_dir, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    from facemtl.models.weights import save_model
    from facemtl.training.config import DatasetSpec, TrainConfig

    train = str(mtfl_dir / "training.txt")
    recipe = TrainConfig(train=(DatasetSpec(train),))
    w = tmp_path / "m.safetensors"
    save_model(create_model("facemtl_s"), w, {"training": {"config": recipe.to_dict()}})
    script = Path(__file__).resolve().parent.parent / "scripts" / "calibrate_attributes.py"
    r = subprocess.run(
        [sys.executable, str(script), str(w), "--faces", train, "--out", str(tmp_path / "c.safetensors")],
        capture_output=True,
        text=True,
    )
    assert r.returncode != 0
    assert f"its recipe trained on {train} (mtfl, all)" in r.stderr
    assert not (tmp_path / "c.safetensors").exists()


def test_pseudo_landmarks_train_the_landmark_head_and_never_score_validation(tmp_path, monkeypatch):
    """With ``pseudo_landmarks`` a CelebA face's landmark targets are the shipped model's points
    (here stubbed), so it trains the landmark head; its held-out faces keep attributes only, so the
    validation NME stays the annotated faces'."""
    import facemtl.training.jobs.landmarks as job
    from facemtl.training.config import TrainConfig

    root = tmp_path / "CelebA"
    (root / "img_align_celeba").mkdir(parents=True)
    names = [f"{i:06d}.jpg" for i in range(1, 7)]
    header = "Eyeglasses Male Smiling"
    (root / "list_attr_celeba.txt").write_text("\n".join([str(len(names)), header, *(f"{n} -1 1 1" for n in names)]))
    (root / "list_eval_partition.txt").write_text("".join(f"{n} 0\n" for n in names))
    for n in names:
        cv2.imwrite(str(root / "img_align_celeba" / n), np.full((218, 178, 3), 128, np.uint8))
    five = np.array([[70, 110], [108, 110], [89, 132], [74, 152], [104, 152]], np.float64)
    monkeypatch.setattr(job, "locate_faces", lambda images: [five for _ in images])
    labellers = []
    monkeypatch.setattr(
        job, "locate_landmarks", lambda images, model: labellers.append(model) or [five + 1.0 for _ in images]
    )
    source = {"path": str(root), "kind": "celeba", "split": "train", "pseudo_landmarks": True}
    cfg = TrainConfig.from_dict({"train": [source], "val_fraction": 0.5})
    train, _, val = job.train_val_samples(cfg)
    assert len(train) == len(val) == 3
    assert all(np.array_equal(s.landmarks, five + 1.0) for s in train)  # targets: the located landmarks
    assert all(s.landmarks is None and np.array_equal(s.crop_points, five) for s in val)  # framed, not scored
    assert FaceDataset.for_model(train, get_config("facemtl_s"))[0]["landmark_mask"]
    assert labellers == ["facemtl_mtfl"]  # true: the MTFL-only model labels, never one trained on CelebA
    second = TrainConfig.from_dict(
        {"train": [source | {"pseudo_landmarks": "facemtl_mtfl_celeba"}], "val_fraction": 0.5}
    )
    job.train_val_samples(second)
    assert labellers[-1] == "facemtl_mtfl_celeba"  # a second round: a model trained this way labels
    with pytest.raises(ValueError, match="pseudo_landmarks applies to celeba sources"):
        DatasetSpec("training.txt", "mtfl", pseudo_landmarks=True)
    with pytest.raises(
        ValueError,
        match=r"shipped landmark model \(facemtl_mtfl, facemtl_mtfl_celeba, facemtl_300w68, facemtl_m_age\), got 'facemtl_det'",
    ):
        DatasetSpec(str(root), "celeba", split="train", pseudo_landmarks="facemtl_det")
    with pytest.raises(ValueError, match="pseudo_landmarks 'facemtl_300w68' gives 68 points, the recipe trains 5"):
        TrainConfig.from_dict({"train": [source | {"pseudo_landmarks": "facemtl_300w68"}]})  # before any labelling
