"""Torch datasets over :class:`FaceSample` lists.

Decoding a JPEG costs far more than augmenting a 96-pixel crop, so by default every face is
decoded and cropped once (``CACHE_MARGIN`` × the canonical crop, in the model's colour layout,
uint8; 10,000 faces at 96 px gray are 92 MB) and each epoch augments those cached crops afresh.
``cache=False`` decodes each face every time it is drawn instead: no start-up cost and no memory,
for sets too large to hold (``bench/training_scaling.py`` measures both).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import numpy as np
import torch

from facemtl.data.samples import MISSING, FaceSample
from facemtl.data.sampling import EpochDataset
from facemtl.geometry import CropTransform, crop_box_from_landmarks, to_unit
from facemtl.imageio import read_image
from facemtl.models.config import ModelConfig
from facemtl.tasks import TaskSet
from facemtl.transforms import CACHE_MARGIN, TrainAugment, cache_size, to_channels, to_tensor
from facemtl.types import FaceBatch


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
    """The landmark-rule crop of one face (known without decoding its image)."""
    return CropTransform.from_box(crop_box_from_landmarks(sample.points, crop_scale).scaled(margin), out_size)


def crop_faces(
    samples: Sequence[FaceSample],
    *,
    out_size: int,
    crop_scale: float,
    channels: int,
    margin: float = 1.0,
    threads: int = 2,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Crop every face by the landmark rule: ``(N, S, S[, 3])`` uint8 and landmarks in crop pixels.

    ``margin`` widens the canonical box (``CACHE_MARGIN`` for training caches, 1 for evaluation).
    """
    k = samples[0].points.shape[0]
    crops = np.empty((len(samples), out_size, out_size) + ((3,) if channels == 3 else ()), np.uint8)
    points = np.empty((len(samples), k, 2), np.float32)

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
        if cache:
            self.crops, self.points = crop_faces(
                samples, out_size=size, crop_scale=crop_scale, channels=channels, margin=margin, progress=progress
            )
        else:
            self.points = np.stack(
                [_crop_transform(s, size, crop_scale, margin).apply(s.points) for s in samples]
            ).astype(np.float32)
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
        if self.augment is not None:
            seed = (self.seed * 1_000_003 + self.epoch) * 10_000_019 + i
            image, points, attrs = self.augment(image, points, attrs, seed % 2**63)
        return {
            "image": to_tensor(image[None], self.mean, self.std)[0],
            "landmarks": torch.from_numpy(to_unit(points, self.input_size)),
            "landmark_mask": torch.tensor(True),
            "attributes": torch.from_numpy(np.asarray(attrs, dtype=np.int64)),
        }
