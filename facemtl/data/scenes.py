"""Training scenes for the face detector, composed on the fly from labelled photos.

No face-detection set with many faces per photo exists here, so scenes are built from the
face-photos files of :mod:`facemtl.data.photos`: one photo at a random scale (faces from ~10 px to
the whole frame, the rest of the canvas a replicated or plain border), a close-up, a
mosaic of k × k photos (crowds of small faces; some tiles empty, face-free background or a photo of
people without a face), or a photo of people whole at about its own scale (``whole`` photos: hands,
knees, streets — what face-centred photos never show, faceless ones included) — then rotation,
flips (left/right landmarks swapped), blur, noise, lighting and gray.

Every scene is a pure function of ``(seed, epoch, index)``, so a resumed run replays the same data.
Photos are decoded once into memory, downscaled so their longer side is at most ``cache_side``.
Faces that leave the canvas by more than half, are smaller than ``min_face`` px, or that the
teacher was unsure of, become ignored regions (no reward, no penalty).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from facemtl.core.geometry import affine_scale, area_prescaled, downscale, mirror_boxes, mirror_points
from facemtl.core.images import read_image
from facemtl.core.tasks import MTFL5
from facemtl.core.types import SceneBatch
from facemtl.data.photos import PhotoSample
from facemtl.data.sampling import EpochDataset
from facemtl.training.config import SceneConfig

#: Faces per scene the batch tensors hold (a scene's extra faces become ignored regions).
MAX_FACES = 64


def _decode(photo: PhotoSample, side: int) -> tuple[np.ndarray, float]:
    """The photo as BGR, downscaled to ``side`` (twice that for a whole photo, which scenes may
    show larger than the canvas); the factor applied."""
    return downscale(read_image(photo.image), 2 * side if photo.whole else side)


@dataclass
class Scene:
    image: np.ndarray  # (S, S, 3) uint8 BGR
    boxes: np.ndarray  # (M, 4) xyxy
    landmarks: np.ndarray  # (M, 5, 2)
    has_landmarks: np.ndarray  # (M,) bool
    ignore: np.ndarray  # (M,) bool


def _similarity(scale: float, angle_deg: float, src_centre: np.ndarray, dst_centre: np.ndarray) -> np.ndarray:
    m = cv2.getRotationMatrix2D((float(src_centre[0]), float(src_centre[1])), angle_deg, scale)
    m[:, 2] += dst_centre - src_centre
    return m


class SceneDataset(EpochDataset):
    """Detector training data: ``image`` (3, S, S) normalised, and per scene up to
    :data:`MAX_FACES` faces padded with ``face_mask`` False: ``boxes`` (M, 4), ``landmarks``
    (M, 5, 2) with ``landmark_mask``, ``ignore``.

    ``fixed=True`` draws the same scenes every epoch (validation)."""

    def __init__(
        self,
        photos: Sequence[PhotoSample],
        config: SceneConfig = SceneConfig(),
        *,
        mean: float = 0.5,
        std: float = 0.5,
        seed: int = 0,
        fixed: bool = False,
        length: int | None = None,
        threads: int = 2,
        progress: bool = False,
    ):
        self.photos = list(photos)
        if not self.photos:
            raise ValueError("a scene dataset needs at least one photo")
        self.cfg, self.mean, self.std, self.seed, self.fixed = config, mean, std, seed, fixed
        self.length = length or len(self.photos)
        with ThreadPoolExecutor(threads) as pool:
            it = pool.map(lambda p: _decode(p, config.cache_side), self.photos)
            if progress:
                from tqdm import tqdm

                it = tqdm(it, total=len(self.photos), desc="decoding photos", leave=False, disable=None)
            decoded = list(it)
        self.images = [d[0] for d in decoded]
        self.factors = np.array([d[1] for d in decoded])
        faceful = np.flatnonzero([p.num_faces > 0 for p in self.photos])
        self._drawable = faceful if len(faceful) else np.arange(len(self.photos))  # photos a scene draws
        self._whole = np.flatnonzero([p.whole for p in self.photos])
        self._faceless = np.flatnonzero([p.whole and not (~p.ignore).any() for p in self.photos])

    def __len__(self) -> int:
        return self.length

    # -- composing ------------------------------------------------------------------------------
    def _faces(self, i: int, m: np.ndarray) -> tuple[np.ndarray, ...]:
        """Photo ``i``'s faces mapped by the 2×3 matrix ``m`` (from original photo pixels via the cache)."""
        p, f = self.photos[i], self.factors[i]
        pre = np.array([[f, 0, 0.5 * f - 0.5], [0, f, 0.5 * f - 0.5]])  # original → cached pixels
        full = np.vstack([m, [0, 0, 1]]) @ np.vstack([pre, [0, 0, 1]])
        a, t = full[:2, :2], full[:2, 2]
        scale = float(np.sqrt(abs(np.linalg.det(a))))
        c = (p.boxes[:, :2] + p.boxes[:, 2:]) / 2 @ a.T + t
        half = (p.boxes[:, 2:] - p.boxes[:, :2]) / 2 * scale
        boxes = np.concatenate([c - half, c + half], 1)
        lms = p.landmarks @ a.T + t
        return boxes, lms, p.has_landmarks.copy(), p.ignore.copy()

    def _paste(self, rng: np.random.Generator, canvas: np.ndarray, i: int, m: np.ndarray, border: int) -> None:
        """Photo ``i`` warped onto the canvas by ``m``; a strong shrink is area-resized first (as
        inference's letterbox does), so a small face looks as it does in a downscaled photo, not aliased."""
        value = tuple(int(v) for v in rng.integers(0, 256, 3))
        image, m = area_prescaled(self.images[i], m, affine_scale(m))
        cv2.warpAffine(
            image,
            m,
            canvas.shape[1::-1],
            dst=canvas,
            flags=cv2.INTER_LINEAR,
            borderMode=border,
            borderValue=value,
        )

    def _background(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """A face-free canvas: a plain colour, a gradient, or a blurred stretch of a photo's corner."""
        kind = rng.integers(3)
        if kind == 0:
            return np.full((size, size, 3), rng.integers(0, 256, 3), np.uint8)
        if kind == 1:
            g = np.linspace(0, 1, size, dtype=np.float32)[:, None, None]
            a, b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
            img = (a + (b - a) * g) * np.ones((1, size, 1), np.float32)
            return img.astype(np.uint8)
        img = self.images[int(rng.integers(len(self.images)))]
        h, w = img.shape[:2]
        patch = img[: max(2, h // 5), : max(2, w // 5)]  # a corner: rarely a face
        return cv2.GaussianBlur(cv2.resize(patch, (size, size)), (0, 0), 2.0)

    def _draw_photo(self, rng: np.random.Generator) -> int:
        """A photo with at least one face (any photo when none has one)."""
        return int(rng.choice(self._drawable))

    def compose(self, index: int) -> Scene:
        c = self.cfg
        S = c.size
        rng = np.random.default_rng([self.seed, 0 if self.fixed else self.epoch, index, 99])
        canvas = self._background(rng, S)
        parts: list[tuple[np.ndarray, ...]] = []
        u = rng.random()
        angle = float(rng.uniform(-c.max_angle, c.max_angle)) if rng.random() < c.rotate else 0.0
        if u < c.whole and len(self._whole):
            i = int(rng.choice(self._whole))
            f = self.factors[i]
            h, w = self.images[i].shape[:2]
            scale = float(np.exp(rng.uniform(*np.log(c.whole_scale)))) / f  # cached → canvas pixels
            # a random point of the photo lands at a random point of the canvas's middle: crops of a
            # larger photo, the whole of a smaller one with a plain or replicated border
            src = rng.uniform(0.25, 0.75, 2) * (w, h)
            dst = rng.uniform(0.25, 0.75, 2) * S
            if max(h, w) * scale <= S:  # it fits: keep it whole
                src, dst = np.array([w / 2, h / 2]), rng.uniform(0.4, 0.6, 2) * S
            m = _similarity(scale, angle, src, dst)
            replicate = int(rng.integers(2)) == 0 and c.whole_replicate
            self._paste(rng, canvas, i, m, cv2.BORDER_REPLICATE if replicate else cv2.BORDER_CONSTANT)
            parts.append(self._faces(i, m))
        elif u < c.whole + c.single + c.close_up:
            i = self._draw_photo(rng)
            p, f = self.photos[i], self.factors[i]
            j = int(rng.integers(p.num_faces)) if p.num_faces else None
            if j is not None:
                b = p.boxes[j] * f
                face = float(np.sqrt((b[2] - b[0]) * (b[3] - b[1])))
                centre = (b[:2] + b[2:]) / 2
                if u < c.whole + c.single:
                    lo, hi = c.face_range
                    target = float(np.exp(rng.uniform(np.log(lo), np.log(min(hi, S * 0.8)))))
                    dst = rng.uniform(0.1 * S, 0.9 * S, 2)
                else:
                    target = float(rng.uniform(0.5, 1.0)) * S
                    dst = S / 2 + rng.uniform(-0.15, 0.15, 2) * S
                scale = target / max(face, 1.0)
            else:
                h, w = self.images[i].shape[:2]
                centre, scale, dst = np.array([w / 2, h / 2]), S / max(h, w) * rng.uniform(0.5, 1.5), np.full(2, S / 2)
            m = _similarity(scale, angle, centre, dst)
            # replicated or plain border (a mirrored border would copy faces without labels)
            border = (cv2.BORDER_REPLICATE, cv2.BORDER_CONSTANT)[int(rng.integers(2))]
            self._paste(rng, canvas, i, m, border)
            parts.append(self._faces(i, m))
        else:
            k = int(rng.integers(c.grid[0], c.grid[1] + 1))
            cell = S / k
            for r in range(k):
                for q in range(k):
                    if rng.random() < c.empty_tile:
                        if not len(self._faceless) or rng.random() < 0.5:
                            continue  # the canvas's face-free background
                        i = int(rng.choice(self._faceless))  # hands, knees, streets
                    else:
                        i = self._draw_photo(rng)
                    h, w = self.images[i].shape[:2]
                    scale = cell / max(h, w) * float(rng.uniform(0.75, 1.1))
                    dst = np.array([(q + 0.5) * cell, (r + 0.5) * cell]) + rng.uniform(-0.1, 0.1, 2) * cell
                    m = _similarity(scale, angle, np.array([w / 2, h / 2]), dst)
                    self._paste(rng, canvas, i, m, cv2.BORDER_TRANSPARENT)
                    parts.append(self._faces(i, m))
        if parts:
            boxes, lms, has, ign = (np.concatenate(x) for x in zip(*parts, strict=True))
        else:
            boxes, lms, has, ign = np.zeros((0, 4)), np.zeros((0, 5, 2)), np.zeros(0, bool), np.zeros(0, bool)
        if rng.random() < c.flip:
            canvas = canvas[:, ::-1].copy()
            boxes, lms = mirror_boxes(boxes, S), mirror_points(lms, S, MTFL5.flip_permutation())
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        clipped = np.clip(boxes, -0.5, S - 0.5)
        visible = (
            (clipped[:, 2] - clipped[:, 0]).clip(0) * (clipped[:, 3] - clipped[:, 1]).clip(0) / np.maximum(area, 1e-6)
        )
        small = np.sqrt(np.maximum(area, 0)) < c.min_face
        ign = ign | small | (visible < c.min_visible)
        keep = visible > 0
        canvas = self._photometric(rng, canvas)
        return Scene(canvas, clipped[keep], lms[keep], has[keep] & ~ign[keep], ign[keep])

    def _photometric(self, rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
        c = self.cfg
        x: np.ndarray = img.astype(np.float32)
        if rng.random() < c.lighting:
            x = x * rng.uniform(0.6, 1.4) + rng.uniform(-40, 40) + rng.uniform(-12, 12, 3)
        if rng.random() < c.gray:
            x = np.repeat(x @ np.array([[0.114], [0.587], [0.299]], np.float32), 3, 2)
        if rng.random() < c.blur:
            x = cv2.GaussianBlur(x, (0, 0), float(rng.uniform(0.5, 2.0)))
        if rng.random() < c.noise:
            x = x + rng.normal(0, rng.uniform(3, 12), x.shape).astype(np.float32)
        return np.clip(x, 0, 255).astype(np.uint8)

    def __getitem__(self, index: int) -> SceneBatch:
        s = self.compose(index)
        return scene_tensors(s, self.mean, self.std)


def scene_tensors(s: Scene, mean: float, std: float) -> SceneBatch:
    """A scene as fixed-size tensors (faces padded to :data:`MAX_FACES`)."""
    n = min(len(s.boxes), MAX_FACES)
    boxes = np.zeros((MAX_FACES, 4), np.float32)
    lms = np.zeros((MAX_FACES, 5, 2), np.float32)
    mask = np.zeros(MAX_FACES, bool)
    lm_mask = np.zeros(MAX_FACES, bool)
    ignore = np.zeros(MAX_FACES, bool)
    boxes[:n], lms[:n], mask[:n], lm_mask[:n], ignore[:n] = (
        s.boxes[:n],
        s.landmarks[:n],
        True,
        s.has_landmarks[:n],
        s.ignore[:n],
    )
    image = torch.from_numpy(np.ascontiguousarray(s.image[:, :, ::-1].transpose(2, 0, 1)))  # BGR → RGB, CHW
    return {
        "image": (image.float() / 255.0 - mean) / std,
        "boxes": torch.from_numpy(boxes),
        "face_mask": torch.from_numpy(mask),
        "landmarks": torch.from_numpy(lms),
        "landmark_mask": torch.from_numpy(lm_mask),
        "ignore": torch.from_numpy(ignore),
    }
