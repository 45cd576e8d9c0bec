"""Loaders on the real shared files and on malformed input."""

from __future__ import annotations

import numpy as np
import pytest

from facemtl.core.images import read_image
from facemtl.data.mtfl import format_mtfl_line, parse_mtfl_line, read_mtfl
from facemtl.data.samples import MISSING, AnnotationError
from facemtl.data.w300 import read_300w_folder, read_pts, reduce_68_to_5


def test_mtfl_real_files_parse_completely(mtfl_train_samples, mtfl_test_samples):
    assert len(mtfl_train_samples) == 10_000
    assert len(mtfl_test_samples) == 2_995
    s = mtfl_train_samples[0]
    # " lfw_5590\Aaron_Eckhart_0001.jpg 107.25 147.75 126.25 106.25 140.75 108.75 113.25 143.75 158.75 162.75 1 2 2 3"
    assert s.image.name == "Aaron_Eckhart_0001.jpg" and s.image.parent.name == "lfw_5590"
    np.testing.assert_allclose(s.landmarks[0], [106.25, 107.75])  # 1-based file → 0-based
    assert s.attributes == {"gender": 0, "smile": 1, "glasses": 1, "pose": 2}
    for samples in (mtfl_train_samples, mtfl_test_samples):
        lm = np.stack([x.landmarks for x in samples])
        assert lm.shape[1:] == (5, 2) and np.isfinite(lm).all()
        assert (lm[:, 0, 0] < lm[:, 1, 0]).mean() > 0.95  # "left" eye = image's left


def test_grayscale_face_reads_as_three_equal_channels(mtfl_train_samples, tmp_path):
    from PIL import Image

    gray = tmp_path / "gray.png"
    Image.open(mtfl_train_samples[0].image).convert("L").save(gray)
    img = read_image(gray)
    assert img.shape == (250, 250, 3) and img.dtype == np.uint8
    assert (img[..., 0] == img[..., 2]).all()


def test_mtfl_line_round_trip_keeps_pixel_convention(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"x")
    line = "a.jpg 11 31 21 14 28 11 12 21 30 31 2 1 2 5"
    s = parse_mtfl_line(line, tmp_path, "f:1")
    np.testing.assert_allclose(s.landmarks[0], [10, 10])  # (11, 11) 1-based = (10, 10) 0-based
    assert s.attributes == {"gender": 1, "smile": 0, "glasses": 1, "pose": 4}
    again = parse_mtfl_line(format_mtfl_line(s, tmp_path), tmp_path, "f:1")
    np.testing.assert_allclose(again.landmarks, s.landmarks, atol=1e-5)
    assert again.attributes == s.attributes


def test_landmark_only_lines_are_valid(tmp_path):
    s = parse_mtfl_line(" sub\\a.jpg 1 2 3 4 5 6 7 8 9 10\r\n", tmp_path, "f:1")
    assert s.image == tmp_path / "sub" / "a.jpg"
    assert s.attributes == {} and s.attribute("pose") == MISSING


@pytest.mark.parametrize(
    "line, message",
    [
        ("a.jpg 1 2 3", "expected 11 fields"),
        ("a.jpg 1 2 3 4 5 6 7 8 9 x", "not a number"),
        ("a.jpg 1 2 3 4 5 6 7 8 9 10 1 2 2 9", "pose code 9 is outside 1..5"),
        ("a.jpg 1 2 3 4 5 6 7 8 9 10 1 2 2 a", "pose code 'a' is not an integer"),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path, line, message):
    (tmp_path / "a.jpg").write_bytes(b"x")
    f = tmp_path / "ann.txt"
    f.write_text("a.jpg 1 2 3 4 5 6 7 8 9 10 1 2 2 3\r\n\r\n" + line + "\r\n")
    with pytest.raises(AnnotationError, match=rf"ann\.txt:3: .*{message}"):
        read_mtfl(f)


def test_missing_image_names_file_and_line(tmp_path):
    f = tmp_path / "ann.txt"
    f.write_text("nope.jpg 1 2 3 4 5 6 7 8 9 10\n")
    with pytest.raises(AnnotationError, match=r"ann\.txt:1: image .*nope\.jpg does not exist"):
        read_mtfl(f)


def test_300w_folder_68_and_5_points(w300_dir):
    s68 = read_300w_folder(w300_dir)
    assert len(s68) == 1672
    assert all(s.landmarks.shape == (68, 2) for s in s68)
    s5 = read_300w_folder(w300_dir, points=5)
    np.testing.assert_allclose(s5[0].landmarks, reduce_68_to_5(s68[0].landmarks))
    np.testing.assert_allclose(s5[0].landmarks[0], s68[0].landmarks[36:42].mean(0), rtol=1e-6)
    eyes = np.stack([s.landmarks[:2] for s in s5])
    assert (eyes[:, 0, 0] < eyes[:, 1, 0]).mean() > 0.95


def test_pts_is_converted_to_zero_based(tmp_path):
    pts = tmp_path / "a.pts"
    pts.write_text("version: 1\nn_points: 2\n{\n1 1\n10.5 20\n}\n")
    np.testing.assert_allclose(read_pts(pts), [[0, 0], [9.5, 19]])


def test_truncated_pts_is_reported(tmp_path):
    pts = tmp_path / "a.pts"
    pts.write_text("version: 1\nn_points: 3\n{\n1 1\n2 2\n")
    with pytest.raises(AnnotationError, match=r"a\.pts: ends after 2 of 3 points"):
        read_pts(pts)
