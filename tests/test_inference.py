"""Inference: bad inputs, the crop → network → image round trip, box rule, predict's JSON."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from conftest import ROOT
from PIL import Image
from torch import nn

from facemtl import cli
from facemtl.analysis.analyzer import FaceAnalyzer
from facemtl.analysis.combine import merge_views, pass_spread
from facemtl.analysis.landmarker import Landmarker
from facemtl.analysis.options import SEEDS
from facemtl.analysis.views import flip_averaged, shift_offsets
from facemtl.core.geometry import Box, crop_box_from_landmarks
from facemtl.core.images import ImageReadError, read_image, to_bgr
from facemtl.detection import BoxRule, Detection, HaarFaceDetector, box_rule, mirrored
from facemtl.models import create_model, get_config
from facemtl.models.arrays import array_net

# ---------------------------------------------------------------------------------------------
# A "network" whose landmark output is exactly where the brightest blob of its input crop is:
# whatever the analyzer does to crop and map back, the answer must land on the blob in the image.


class BlobModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.config = get_config("facemtl_s")
        self.p = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        b, _, s, _ = x.shape
        w = torch.relu(x[:, 0] - x[:, 0].amax((1, 2), keepdim=True) * 0.5)  # the blob's upper half
        ys, xs = torch.meshgrid(torch.arange(s, dtype=x.dtype), torch.arange(s, dtype=x.dtype), indexing="ij")
        cx = (w * xs).sum((1, 2)) / w.sum((1, 2))
        cy = (w * ys).sum((1, 2)) / w.sum((1, 2))
        unit = torch.stack([cx, cy], 1) * (2.0 / s) + (1.0 / s) - 1.0  # crop px → unit (geometry.to_unit)
        lm = unit[:, None, :].expand(b, 5, 2)
        attrs = {t.name: torch.zeros(b, t.num_classes) for t in self.config.tasks.attributes}
        return {"landmarks": lm, "attributes": attrs}


def _blob_image(h, w, x, y, sigma):
    ys, xs = np.mgrid[:h, :w]
    g = 255 * np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma**2))
    return cv2.cvtColor(g.astype(np.uint8), cv2.COLOR_GRAY2BGR)


@pytest.mark.parametrize(
    "h, w, x, y, box",
    [
        (200, 300, 150.0, 90.0, Box(140, 100, 120)),  # inside, upscaled crop
        (200, 300, 12.0, 10.0, Box(20, 20, 100)),  # box leaves the image top-left: replicated border
        (2000, 3000, 2950.0, 1960.0, Box(2900, 1900, 900)),  # bottom-right, 14× downscale
    ],
)
@pytest.mark.parametrize("flip_test, shift_test", [(False, 0.0), (True, 0.0), (False, 0.05), (True, 0.1)])
def test_crop_prediction_maps_back_to_the_original_pixel(h, w, x, y, box, flip_test, shift_test):
    """Also with the flip and shift tests: a mirror that slipped by one pixel, or shifted views cut
    from the wrong pixels, would move the averaged blob. (Moving each shifted view's answer back the
    wrong way cannot show: the offsets sum to zero, so their mean is the same either way.)"""
    image = _blob_image(h, w, x, y, sigma=box.size / 25)
    analyzer = Landmarker(BlobModel(), refine=0, flip_test=flip_test, shift_test=shift_test)
    landmarks, _ = analyzer.predict_boxes(image, [box])
    np.testing.assert_allclose(landmarks[0, 0], [x, y], atol=0.05 * box.size / 64 + 0.02)


def test_given_detections_go_through_the_box_rule():
    analyzer = FaceAnalyzer(BlobModel(), HaarFaceDetector(box_rules={"given": BoxRule(0.1, 0.2, 0.5)}), refine=0)
    b = analyzer.crop_box(Detection((100, 100, 200, 300), 1.0, "given"))
    assert (b.cx, b.cy) == pytest.approx((160, 240))
    assert b.size == pytest.approx(50 * analyzer.model.config.crop_scale)


def test_detector_points_seed_the_training_crop_rule():
    points = np.array([[120.0, 150], [170, 150], [145, 180], [125, 205], [165, 205]])
    det = Detection((90, 110, 200, 240), 0.9, "net", points)
    by_points = FaceAnalyzer(BlobModel(), HaarFaceDetector(), seed="points").crop_box(det)
    assert by_points == crop_box_from_landmarks(points, by_points.size / 55.0)  # centre of the points' box
    assert by_points.size == pytest.approx(55.0 * get_config("facemtl_s").crop_scale)
    by_box = FaceAnalyzer(BlobModel(), HaarFaceDetector(box_rules={"net": BoxRule(0, 0, 0.5)}), seed="box")
    assert by_box.crop_box(det).size == pytest.approx(55.0 * get_config("facemtl_s").crop_scale)
    assert by_box.crop_box(det).cy == pytest.approx(175.0)
    rules = {"net": BoxRule(0, 0, 0.8)}
    hybrid = FaceAnalyzer(BlobModel(), HaarFaceDetector(box_rules=rules), seed="hybrid").crop_box(det)
    assert (hybrid.cx, hybrid.cy) == (by_points.cx, by_points.cy)  # centred by the points
    assert hybrid.size == pytest.approx(0.8 * 110 * get_config("facemtl_s").crop_scale)  # sized by the box rule
    no_points = Detection(det.box, det.score, det.kind)
    assert FaceAnalyzer(BlobModel(), HaarFaceDetector(box_rules=rules), seed="hybrid").crop_box(no_points) == (
        FaceAnalyzer(BlobModel(), HaarFaceDetector(box_rules=rules), seed="box").crop_box(no_points)
    )
    with pytest.raises(ValueError, match="seed must be one of hybrid, points, box"):
        FaceAnalyzer(BlobModel(), HaarFaceDetector(), seed="nose")
    for seed in SEEDS:  # each is a choice of the command line too
        assert cli.build_parser().parse_args(["predict", "x.jpg", "--seed", seed]).seed == seed


class DriftModel(BlobModel):
    """Always the same five points in crop coordinates, ``drift`` (crop units) right of centre,
    spanning exactly the training crop rule's share of the crop: each re-crop keeps the size and
    moves the face further right, so passes disagree by a known amount."""

    def __init__(self, drift: float):
        super().__init__()
        self.drift = drift

    def forward(self, x):
        out = super().forward(x)
        h = 1.0 / get_config("facemtl_s").crop_scale  # half the side of the points' box, in crop units
        shape = torch.tensor([[-h, -h], [h, -h], [0.0, 0.0], [-0.6 * h, h], [0.6 * h, h]])
        out["landmarks"] = (shape + torch.tensor([self.drift, 0.0])).expand(x.shape[0], 5, 2)
        m = x.mean((1, 2, 3))  # attributes that depend on the crop: passes framed differently differ
        out["attributes"] = {
            t.name: torch.stack([m * k for k in range(t.num_classes)], 1) for t in self.config.tasks.attributes
        }
        return out


@pytest.mark.parametrize("refine", [0, 1, 2])
@pytest.mark.parametrize("drift, averaged", [(0.005, True), (0.1, False)])
def test_landmarks_are_the_mean_of_agreeing_passes_else_the_last_one(refine, drift, averaged):
    """Passes within AVERAGE_WITHIN (5 %) × the eye distance of the last are averaged (here 0.005 crop
    units ≈ 0.6 % of it per pass); a first crop far off (0.1 ≈ 11 %) gives the last pass, and so
    does a box seed, whose first crop is only a rough framing. The attribute probabilities follow
    the landmarks: the passes' mean where they are averaged, else the last pass's."""
    image = np.repeat(np.tile(np.linspace(0, 255, 400, dtype=np.uint8), (300, 1))[..., None], 3, 2)
    points = np.array([[130.0, 140], [170, 140], [150, 160], [138, 180], [162, 180]])
    det = [Detection((100, 100, 200, 220), 1.0, "given", points)]
    rules = {"given": BoxRule(0, 0, 0.5)}
    mean = FaceAnalyzer(DriftModel(drift), HaarFaceDetector(box_rules=rules), refine=refine, seed="points")
    last = FaceAnalyzer(
        DriftModel(drift), HaarFaceDetector(box_rules=rules), refine=refine, seed="points", average=False
    )
    first = last.landmarker.predict_boxes(image, [last.crop_box(det[0])])
    passes, probs = [first[0]], [first[1]["smile"]]
    for k in range(1, refine + 1):
        lm, p = last.landmarker.recrop(image, passes[-1], k)
        passes.append(lm)
        probs.append(p["smile"])
    assert len({round(float(p[0, 0, 0]), 3) for p in passes}) == refine + 1  # every pass moved the face
    assert len({round(float(p[0, 1]), 6) for p in probs}) == refine + 1  # and saw a different crop
    expected = np.mean(passes, axis=0) if averaged else passes[-1]
    face = mean.analyze(image, detections=det)[0]
    np.testing.assert_allclose(face.landmarks, expected[0], atol=1e-9)
    smile = (np.mean(probs, axis=0) if averaged else probs[-1])[0]
    np.testing.assert_allclose(
        [face.attributes["smile"].probs[c] for c in ("smiling", "not_smiling")], smile, atol=1e-6
    )
    np.testing.assert_allclose(last.analyze(image, detections=det)[0].landmarks, passes[-1][0], atol=1e-9)
    no_points = [Detection(det[0].box, 1.0, "given")]
    np.testing.assert_allclose(
        mean.analyze(image, detections=no_points)[0].landmarks, last.analyze(image, detections=no_points)[0].landmarks
    )
    assert cli.build_parser().parse_args(["predict", "x.jpg", "--last-pass"]).average is False


# ---------------------------------------------------------------------------------------------
# Bad input: a clear message naming the file, or an empty result — never a traceback.


@pytest.fixture()
def face_jpeg(mtfl_test_samples, tmp_path):
    """A real MTFL test face padded with a replicated border (background for the detector)."""
    s = next(x for x in mtfl_test_samples if x.attributes.get("pose") == 2)  # frontal
    img = cv2.copyMakeBorder(read_image(s.image), 75, 75, 75, 75, cv2.BORDER_REPLICATE)
    path = tmp_path / "face.jpg"
    cv2.imwrite(str(path), img, [cv2.IMWRITE_JPEG_QUALITY, 95])
    return path, s.landmarks + 75


def test_missing_empty_corrupt_and_truncated_files(tmp_path, face_jpeg):
    with pytest.raises(ImageReadError, match="nope.jpg: no such file"):
        read_image(tmp_path / "nope.jpg")
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(ImageReadError, match="empty.jpg: file is empty"):
        read_image(tmp_path / "empty.jpg")
    (tmp_path / "junk.png").write_bytes(b"\x89PNG this is not an image")
    with pytest.raises(ImageReadError, match="junk.png: cannot decode"):
        read_image(tmp_path / "junk.png")
    data = face_jpeg[0].read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="cut.jpg: cannot decode.*truncated"):
        read_image(tmp_path / "cut.jpg")
    with pytest.raises(ImageReadError, match="is a directory"):
        read_image(tmp_path)


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "I;16"])
def test_unusual_pixel_formats_read_as_bgr(tmp_path, face_jpeg, mode):
    rgb = Image.open(face_jpeg[0]).convert("RGB")
    im = Image.fromarray(np.asarray(rgb.convert("L"), np.uint16) * 257) if mode == "I;16" else rgb.convert(mode)
    path = tmp_path / f"x_{mode.replace(';', '')}.png"
    im.save(path)
    out = read_image(path)
    assert out.shape == (300, 300, 3) and out.dtype == np.uint8
    ref = cv2.cvtColor(np.asarray(rgb.convert("L")), cv2.COLOR_GRAY2BGR) if mode in ("L", "I;16") else None
    if ref is not None:
        assert np.abs(out.astype(int) - ref).max() <= 1


def test_exif_rotation_is_applied(tmp_path, face_jpeg):
    upright = Image.open(face_jpeg[0])
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # pixels stored sideways ...
    exif = Image.Exif()
    exif[0x0112] = 6  # ... with the tag that tells viewers to rotate them back
    path = tmp_path / "exif.jpg"
    stored.save(path, exif=exif, quality=95)
    out = read_image(path)
    assert out.shape[:2] == (upright.height, upright.width)
    assert np.abs(out.astype(int) - np.asarray(upright)[:, :, ::-1]).mean() < 3


def test_array_inputs_state_their_channel_order():
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[..., 0] = 255  # red in RGB
    assert to_bgr(rgb, color="rgb")[0, 0].tolist() == [0, 0, 255]
    assert to_bgr(rgb, color="bgr")[0, 0].tolist() == [255, 0, 0]
    with pytest.raises(ImageReadError, match="zero size"):
        to_bgr(np.zeros((0, 5, 3), np.uint8))
    with pytest.raises(ImageReadError, match="shape"):
        to_bgr(np.zeros((4, 4, 2), np.uint8))


def test_no_face_and_huge_images_give_empty_results(tmp_path):
    analyzer = FaceAnalyzer(BlobModel(), HaarFaceDetector())
    assert analyzer.analyze(np.full((240, 320, 3), 128, np.uint8)) == []
    huge = tmp_path / "huge.jpg"
    cv2.imwrite(str(huge), np.full((8000, 8000, 3), 90, np.uint8))
    assert analyzer.analyze(huge) == []


# ---------------------------------------------------------------------------------------------
# The real detector and the real weights.


def test_calibrated_box_rule_recovers_the_landmark_box(mtfl_test_samples):
    """Haar boxes on padded *test* faces (calibrated on training faces) → landmark boxes."""
    det = HaarFaceDetector()
    centre_err, size_ratio = [], []
    for s in mtfl_test_samples[:120]:
        img = cv2.copyMakeBorder(read_image(s.image), 75, 75, 75, 75, cv2.BORDER_REPLICATE)
        truth = crop_box_from_landmarks(s.landmarks + 75, 1.0)
        for d in det.detect(img):
            if d.contains(truth.cx, truth.cy):
                b = box_rule(det.box_rules, d).landmark_box(d)
                centre_err.append(np.hypot(b.cx - truth.cx, b.cy - truth.cy) / truth.size)
                size_ratio.append(b.size / truth.size)
                break
    assert len(centre_err) > 80
    assert np.median(centre_err) < 0.15
    assert 0.85 < np.median(size_ratio) < 1.2


def test_flip_test_answers_a_mirrored_crop_with_the_mirrored_answer():
    """Flip averaging makes any network exactly mirror-equivariant: on a mirrored crop, the left
    eye's answer is the mirrored right eye's, and head pose swaps left and right."""
    torch.manual_seed(0)
    net = create_model("facemtl_s").eval()  # untrained: the property holds for every network
    tasks = net.config.tasks
    x = torch.randn(4, 1, 64, 64).numpy()
    run = array_net(net)
    a, b = flip_averaged(run, x, tasks), flip_averaged(run, x[..., ::-1], tasks)
    plain, plain_mirrored = run(x), run(np.ascontiguousarray(x[..., ::-1]))
    perm = list(tasks.landmarks.flip_permutation())

    def mirror(lm):
        return lm[:, perm] * np.array([-1.0, 1.0], np.float32)

    np.testing.assert_allclose(a["landmarks"], mirror(b["landmarks"]), atol=1e-5, rtol=0)
    assert np.abs(plain["landmarks"] - mirror(plain_mirrored["landmarks"])).max() > 1e-3  # not by luck
    pose = [t.name for t in tasks.attributes if t.flip_permutation is not None]
    assert pose == ["pose"]
    np.testing.assert_allclose(a["attributes"]["pose"], b["attributes"]["pose"][:, [4, 3, 2, 1, 0]], atol=1e-5)
    np.testing.assert_allclose(a["attributes"]["gender"], b["attributes"]["gender"], atol=1e-5)
    np.testing.assert_allclose(np.exp(a["attributes"]["gender"]).sum(1), np.ones(4), atol=1e-5)  # log-probabilities


def test_predict_defaults_are_the_analyzers():
    """The command line runs what the Python API runs (the CLI cannot import the defaults' modules:
    parsing loads no torch)."""
    import inspect

    args = cli.build_parser().parse_args(["predict", "x.jpg"])
    params = inspect.signature(FaceAnalyzer.__init__).parameters
    for name in ("refine", "flip_test", "shift_test", "shift_views", "seed", "average", "mirror"):
        assert getattr(args, name) == params[name].default, name


def test_shift_test_views_and_bad_fractions():
    assert shift_offsets(0.05, 64) == [(0, 0), (3, 0), (-3, 0), (0, 3), (0, -3)]
    assert shift_offsets(0.005, 64) == [(0, 0)]  # under half a pixel: the crop alone
    for bad in (-0.1, 0.5):
        with pytest.raises(ValueError, match="shift_test is a fraction of the crop side"):
            Landmarker(BlobModel(), shift_test=bad)
        with pytest.raises(ValueError, match="shift_test is a fraction of the crop side"):  # evaluate's path too
            shift_offsets(bad, 64)


@pytest.mark.parametrize("detector", ["facemtl", "haar"])
def test_end_to_end_on_a_real_test_face(face_jpeg, detector):
    path, truth = face_jpeg
    faces = FaceAnalyzer.from_pretrained(detector=detector).analyze(path)
    assert len(faces) == 1
    iod = np.linalg.norm(truth[0] - truth[1])
    err = np.linalg.norm(faces[0].landmarks - truth, axis=1).mean() / iod
    # measured on this face with the shipped weights and one re-crop: facemtl's detector 0.082,
    # Haar 0.074 (0.10 = the metric's failure threshold); broken weights or a slipped crop land
    # far above 0.15
    assert err < 0.15, err
    assert set(faces[0].attributes) == {"gender", "smile", "glasses", "pose"}


def test_predict_cli_json_schema_and_exit_status(face_jpeg, tmp_path):
    path, truth = face_jpeg
    r = subprocess.run(
        [sys.executable, "-m", "facemtl", "predict", "--json", str(path), str(tmp_path / "missing.jpg")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert r.returncode == 1, r.stderr
    ok, bad = (json.loads(line) for line in r.stdout.splitlines())
    assert bad == {"image": str(tmp_path / "missing.jpg"), "error": f"{tmp_path / 'missing.jpg'}: no such file"}
    assert ok["image"] == str(path) and len(ok["faces"]) == 1
    face = ok["faces"][0]
    assert set(face) == {"box", "score", "landmarks", "attributes"}
    assert len(face["box"]) == 4 and isinstance(face["score"], float)
    assert np.asarray(face["landmarks"]).shape == (5, 2)
    assert np.linalg.norm(np.asarray(face["landmarks"]) - truth, axis=1).mean() < 5
    for a in face["attributes"].values():
        assert set(a) == {"label", "prob"} and 0 <= a["prob"] <= 1
    assert face["attributes"]["gender"]["label"] in ("male", "female")


@pytest.mark.parametrize("entry", [["-m", "facemtl", "draw"], ["scripts/draw_landmarks.py"]], ids=["cli", "script"])
def test_draw_continues_past_bad_files(face_jpeg, tmp_path, entry):
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.jpg").write_bytes(face_jpeg[0].read_bytes())
    (src / "broken.png").write_bytes(b"garbage")
    out = tmp_path / "out"
    r = subprocess.run(
        [sys.executable, *entry, str(src), "--out", str(out), "--json"],
        capture_output=True, text=True, cwd=str(ROOT),
    )  # fmt: skip
    assert r.returncode == 1
    assert "broken.png: cannot decode" in r.stderr and "Traceback" not in r.stderr
    drawn = cv2.imread(str(out / "a.jpg"))
    assert drawn.shape == (300, 300, 3)
    assert len(json.loads((out / "a.json").read_text())["faces"]) == 1


def test_onnx_export_matches_pytorch_on_real_faces(mtfl_test_samples, tmp_path):
    pytest.importorskip("onnxruntime", reason="the 'onnx' extra is not installed")
    from facemtl.data.dataset import FaceDataset
    from facemtl.models.export import export_onnx
    from facemtl.models.onnx_runtime import OnnxNet

    torch.manual_seed(0)
    model = create_model("facemtl_s").eval()
    path = export_onnx(model, tmp_path / "m.onnx")
    net = OnnxNet(path)
    assert net.config == model.config  # preprocessing travels in the ONNX metadata
    faces = FaceDataset.for_model(mtfl_test_samples[:37], model.config)  # an odd batch: dynamic axis
    x = torch.stack([faces[i]["image"] for i in range(len(faces))])
    with torch.no_grad():
        ref = model(x)
    got = net(x)
    size = model.config.input_size  # crop pixels per unit coordinate: size / 2
    assert (got["landmarks"] - ref["landmarks"]).abs().max() * size / 2 <= 1e-4 * size
    for name, logits in ref["attributes"].items():
        torch.testing.assert_close(got["attributes"][name], logits, rtol=1e-4, atol=1e-4)


def test_onnx_backend_analyzes_like_torch(face_jpeg, tmp_path):
    pytest.importorskip("onnxruntime", reason="the 'onnx' extra is not installed")
    from facemtl.models.onnx_runtime import OnnxNet

    path, _ = face_jpeg
    onnx = FaceAnalyzer.from_pretrained(backend="onnx")
    assert isinstance(onnx.model, OnnxNet)
    a, b = FaceAnalyzer.from_pretrained().analyze(path), onnx.analyze(path)
    assert len(a) == len(b) == 1
    np.testing.assert_allclose(a[0].landmarks, b[0].landmarks, atol=1e-3)
    assert a[0].attributes["pose"].label == b[0].attributes["pose"].label
    bad = tmp_path / "other.onnx"
    bad.write_bytes(b"junk")
    with pytest.raises(ValueError, match=r"other\.onnx: not a valid ONNX model"):
        OnnxNet(bad)


def test_awkward_inputs_through_the_default_detector(tmp_path, face_jpeg):
    """Every awkward input predict handles: a found face where there is one, an empty list or a
    clear error otherwise — with facemtl's own detector in the loop."""
    analyzer = FaceAnalyzer.from_pretrained()
    rgb = Image.open(face_jpeg[0]).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6
    rgb.transpose(Image.Transpose.ROTATE_90).save(tmp_path / "exif.jpg", exif=exif, quality=95)
    for mode in ("L", "RGBA"):
        rgb.convert(mode).save(tmp_path / f"x_{mode}.png")
    # a palette image as GIF and PNG encoders make them (its own 256 colours; PIL's default, the fixed
    # web palette with dithering, turns a face into noise the detector scores 0.46)
    rgb.convert("P", palette=Image.Palette.ADAPTIVE).save(tmp_path / "x_P.png")
    Image.fromarray(np.asarray(rgb.convert("L"), np.uint16) * 257).save(tmp_path / "x_16.png")
    for name in ("exif.jpg", "x_L.png", "x_RGBA.png", "x_P.png", "x_16.png"):
        faces = analyzer.analyze(tmp_path / name)
        assert len(faces) == 1, name
        assert np.linalg.norm(faces[0].landmarks - face_jpeg[1], axis=1).mean() < 8, name
    for blank in (
        np.zeros((1, 1, 3), np.uint8),
        np.full((300, 300, 3), 255, np.uint8),
        np.zeros((8000, 60, 3), np.uint8),
    ):
        assert analyzer.analyze(blank) == []
    (tmp_path / "text.jpg").write_text("hello, I am not a photo\n")
    (tmp_path / "random.png").write_bytes(np.random.default_rng(0).integers(0, 256, 4096, np.uint8).tobytes())
    data = face_jpeg[0].read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(data[: len(data) // 3])
    for name in ("text.jpg", "random.png", "truncated.jpg"):
        with pytest.raises(ImageReadError, match=name):
            analyzer.analyze(tmp_path / name)


# ---------------------------------------------------------------------------------------------
# The mirror view: the whole pipeline on the photo's mirror image, merged face by face.


def test_a_mirrored_detection_reflects_its_box_and_swaps_its_points_and_twice_is_identity():
    points = np.array([[30.0, 40], [50, 41], [42, 50], [33, 60], [49, 61]])  # left eye, right eye, nose, mouth
    det = Detection((20.0, 25.0, 60.0, 75.0), 0.9, "net", points)
    m = mirrored(det, 100)
    assert m.box == (39.0, 25.0, 79.0, 75.0)  # x → 99 − x, edges swapped
    assert m.kind == "net_mirrored" and m.score == 0.9
    np.testing.assert_allclose(m.landmarks[0], [49.0, 41.0])  # the right eye, reflected, is the new left eye
    np.testing.assert_allclose(m.landmarks[2], [57.0, 50.0])
    back = mirrored(m, 100)
    assert back.box == det.box and back.kind == "net"
    np.testing.assert_allclose(back.landmarks, points)
    # the box rule of a mirrored detection moves its offset the other way
    rule = {"net": BoxRule(0.1, 0.0, 1.0)}
    assert box_rule(rule, m).landmark_box(m).cx == pytest.approx(99 - box_rule(rule, det).landmark_box(det).cx)
    assert mirrored(Detection(det.box, 1.0, "frontal"), 100).landmarks is None


def test_views_are_averaged_where_they_agree_else_the_one_whose_passes_agree_better():
    spec = get_config("facemtl_s").tasks.landmarks
    face = np.array([[40.0, 50], [60, 50], [50, 60], [43, 70], [57, 70]])  # eye distance 20 px
    own = np.stack([face, face, face])
    close = own + [1.0, 0.0]  # 5 % of the eye distance away: within MIRROR_AGREE
    far = own + [6.0, 0.0]  # 30 % away
    steadier = np.array([0.01, 0.2, 0.05])  # own view's pass spread per face
    mirror_spread = np.array([0.02, 0.02, 0.02])
    np.testing.assert_allclose(merge_views(own, close, steadier, mirror_spread, spec), own + [0.5, 0.0])
    got = merge_views(own, far, steadier, mirror_spread, spec)
    np.testing.assert_allclose(got[0], own[0])  # own passes steadier
    np.testing.assert_allclose(got[1], far[1])  # the mirror view's steadier
    np.testing.assert_allclose(got[2], far[2])
    # the pass spread: the largest mean point distance of an earlier pass from the last, / eye distance
    np.testing.assert_allclose(pass_spread([own + [2.0, 0.0], own + [0.0, 1.0], own], spec), [0.1, 0.1, 0.1])
    np.testing.assert_allclose(pass_spread([own], spec), [0.0, 0.0, 0.0])


def test_mirror_always_gives_a_mirrored_photo_mirrored_landmarks():
    """With ``mirror="always"`` each face is analysed in both views and merged symmetrically, so the
    photo and its mirror image get mirrored landmarks (the detector and the network alone do not:
    see test_detector); and a face's merged landmarks stay close to the single view's."""
    import matplotlib.cbook as cbook

    photo = cv2.imread(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    flipped = np.ascontiguousarray(photo[:, ::-1])
    w = photo.shape[1]
    analyzer = FaceAnalyzer.from_pretrained(mirror="always")
    a, b = analyzer.analyze(photo), analyzer.analyze(flipped)
    assert len(a) >= 1 and len(b) >= 1
    perm = get_config("facemtl_s").tasks.landmarks.flip_permutation()
    expected = a[0].landmarks[perm] * (-1, 1) + (w - 1, 0)  # her face: the surest in the photo
    mirror = min(b, key=lambda f: np.abs(f.landmarks - expected).max())  # and in the mirror image
    np.testing.assert_allclose(mirror.landmarks, expected, atol=1e-6)
    single = FaceAnalyzer.from_pretrained(mirror="never").analyze(photo)[0].landmarks
    iod = np.linalg.norm(single[0] - single[1])
    assert 0 < np.linalg.norm(a[0].landmarks - single, axis=1).mean() < 0.1 * iod
    assert cli.build_parser().parse_args(["predict", "x.jpg", "--mirror", "always"]).mirror == "always"
    assert cli.build_parser().parse_args(["predict", "x.jpg"]).mirror == "auto"
    with pytest.raises(ValueError, match="mirror must be one of never, auto, always"):
        FaceAnalyzer.from_pretrained(mirror=True)


class CountingDetector:
    """A detector that always finds the same face and counts the photos it is shown."""

    box_rules = {"given": BoxRule(0, 0, 0.5)}

    def __init__(self, det: Detection):
        self.det, self.calls = det, 0

    def detect(self, image_bgr):
        self.calls += 1
        return [self.det]


@pytest.mark.parametrize("drift, looks_again", [(0.005, False), (0.1, True)])
def test_mirror_auto_looks_again_only_where_the_passes_disagree(drift, looks_again):
    """``auto`` runs the mirror view only for a photo with a face whose passes disagree beyond
    AVERAGE_WITHIN (a first crop framed far off), and ``never`` not at all."""
    image = np.zeros((300, 400, 3), np.uint8)
    points = np.array([[190.0, 140], [210, 140], [200, 160], [192, 180], [208, 180]])
    det = Detection((150, 100, 250, 220), 1.0, "given", points)
    calls = {}
    for mode in ("never", "auto", "always"):
        detector = CountingDetector(det)
        FaceAnalyzer(DriftModel(drift), detector, seed="points", mirror=mode).analyze(image)
        calls[mode] = detector.calls
    assert calls == {"never": 1, "auto": 2 if looks_again else 1, "always": 2}
