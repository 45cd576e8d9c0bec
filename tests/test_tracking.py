"""Video (issue 38): the One Euro filter, the tracker's identities and smoothing on clips with
known motion, and the command line on video files (predict, draw, live)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

from facemtl.cli import main
from facemtl.data.clips import ClipFace, ClipSpec, make_clip, write_video
from facemtl.video.smoothing import OneEuroFilter, OneEuroParams


# -- the filter ---------------------------------------------------------------------------------
def test_one_euro_smooths_a_still_point_and_follows_a_move():
    rng = np.random.default_rng(0)
    f = OneEuroFilter(OneEuroParams(min_cutoff=0.5, beta=10))
    still = [f(np.array([[100.0, 50.0]]) + rng.normal(0, 0.5, (1, 2)), 1 / 30, scale=50) for _ in range(90)]
    raw_jitter = 0.5 * np.sqrt(2)  # of independent noise, frame to frame
    jitter = np.mean([np.linalg.norm(b - a) for a, b in zip(still[30:], still[31:], strict=False)])
    assert jitter < raw_jitter / 3
    moved = [f(np.array([[100.0 + 10 * i, 50.0]]), 1 / 30, scale=50) for i in range(1, 31)]
    assert abs(moved[-1][0, 0] - 400.0) < 20  # 300 px in a second: followed within 20 px (0.4 eye distances)


def test_one_euro_means_the_same_at_any_frame_rate():
    """A step reaches 90 % after the same time at 30 and 60 frames/s: its parameters are in seconds."""

    def time_to_90(fps: float) -> float:
        f = OneEuroFilter(OneEuroParams(min_cutoff=1.0, beta=0.0))
        f(np.zeros((1, 2)), 1 / fps)
        for i in range(1, 1000):
            if f(np.ones((1, 2)), 1 / fps)[0, 0] >= 0.9:
                return i / fps
        return float("inf")

    assert abs(time_to_90(30) - time_to_90(60)) < 0.06


def test_one_euro_refuses_bad_parameters():
    for bad in ({"min_cutoff": 0}, {"beta": -1}, {"d_cutoff": float("nan")}):
        with pytest.raises(ValueError):
            OneEuroParams(**bad)


# -- the tracker on clips of known motion -------------------------------------------------------
@pytest.fixture(scope="module")
def analyzer():
    from facemtl.analysis.analyzer import FaceAnalyzer

    return FaceAnalyzer.from_pretrained()


@pytest.fixture(scope="module")
def portrait(analyzer) -> ClipFace:
    """Grace Hopper's portrait, its landmarks found by facemtl (a face that needs no ../shared)."""
    import matplotlib.cbook as cbook

    image = cv2.imread(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    return ClipFace(image, analyzer.analyze(image)[0].landmarks)


@pytest.fixture(scope="module")
def background() -> np.ndarray:
    rng = np.random.default_rng(1)
    return cv2.GaussianBlur(rng.integers(40, 200, (240, 320, 3)).astype(np.uint8), (0, 0), 3)


def _ids(found) -> list[list[int]]:
    return [[f.track_id for f in faces] for faces in found]


def test_a_face_that_leaves_and_returns_within_the_grace_period_keeps_its_id(analyzer, portrait, background):
    from facemtl.video.tracking import FaceTracker

    clip = make_clip([portrait], background, ClipSpec(seconds=4, leave=True, occlusions=0), seed=3)
    tracker = FaceTracker(analyzer, fps=clip.fps)
    found = [tracker.update(f) for f in clip.frames]
    gone = [i for i, t in enumerate(clip.truth) if t[0] is None]
    assert gone, "the clip's face never left the frame"
    back = [i for i in range(gone[-1] + 1, len(clip.frames))]
    assert back, "the clip's face never came back"
    ids = {i for faces in _ids(found) for i in faces}
    assert ids == {0}, _ids(found)
    assert all(found[i] for i in back[5:])  # found again within 5 frames of its return
    assert all(len(found[i]) == 0 for i in gone[5:])  # and nothing is reported while it is away
    # while it was awaited the detector looked where it had been, and at the whole frame only every
    # detect_every frames (not on every frame, as when no face is followed or awaited)
    assert tracker.searches > 0
    assert tracker.detections <= len(clip.frames) // tracker.params.detect_every + 2


def test_a_detection_inside_a_larger_face_is_a_part_of_it():
    """The tracker's rule for new detections: one lying mostly inside a followed face's box, or a
    larger detection's (the fourth detector release boxes Grace Hopper's collar and tie at 0.85 in
    a zoomed frame, surer than her face), is a part of that face; a face beside it, or the face
    itself, is not."""
    from facemtl.detection.base import Detection
    from facemtl.video.matching import parts

    def det(*box: float) -> Detection:
        return Detection(box, 0.9, "net")

    face = np.array([100.0, 100.0, 300.0, 340.0])
    collar = det(140, 250, 260, 380)  # 70 of its 130 px height inside the face's box
    beside = det(310, 120, 480, 330)
    itself = det(105, 95, 295, 335)
    assert list(parts([collar, beside, itself], [face])) == [True, False, False]
    # with no followed face yet, a surer detection of the collar is still a part of the face's detection
    assert list(parts([collar, det(*face)], [])) == [True, False]
    # a small face beside a large one is not a part of it
    assert list(parts([det(305, 100, 345, 140), det(*face)], [])) == [False, False]


def test_a_window_search_maps_its_faces_back_to_the_frames_pixels():
    """The window around a box, whatever its zoom and wherever it crosses the frame's edge, maps
    its centre back to the box's centre and its scale back to the box's size (0-based pixel centres)."""
    from facemtl.detection.base import Detection
    from facemtl.detection.window import WINDOW, detect_near

    class Centre:  # a detector that sees one face, filling the window's middle 1 / WINDOW
        def detect(self, image_bgr: np.ndarray) -> list[Detection]:
            h, w = image_bgr.shape[:2]
            c, r = (w - 1) / 2, w / WINDOW / 2
            return [Detection((c - r, c - r, c + r, c + r), 0.9, "net", np.array([[c - r / 2, c], [c + r / 2, c]]))]

    image = np.zeros((480, 640, 3), np.uint8)
    for box in [(100.0, 80.0, 160.0, 140.0), (600.0, -20.0, 700.0, 80.0), (10.0, 10.0, 18.0, 18.0), (0, 0, 400, 400)]:
        (found,) = detect_near(Centre(), image, box)
        centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
        assert np.allclose(((found.box[0] + found.box[2]) / 2, (found.box[1] + found.box[3]) / 2), centre, atol=1e-6)
        assert abs((found.box[2] - found.box[0]) / (box[2] - box[0]) - 1) < 0.05  # the window's side is rounded
        assert np.allclose(found.landmarks.mean(0), centre, atol=1e-6)


def test_a_face_is_found_again_in_a_window_around_where_it_was(analyzer, portrait, background):
    """The face the detector finds on the whole frame, found again in a window around its box (for
    a face in the middle and one cut by the frame's edge) at about the same place; nothing where there
    is no face."""
    from facemtl.detection.base import box_iou
    from facemtl.detection.window import detect_near

    clip = make_clip([portrait], background, ClipSpec(seconds=1, occlusions=0, blur=0), seed=4)
    frame = clip.frames[-1]
    whole = analyzer.detector.detect(frame)
    assert len(whole) == 1
    for shift in (0, -int(whole[0].box[0]) - 10):  # as it is, and moved so its left edge leaves the frame
        image = frame
        if shift:
            image = np.roll(frame, shift, axis=1)
            image[:, shift:] = 128
            whole = analyzer.detector.detect(image)
            assert len(whole) == 1
        near = detect_near(analyzer.detector, image, whole[0].box)
        assert len(near) == 1
        assert box_iou(np.array(near[0].box), np.array(whole[0].box))[0, 0] > 0.75
        iod = np.linalg.norm(whole[0].landmarks[0] - whole[0].landmarks[1])
        assert np.linalg.norm(near[0].landmarks - whole[0].landmarks, axis=1).mean() < 0.15 * iod
    assert detect_near(analyzer.detector, background, (100.0, 80.0, 160.0, 140.0)) == []


def test_two_faces_keep_two_ids_through_motion_and_occlusion(analyzer, portrait, background):
    from facemtl.video.tracking import FaceTracker

    clip = make_clip([portrait, portrait], background, ClipSpec(seconds=3, faces=2, occlusions=1), seed=5)
    tracker = FaceTracker(analyzer, fps=clip.fps)
    found = [tracker.update(f) for f in clip.frames]
    for faces in found[1:]:
        by_side = sorted(faces, key=lambda f: f.landmarks[:, 0].mean())
        assert [f.track_id for f in by_side] == [0, 1][: len(by_side)]  # the left face is 0, the right 1
    assert sum(len(f) == 2 for f in found) >= 0.9 * len(found)
    assert tracker.detections <= len(found) // 2  # the detector is not run on every frame


def test_tracking_holds_a_still_face_steadier_than_per_frame_analysis(analyzer, portrait, background):
    from facemtl.video.tracking import FaceTracker

    spec = ClipSpec(seconds=2, move_seconds=(0.05, 0.06), still_seconds=(5, 5), occlusions=0, blur=0)
    clip = make_clip([portrait], background, spec, seed=7)
    tracker = FaceTracker(analyzer, fps=clip.fps)
    tracked = [tracker.update(f)[0].landmarks for f in clip.frames]
    single = [analyzer.analyze(f)[0].landmarks for f in clip.frames]

    def jitter(points: list[np.ndarray]) -> float:
        return float(
            np.mean([np.linalg.norm(b - a, axis=1).mean() for a, b in zip(points[10:], points[11:], strict=False)])
        )

    assert jitter(tracked) < jitter(single) / 3
    truth = clip.truth[-1][0]
    assert (
        np.linalg.norm(tracked[-1] - truth, axis=1).mean() < 1.2 * np.linalg.norm(single[-1] - truth, axis=1).mean() + 1
    )


def test_attributes_are_averaged_over_a_track(analyzer, portrait, background):
    from facemtl.video.tracking import FaceTracker

    clip = make_clip([portrait], background, ClipSpec(seconds=1, occlusions=0), seed=2)
    tracker = FaceTracker(analyzer, fps=clip.fps)
    faces = [tracker.update(f) for f in clip.frames][-1]
    probs = faces[0].attributes["gender"].probs
    assert abs(sum(probs.values()) - 1) < 1e-6


# -- command line -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def clip_file(tmp_path_factory, portrait, background) -> Path:
    clip = make_clip([portrait], background, ClipSpec(seconds=1.5, occlusions=0), seed=11)
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    write_video(clip.frames, str(path), clip.fps)
    return path


def test_predict_on_a_video_prints_a_line_per_frame_with_track_ids(clip_file, capsys):
    assert main(["predict", str(clip_file), "--json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    records = [json.loads(line, parse_constant=lambda c: pytest.fail(f"not JSON: {c}")) for line in lines]
    assert len(records) == 45
    assert [r["frame"] for r in records] == list(range(45))
    assert records[0]["image"] == f"{clip_file}#frame=0" and records[30]["time"] == pytest.approx(1.0, abs=0.05)
    assert all(f["track_id"] == 0 for r in records for f in r["faces"])
    assert sum(len(r["faces"]) == 1 for r in records) == 45


def test_the_detect_every_flag_states_the_trackers_default():
    from facemtl.cli import build_parser
    from facemtl.video.tracking import TrackerParams

    draw = build_parser()._subparsers._group_actions[0].choices["draw"]  # type: ignore[union-attr]
    flag = next(a for a in draw._actions if a.dest == "detect_every")
    assert f"default {TrackerParams().detect_every};" in flag.help


def test_predict_no_track_analyses_each_frame(clip_file, capsys):
    assert main(["predict", str(clip_file), "--json", "--no-track"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(records) == 45 and all("track_id" not in f for r in records for f in r["faces"])


def test_draw_writes_a_tracked_video_as_h264_near_the_input_size(clip_file, tmp_path, capsys):
    from facemtl.video.io import VideoReader, VideoWriter

    source = tmp_path / "h264.mp4"  # an H.264 input, as a phone or camera gives
    with VideoReader(clip_file) as r, VideoWriter(source, r.fps, r.size) as w:
        assert w.codec == "h264"  # imageio-ffmpeg is in the dev extra
        for frame in r:
            w.write(frame.image)
    out = tmp_path / "out"
    assert main(["draw", str(source), "--out", str(out), "--json"]) == 0
    drawn = out / "h264.mp4"
    with VideoReader(drawn) as r:
        frames = list(r)
    assert len(frames) == 45 and frames[0].image.shape == (480, 640, 3)
    assert drawn.stat().st_size < 3 * source.stat().st_size
    records = [json.loads(line) for line in (out / "h264.json").read_text().splitlines()]
    assert len(records) == 45 and records[-1]["faces"][0]["track_id"] == 0
    capsys.readouterr()


def test_draw_no_track_analyses_each_frame(clip_file, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["draw", str(clip_file), "--out", str(out), "--json", "--no-track"]) == 0
    records = [json.loads(line) for line in (out / "clip.json").read_text().splitlines()]
    assert len(records) == 45 and all("track_id" not in f for r in records for f in r["faces"])
    capsys.readouterr()


def test_live_serves_annotated_frames_to_a_browser(clip_file):
    """``facemtl live`` headless: a video file stands in for the camera; the test reads the page,
    a frame and the stream from the server on 127.0.0.1, then stops it with Ctrl-C."""
    cmd = [sys.executable, "-m", "facemtl", "live", str(clip_file), "--serve", "--port", "0", "--loop"]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "serving" in line, line + (proc.stderr.read() if proc.poll() is not None else "")
        url = line.split(" at ")[1].split()[0]
        assert url.startswith("http://127.0.0.1:")
        page = urllib.request.urlopen(url, timeout=30).read()
        assert b'src="/stream"' in page
        jpeg = urllib.request.urlopen(url + "frame.jpg", timeout=30).read()
        image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert image.shape == (480, 640, 3)
        with urllib.request.urlopen(url + "stream", timeout=30) as stream:
            assert "multipart/x-mixed-replace" in stream.headers["Content-Type"]
            head = stream.read(200)
            assert head.startswith(b"--frame\r\nContent-Type: image/jpeg")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""


def test_a_tracker_may_follow_with_fewer_views_than_a_photo(analyzer, portrait, background):
    from facemtl.video.tracking import FaceTracker, TrackerParams

    clip = make_clip([portrait], background, ClipSpec(seconds=1, occlusions=0), seed=4)
    tracker = FaceTracker(analyzer, fps=clip.fps, params=TrackerParams(shift_test=0.0))
    assert tracker.landmarker.shift_test == 0 and analyzer.landmarker.shift_test > 0  # the analyzer is untouched
    assert tracker.landmarker.model is analyzer.model  # the same network
    found = [tracker.update(f) for f in clip.frames]
    assert all(len(f) == 1 and f[0].track_id == 0 for f in found)
