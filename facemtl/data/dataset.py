"""Torch datasets over :class:`FaceSample` lists.

Decoding a JPEG costs far more than augmenting a 96-pixel crop, so by default every face is
decoded and cropped once (``CACHE_MARGIN`` × the canonical crop, in the model's colour layout,
uint8; 10,000 faces at 96 px gray are 92 MB) and each epoch augments those cached crops afresh.
``cache=False`` decodes each face every time it is drawn instead: no start-up cost and no memory,
for sets too large to hold (``experiments/studies/training_scaling.py`` measures both).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import numpy as np
import torch

from facemtl.core.geometry import CropTransform, crop_box_from_landmarks, to_unit
from facemtl.core.images import read_image, to_channels
from facemtl.core.tasks import TaskSet, mtfl5_points
from facemtl.core.types import FaceBatch
from facemtl.data.augment import CACHE_MARGIN, TrainAugment, cache_size, to_tensor
from facemtl.data.samples import MISSING, FaceSample
from facemtl.data.sampling import EpochDataset
from facemtl.models.config import ModelConfig


def attribute_matrix(samples: Sequence[FaceSample], tasks: TaskSet) -> np.ndarray:
    """``(N, T)`` int64 class indices, ``MISSING`` where a sample lacks a task's label."""
    out = np.full((len(samples), len(tasks.attributes)), MISSING, dtype=np.int64)
    for i, s in enumerate(samples):
        for j, name in enumerate(tasks.attribute_names):
            out[i, j] = s.attribute(name)
    return out


