"""FairFace's labels: both files read alike, a fixed validation fifth by file name, bad lines named."""

from __future__ import annotations

import numpy as np
import pytest

from facemtl.data.fairface import AGE_BINS, RACES, in_validation, read_fairface, read_fairface_labels
from facemtl.data.samples import AnnotationError


@pytest.fixture(scope="module")
def fairface(data_root):
    root = data_root / "FairFace"
    if not root.is_dir():
        pytest.skip(f"FairFace not found at {root}")
    return root


def test_the_shared_labels_read_alike_from_both_files(fairface, tmp_path):
    full = read_fairface_labels(fairface)
    assert len(full) == 3243
    assert {lab.gender for lab in full} == {0, 1} and {lab.age for lab in full} == set(range(len(AGE_BINS)))
    assert {lab.race for lab in full} == set(RACES)
    (tmp_path / "labels.txt").write_text((fairface / "labels.txt").read_text())
    short = {lab.name: (lab.gender, lab.age) for lab in read_fairface_labels(tmp_path)}
    assert short == {lab.name: (lab.gender, lab.age) for lab in full}


def test_the_validation_part_is_a_fixed_fifth_by_file_name(fairface):
    names = [lab.name for lab in read_fairface_labels(fairface)]
    val = {n for n in names if in_validation(n)}
    assert 0.17 < len(val) / len(names) < 0.23
    assert {n for n in reversed(names) if in_validation(n)} == val  # the order of the listing does not matter
    assert in_validation("sub/" + next(iter(val)))  # nor the folder


def test_samples_are_attribute_only_and_framed_by_located_points(fairface):
    def locate(images):  # every third photo: no face found
        return [None if i % 3 == 0 else np.zeros((5, 2)) for i in range(len(images))]

    train, val = read_fairface(fairface, "train", locate), read_fairface(fairface, "val", locate)
    assert not {s.image for s in train} & {s.image for s in val}
    every = read_fairface(fairface, "all", lambda imgs: [np.zeros((5, 2))] * len(imgs))
    assert len(every) == 3243 and all(s.landmarks is None and set(s.attributes) == {"gender", "age"} for s in every)
    assert len(train) + len(val) < len(every)  # the unlocated were left out


@pytest.mark.parametrize(
    "content, message",
    [
        (
            "file\tgender\tage_bin\trace\na.jpg\tboy\t20-29\tWhite\n",
            r"labels_full.tsv:2: gender must be male or female",
        ),
        ("file\tgender\tage_bin\trace\na.jpg\tmale\t20-30\tWhite\n", r"labels_full.tsv:2: age_bin must be one of 0-2"),
        ("file\tgender\tage_bin\trace\na.jpg\tmale\t20-29\n", r"labels_full.tsv:2: expected 4 tab-separated fields"),
        ("file\tgender\tage\trace\n", r"labels_full.tsv:1: header lacks age_bin"),
        ("file\tgender\tage_bin\trace\na.jpg\tmale\t20-29\tMartian\n", r"labels_full.tsv:2: race must be one of"),
    ],
)
def test_a_bad_tsv_line_is_named(tmp_path, content, message):
    (tmp_path / "labels_full.tsv").write_text(content)
    with pytest.raises(AnnotationError, match=message):
        read_fairface_labels(tmp_path)


@pytest.mark.parametrize(
    "line, message",
    [
        ("a.jpg gender male age 30", r"labels.txt:2: age 30 is no bin's midpoint"),
        ("a.jpg gender male age old", r"labels.txt:2: age must be a bin midpoint"),
        ("a.jpg male 25", r"labels.txt:2: expected 'NAME gender male\|female age N'"),
    ],
)
def test_a_bad_txt_line_is_named(tmp_path, line, message):
    (tmp_path / "labels.txt").write_text(f"b.jpg gender female age 25\n{line}\n")
    with pytest.raises(AnnotationError, match=message):
        read_fairface_labels(tmp_path)


def test_a_labelled_photo_that_is_missing_is_named(tmp_path):
    (tmp_path / "labels.txt").write_text("gone.jpg gender female age 25\n")
    with pytest.raises(FileNotFoundError, match=r"labels.txt:1: .*gone.jpg is labelled but not found"):
        read_fairface(tmp_path, "all", lambda imgs: [None] * len(imgs))
