"""Collections: the engine (workers, order, errors), input streams and shards, outputs that resume
exactly once after a kill, Parquet, aligned crops, Ray Data."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from facemtl.analysis.align import TEMPLATES, align, similarity_transform
from facemtl.analysis.analyzer import FaceAnalyzer, image_record
from facemtl.analysis.options import DEFAULTS
from facemtl.batch.engine import analyze_inputs
from facemtl.batch.outputs import open_output, records_of_parquet
from facemtl.core.files import OutputExistsError
from facemtl.core.inputs import iter_inputs, parse_shard, shard

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def photos(data_root) -> list[Path]:
    folder = data_root / "CelebA" / "img_align_celeba"
    return sorted(folder.glob("*.jpg"))[:24]


@pytest.fixture(scope="module")
def analyzer() -> FaceAnalyzer:
    return FaceAnalyzer.from_options(DEFAULTS)


def run_cli(*args: str, cwd: Path | None = None, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "facemtl", *args], capture_output=True, text=True, cwd=cwd, input=stdin, env=env
    )


# -- the engine -------------------------------------------------------------------------------------
def test_workers_give_the_same_records_in_input_order_and_go_on_past_a_bad_photo(photos, analyzer, tmp_path):
    bad = tmp_path / "cut.jpg"
    bad.write_bytes(photos[0].read_bytes()[:300])
    inputs = [*photos[:5], bad, *photos[5:9]]
    here = list(analyze_inputs(inputs, analyzer, workers=1))
    spread = list(analyze_inputs(inputs, analyzer, workers=2, chunk=2, window=1))
    assert [r.index for r in spread] == list(range(len(inputs)))
    assert [r.item for r in spread] == inputs
    assert spread[5].faces is None and "cut.jpg" in spread[5].error
    for a, b in zip(here, spread, strict=True):
        if a.faces is not None:
            assert image_record(str(a.item), a.faces) == image_record(str(b.item), b.faces)
    assert sum(len(r.faces or ()) for r in spread) >= 8


def test_analyze_many_streams_an_endless_iterable_with_bounded_look_ahead(photos, analyzer):
    pulled = []

    def endless():
        i = 0
        while True:
            pulled.append(i)
            yield photos[i % len(photos)]
            i += 1

    got = analyzer.analyze_many(endless(), workers=2)
    first = [next(got) for _ in range(3)]
    assert all(len(f) == 1 for f in first)
    import inspect

    defaults = inspect.signature(analyze_inputs).parameters
    chunk, window = defaults["chunk"].default, defaults["window"].default
    assert len(pulled) <= (2 * window + 3) * chunk  # a window of chunks per worker (and one per result), not the stream
    got.close()


# -- inputs ---------------------------------------------------------------------------------------
def test_inputs_from_folders_recursively_globs_and_list_files(photos, tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for i, p in enumerate(photos[:3]):
        (tmp_path / ("a" if i else "a/b") / p.name).write_bytes(p.read_bytes())
    (tmp_path / "a" / "notes.txt").write_text("x")
    flat = list(iter_inputs([tmp_path / "a"]))
    deep = list(iter_inputs([tmp_path / "a"], recursive=True))
    assert len(flat) == 2 and len(deep) == 3 and deep[:2] == flat
    assert list(iter_inputs([str(tmp_path / "a" / "*.jpg")])) == flat
    assert list(iter_inputs([str(tmp_path / "a" / "*.png")])) == [tmp_path / "a" / "*.png"]  # reported, not lost
    listing = tmp_path / "list.txt"
    listing.write_text(f"# photos\n{deep[2]}\n\n{deep[0]}\n")
    r = run_cli("predict", "--inputs-from", str(listing), "--json", "--workers", "1")
    assert r.returncode == 0, r.stderr
    assert [json.loads(line)["image"] for line in r.stdout.splitlines()] == [str(deep[2]), str(deep[0])]
    r = run_cli("predict", "-", "--json", "--workers", "1", stdin=f"{deep[1]}\n")
    assert r.returncode == 0 and json.loads(r.stdout)["image"] == str(deep[1]), r.stderr


def test_shards_partition_the_inputs_exactly():
    items = [Path(f"p{i}.jpg") for i in range(23)]
    parts = [list(shard(items, i, 4)) for i in range(4)]
    assert sorted(p for part in parts for p in part) == sorted(items)
    assert all(len(part) in (5, 6) for part in parts)
    for bad in ("4/4", "1", "a/b", "-1/3"):
        with pytest.raises(ValueError, match="--shard"):
            parse_shard(bad)


# -- outputs that resume ---------------------------------------------------------------------------
def test_a_killed_run_resumed_writes_every_input_exactly_once(photos, tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"{p}\n" for p in photos))
    out = tmp_path / "faces.jsonl"
    cmd = [sys.executable, "-m", "facemtl", "predict", "--inputs-from", str(listing), "-o", str(out), "--workers", "1"]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    deadline = time.monotonic() + 120
    while not (out.exists() and out.read_text().count("\n") >= 5) and time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        time.sleep(0.005)  # waiting on the output file's content, the event this test is about
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = out.read_text().count("\n")
    assert 5 <= partial < len(photos), partial
    with out.open("a") as f:  # and a cut last line, as a kill mid-write leaves
        f.write('{"image": "cut')
    r = run_cli("predict", "--inputs-from", str(listing), "-o", str(out), "--resume", "--workers", "2")
    assert r.returncode == 0, r.stderr
    images = [json.loads(line)["image"] for line in out.read_text().splitlines()]
    assert sorted(images) == sorted(map(str, photos)) and len(images) == len(set(images))
    r = run_cli("predict", "--inputs-from", str(listing), "-o", str(out))
    assert r.returncode == 2 and "--resume continues it" in r.stderr


def test_resume_drops_the_frames_of_a_video_that_was_not_finished(tmp_path):
    out = tmp_path / "o.jsonl"
    lines = [
        {"image": "a.jpg", "faces": []},
        {"image": "v.mp4#frame=0", "frame": 0, "time": 0.0, "faces": []},
        {"image": "w.mp4#frame=0", "frame": 0, "time": 0.0, "faces": [], "last": True},
        {"image": "v.mp4#frame=1", "frame": 1, "time": 0.04, "faces": []},
    ]
    out.write_text("".join(json.dumps(x) + "\n" for x in lines) + '{"ima')
    writer = open_output(out, resume=True)
    writer.close()
    assert writer.done == {"a.jpg", "w.mp4"}
    assert [json.loads(x)["image"] for x in out.read_text().splitlines()] == ["a.jpg", "w.mp4#frame=0"]
    with pytest.raises(OutputExistsError):
        open_output(out)


def test_parquet_output_holds_the_json_records(photos, tmp_path):
    pytest.importorskip("pyarrow")
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"{p}\n" for p in photos[:6]) + f"{tmp_path / 'missing.jpg'}\n")
    r = run_cli("predict", "--inputs-from", str(listing), "--json", "--workers", "1")
    expected = [json.loads(line) for line in r.stdout.splitlines()]
    r = run_cli("predict", "--inputs-from", str(listing), "-o", str(tmp_path / "f.parquet"), "--workers", "2")
    assert r.returncode == 1 and "missing.jpg" in r.stderr  # one input failed, the rest were done
    got = records_of_parquet(tmp_path / "f.parquet")
    assert sorted(got, key=lambda x: x["image"]) == sorted(expected, key=lambda x: x["image"])
    r = run_cli("predict", "--inputs-from", str(listing), "-o", str(tmp_path / "f.parquet"), "--resume")
    assert r.returncode == 0 and len(records_of_parquet(tmp_path / "f.parquet")) == 7, r.stderr  # nothing twice


# -- aligned crops --------------------------------------------------------------------------------------
def test_a_face_placed_by_a_known_similarity_aligns_back_to_the_template():
    size = 112
    template = TEMPLATES["arcface"] * size
    angle, scale, shift = np.deg2rad(23.0), 2.7, np.array([211.3, 97.8])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    points = template @ rot.T + shift  # the template's face placed in a photo
    m = similarity_transform(points, template)
    np.testing.assert_allclose(points @ m[:, :2].T + m[:, 2], template, atol=1e-6)
    # a photo with a dot at each point: the crop shows the dots at the template, within half a pixel
    photo = np.zeros((600, 600), np.uint8)
    for x, y in points:
        cv2.circle(photo, (round(x * 16), round(y * 16)), 5 * 16, 255, -1, shift=4)
    crop = align(photo, points, size=size)
    for tx, ty in template:
        y0, x0 = round(ty) - 4, round(tx) - 4
        win = crop.image[y0 : y0 + 9, x0 : x0 + 9].astype(np.float64)
        ys, xs = np.mgrid[y0 : y0 + 9, x0 : x0 + 9]
        centre = np.array([(xs * win).sum(), (ys * win).sum()]) / win.sum()
        assert np.hypot(*(centre - (tx, ty))) < 0.5
    np.testing.assert_allclose(crop.to_photo(template), points, atol=1e-6)


def test_align_writes_crops_and_their_transform(photos, tmp_path):
    r = run_cli("align", str(photos[0]), str(photos[1]), "--out", str(tmp_path / "crops"), "--workers", "1")
    assert r.returncode == 0, r.stderr
    crops = sorted((tmp_path / "crops").glob("*.png"))
    assert len(crops) == 2 and cv2.imread(str(crops[0])).shape == (112, 112, 3)
    meta = json.loads(crops[0].with_suffix(".json").read_text())
    assert meta["template"] == "arcface" and np.array(meta["matrix"]).shape == (2, 3)
    face = FaceAnalyzer.from_options().analyze(photos[0])[0]
    crop = face.aligned(photos[0], size=160, template="ffhq")
    assert crop.image.shape == (160, 160, 3) and crop.size == 160
    np.testing.assert_allclose(
        crop.to_photo(face.landmarks @ crop.matrix[:, :2].T + crop.matrix[:, 2]), face.landmarks, atol=1e-6
    )


# -- Ray Data -----------------------------------------------------------------------------------------
@pytest.mark.slow
def test_ray_gives_the_local_engines_records(photos, tmp_path):
    pytest.importorskip("ray")
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"{p}\n" for p in photos[:8]))
    r = run_cli("predict", "--inputs-from", str(listing), "-o", str(tmp_path / "local.jsonl"))
    assert r.returncode == 0, r.stderr
    r = run_cli(
        "predict", "--inputs-from", str(listing), "-o", str(tmp_path / "ray.jsonl"), "--engine", "ray", "--workers", "2"
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "ray.jsonl").read_text() == (tmp_path / "local.jsonl").read_text()


def test_a_batch_of_photos_gives_each_photos_own_faces(photos, analyzer):
    from facemtl.core.images import read_image

    images = [read_image(p) for p in photos[:12]]
    batched = analyzer.analyze_batch(images)
    for image, faces in zip(images, batched, strict=True):
        alone = analyzer.analyze(image)
        assert len(alone) == len(faces)
        for a, b in zip(alone, faces, strict=True):
            np.testing.assert_allclose(a.landmarks, b.landmarks, atol=1e-3)
            assert a.attributes.keys() == b.attributes.keys()
            for k in a.attributes:
                assert abs(a.attributes[k].prob - b.attributes[k].prob) < 1e-4


def test_jpeg_decoding_through_opencv_gives_pils_pixels(photos, tmp_path):
    from PIL import Image, ImageOps

    from facemtl.core.images import pil_to_bgr, read_image

    for p in photos[:5]:
        with Image.open(p) as im:
            assert np.array_equal(read_image(p), pil_to_bgr(ImageOps.exif_transpose(im)))
    # an EXIF-rotated photo is turned upright either way
    rotated = tmp_path / "rotated.jpg"
    with Image.open(photos[0]) as im:
        exif = im.getexif()
        exif[0x0112] = 6  # orientation: rotate 90° clockwise to view
        im.save(rotated, exif=exif.tobytes(), quality=95)
    with Image.open(rotated) as im:
        expected = pil_to_bgr(ImageOps.exif_transpose(im))
    got = read_image(rotated)
    assert got.shape == expected.shape and np.abs(got.astype(int) - expected).max() <= 2
