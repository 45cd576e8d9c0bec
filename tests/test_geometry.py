"""Crop geometry: the image ↔ crop mapping is exact, including borders and large downscales."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facemtl.core.geometry import Box, CropTransform, area_factor, crop_box_from_landmarks, from_unit, to_unit


def _dot_image(h, w, x, y):
    img = np.zeros((h, w), np.uint8)
    img[y, x] = 255
    return img


@pytest.mark.parametrize("angle", [0.0, 30.0])
def test_apply_invert_round_trip(angle):
    t = CropTransform.from_box(Box(100.3, 80.7, 57.0), 64, angle)
    p = np.array([[90.0, 70.0], [120.5, 99.25], [0, 0]])
    np.testing.assert_allclose(t.invert(t.apply(p)), p, atol=1e-9)


def test_box_centre_lands_on_crop_centre():
    t = CropTransform.from_box(Box(50.0, 40.0, 32.0), 64)
    np.testing.assert_allclose(t.apply([[50.0, 40.0]]), [[31.5, 31.5]])


@pytest.mark.parametrize(
    "box",
    [Box(50, 50, 40), Box(3, 4, 30), Box(195, 190, 60)],  # inside, off the top-left, off the bottom-right
)
def test_warp_moves_pixels_where_points_go(box):
    # A crop that maps 1 image px to 2 crop px: the dot's crop position is exactly predictable,
    # also when the box reaches past the image border (the dot itself is never on the border row).
    x, y = int(box.cx) + 3, int(box.cy) - 2
    img = _dot_image(200, 200, x, y)
    t = CropTransform.from_box(box, int(box.size * 2))
    crop = t.warp(img).astype(float)
    ys, xs = np.nonzero(crop > 0)
    w = crop[ys, xs]
    found = np.array([(xs * w).sum() / w.sum(), (ys * w).sum() / w.sum()])
    np.testing.assert_allclose(found, t.apply([[x, y]])[0], atol=0.05)


def test_downscaled_warp_keeps_geometry():
    # A smooth blob (σ = 24 px) cropped with a 1/8 downscale (the two-step anti-aliased path);
    # a smooth blob's centroid survives resampling, so any offset would be a geometry error.
    ys, xs = np.mgrid[:800, :800]
    img = (255 * np.exp(-((xs - 319.5) ** 2 + (ys - 399.5) ** 2) / (2 * 24.0**2))).astype(np.uint8)
    t = CropTransform.from_box(Box(400, 400, 512), 64)
    crop = t.warp(img).astype(float)
    ys, xs = np.mgrid[:64, :64]
    found = np.array([(xs * crop).sum() / crop.sum(), (ys * crop).sum() / crop.sum()])
    np.testing.assert_allclose(found, t.apply([[319.5, 399.5]])[0], atol=0.02)


@pytest.mark.parametrize("box", [Box(700, 740, 512), Box(60, 500, 700)])
def test_downscaled_warp_reads_only_its_region(box):
    """The two-step path resizes only the region the crop reads (the second box leaves the image);
    the result matches resizing the whole image, to a grey level."""
    ys, xs = np.mgrid[:800, :800]
    img = (127 + 100 * np.sin(xs / 37.0) * np.cos(ys / 53.0)).astype(np.uint8)
    t = CropTransform.from_box(box, 64)
    f = 1 / area_factor(t.scale)
    whole = cv2.resize(img, (round(800 * f), round(800 * f)), interpolation=cv2.INTER_AREA)
    fx = 800 / whole.shape[1]
    pre = np.array([[fx, 0, 0.5 * fx - 0.5], [0, fx, 0.5 * fx - 0.5], [0, 0, 1]])
    m = (np.vstack([t.matrix, [0, 0, 1]]) @ pre)[:2]
    ref = cv2.warpAffine(whole, m, (64, 64), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    assert np.abs(t.warp(img).astype(int) - ref).max() <= 3


def test_downscaled_warp_wholly_outside_replicates_the_image_edge():
    ys, xs = np.mgrid[:800, :800]
    img = (127 + 100 * np.sin(xs / 37.0) * np.cos(ys / 53.0)).astype(np.uint8)  # column 0 is all 127
    assert (CropTransform.from_box(Box(-3000, 400, 600), 64).warp(img) == 127).all()


def test_unit_coordinates_round_trip():
    p = np.array([[0.0, 63.0], [31.5, 10.25]])
    np.testing.assert_allclose(from_unit(to_unit(p, 64), 64), p, atol=1e-5)
    np.testing.assert_allclose(to_unit([[31.5, 31.5]], 64), [[0, 0]], atol=1e-7)


def test_landmark_crop_rule():
    lm = np.array([[10, 10], [30, 10], [20, 20], [12, 30], [28, 30]], float)
    b = crop_box_from_landmarks(lm, 2.0)
    assert (b.cx, b.cy, b.size) == (20.0, 20.0, 40.0)


@pytest.mark.parametrize("scale", [0.49, 0.337, 0.25, 0.2, 0.126, 0.05])
def test_area_factor_leaves_the_warp_shrinking_by_one_to_two(scale):
    """The whole area factor before a strong shrink: after it the bilinear warp shrinks by at most
    2 (no aliasing) and never enlarges (no resolution thrown away)."""
    k = area_factor(scale)
    assert 0.5 <= scale * k < 1.0
    assert area_factor(0.5) == area_factor(0.7) == 1