def crop_face(
    sample: FaceSample, *, out_size: int, crop_scale: float, channels: int, margin: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Decode one face and crop it by the landmark rule: ``(S, S[, 3])`` uint8 and its landmarks
    in crop pixels."""
    t = _crop_transform(sample, out_size, crop_scale, margin)
    return to_channels(t.warp(read_image(sample.image)), channels), t.apply(sample.points)


def _crop_transform(sample: FaceSample, out_size: int, crop_scale: float, margin: float) -> CropTransform:
    """The landmark-rule crop of one face (known without decoding its image): the rule reads the
    five MTFL points of any markup, so 5- and 68-point faces are framed alike."""
    box = crop_box_from_landmarks(mtfl5_points(sample.points), crop_scale)
    return CropTransform.from_box(box.scaled(margin), out_size)


def padded_points(points: Sequence[np.ndarray], k: int) -> tuple[np.ndarray, np.ndarray]:
    """Faces of ``k`` points and faces of only the five MTFL points as one ``(N, k, 2)`` array
    (the five in the first slots, zeros after) and ``(N,)`` bool: which faces have only five."""
    out = np.zeros((len(points), k, 2), np.float32)
    five = np.array([len(p) != k for p in points], bool)
    for i, p in enumerate(points):
        out[i, : len(p)] = p
    return out, five


def crop_faces(
    samples: Sequence[FaceSample],
    *,
    out_size: int,
    crop_scale: float,
    channels: int,
    margin: float = 1.0,
    threads: int = 2,
    progress: bool = False,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Crop every face by the landmark rule: ``(N, S, S[, 3])`` uint8 and each face's points in
    crop pixels (its own count: :func:`padded_points` stacks 5- and 68-point faces).

    ``margin`` widens the canonical box (``CACHE_MARGIN`` for training caches, 1 for evaluation).
    """
    crops = np.empty((len(samples), out_size, out_size) + ((3,) if channels == 3 else ()), np.uint8)
    points: list[np.ndarray] = [np.empty(0)] * len(samples)

    def work(i: int) -> None:
        crops[i], points[i] = crop_face(
            samples[i], out_size=out_size, crop_scale=crop_scale, channels=channels, margin=margin
        )

    with ThreadPoolExecutor(threads) as pool:
        it = pool.map(work, range(len(samples)))
        if progress:
            from tqdm import tqdm

            it = tqdm(it, total=len(samples), desc="decoding faces", leave=False, disable=None)  # off when not a TTY
        for _ in it:
            pass
    return crops, points


class FaceDataset(EpochDataset):
    """Faces ready for the network: ``image`` (C, S, S) float, ``landmarks`` (K, 2) in unit crop
    coordinates, ``attributes`` (T,) class indices with -1 for missing.

    A model of more than five points (68) also takes faces annotated with only the five MTFL
    points: their ``landmarks`` hold the five in the first slots and ``landmark_five`` is True, so
    the loss compares them with the model's five derived points (:meth:`LandmarkSpec.mtfl5`).

    With ``augment`` set, samples are augmented as a pure function of (seed, epoch, index), so a
    resumed run sees exactly the batches the uninterrupted run would have seen. ``cache=False``
    decodes on every access (same crops, bit for bit).
    """

    def __init__(
        self,
        samples: Sequence[FaceSample],
        tasks: TaskSet,
        *,
        input_size: int,
        crop_scale: float,
        channels: int,
        mean: float,
        std: float,
        augment: TrainAugment | None = None,
        seed: int = 0,
        cache: bool = True,
        progress: bool = False,
    ):
        self.tasks = tasks
        self.input_size = input_size
        self.mean, self.std = mean, std
        self.augment = augment
        self.seed = seed
        size = cache_size(input_size) if augment else input_size
        margin = size / input_size if augment else 1.0
        assert not augment or abs(margin - CACHE_MARGIN) < 0.1
        self._crop = partial(crop_face, out_size=size, crop_scale=crop_scale, channels=channels, margin=margin)
        self.crops: np.ndarray | None = None
        self.samples: Sequence[FaceSample] = list(samples)
        spec = tasks.landmarks
        for s in samples:
            if len(s.points) != spec.num_points and not (len(s.points) == 5 and spec.to_mtfl5 is not None):
                raise ValueError(
                    f"{s.source}: {len(s.points)} landmarks; a {spec.num_points}-point model takes faces "
                    f"of {spec.num_points}" + (" or 5 points" if spec.to_mtfl5 is not None else " points")
                )
        if cache:
            self.crops, points = crop_faces(
                samples, out_size=size, crop_scale=crop_scale, channels=channels, margin=margin, progress=progress
            )
        else:
            points = [_crop_transform(s, size, crop_scale, margin).apply(s.points) for s in samples]
        self.points, self.five = padded_points(points, spec.num_points)
        self.annotated = np.array([s.landmarks is not None for s in samples], bool)
        self.attributes = attribute_matrix(samples, tasks)

    @classmethod
    def for_model(cls, samples: Sequence[FaceSample], config: ModelConfig, **kw) -> FaceDataset:
        """A dataset prepared exactly as ``config`` (a model's config) expects its input."""
        c = config
        return cls(
            samples,
            c.tasks,
            input_size=c.input_size,
            crop_scale=c.crop_scale,
            channels=c.channels,
            mean=c.mean,
            std=c.std,
            **kw,
        )

    def __len__(self) -> int:
        return len(self.points)

    def __getitem__(self, i: int) -> FaceBatch:
        if self.crops is not None:
            image, points = self.crops[i], self.points[i]
        else:
            image, points = self._crop(self.samples[i])
        attrs = self.attributes[i]
        five = bool(self.five[i])
        if self.augment is not None:
            seed = (self.seed * 1_000_003 + self.epoch) * 10_000_019 + i
            n = 5 if five else len(points)
            image, moved, attrs = self.augment(image, points[:n], attrs, seed % 2**63)
            points = np.concatenate([moved, np.zeros_like(points[n:])])
        unit = to_unit(points, self.input_size)
        if five:
            unit[5:] = 0.0  # padding stays zero (finite, so masked gradients stay zero)
        return {
            "image": to_tensor(image[None], self.mean, self.std)[0],
            "landmarks": torch.from_numpy(unit),
            "landmark_mask": torch.tensor(bool(self.annotated[i])),
            "landmark_five": torch.tensor(five),
            "attributes": torch.from_numpy(np.asarray(attrs, dtype=np.int64)),
        }
