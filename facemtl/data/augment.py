"""Input preparation and augmentation.

The crop rule (see :mod:`facemtl.core.geometry`): the canonical crop is a square of side
``crop_scale × max(landmark box width, height)`` centred on the landmarks' bounding box. Evaluation
uses exactly that box; inference maps a detector box onto it. Training first caches a wider crop
(``CACHE_MARGIN`` × the canonical box, same centre) once per face, then per epoch applies a random
flip, a random affine jitter of that crop (rotation, scale, shift, so the model tolerates imperfect
detector boxes) and a centre crop back to the canonical field of view, then photometric changes.

albumentations' ``HorizontalFlip`` does not know that a flipped left eye becomes the right eye,
so flipping is done here: image columns reversed, x → W − 1 − x, left/right landmark indices
swapped and the pose label mirrored.
"""

from __future__ import annotations

import albumentations as A
import cv2
import numpy as np
import torch

from facemtl.core.geometry import mirror_points
from facemtl.core.images import to_array
from facemtl.core.tasks import TaskSet, spec_for_points
from facemtl.training.config import AugmentConfig

#: The training cache holds this multiple of the canonical crop, room for rotation and shifts.
CACHE_MARGIN = 1.5


def cache_size(input_size: int) -> int:
    """Side of the cached crop: about ``CACHE_MARGIN × input_size`` with an even border."""
    border = round(input_size * (CACHE_MARGIN - 1) / 2)
    return input_size + 2 * border


def to_tensor(crops: np.ndarray, mean: float, std: float) -> torch.Tensor:
    """:func:`to_array` as a tensor."""
    return torch.from_numpy(to_array(crops, mean, std))


def hflip(
    image: np.ndarray, landmarks: np.ndarray, attributes: np.ndarray, tasks: TaskSet
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mirror a face: pixels, landmark x (W − 1 − x), left/right landmark slots, flip-aware labels.

    ``attributes`` holds one class index per attribute task (``-1`` = missing). ``landmarks`` are
    in the tasks' markup, or the five MTFL points (a 5-point face training a 68-point model).
    """
    w = image.shape[1]
    image = np.ascontiguousarray(image[:, ::-1])
    spec = tasks.landmarks if len(landmarks) == tasks.landmarks.num_points else spec_for_points(len(landmarks))
    lm = mirror_points(landmarks, w, spec.flip_permutation())
    attrs = attributes.copy()
    for i, task in enumerate(tasks.attributes):
        if task.flip_permutation is not None and attrs[i] >= 0:
            attrs[i] = task.flip_permutation[attrs[i]]
    return image, lm, attrs


class TrainAugment:
    """Random flip + affine jitter + centre crop + photometric changes, on a cached crop."""

    def __init__(self, tasks: TaskSet, input_size: int, config: AugmentConfig = AugmentConfig()):
        self.tasks = tasks
        self.config = config

        def geometric(rotate: float) -> list[A.BasicTransform]:
            affine = A.Affine(
                scale=config.scale,
                translate_percent=(-config.shift, config.shift),
                rotate=(-rotate, rotate),
                border_mode=cv2.BORDER_REPLICATE,
                p=1.0,
            )
            return [affine, A.CenterCrop(input_size, input_size)]

        photometric = [
            A.RandomBrightnessContrast(brightness_limit=0.3, contrast_limit=0.3, p=0.8),
            A.RandomGamma(gamma_limit=(70, 150), p=0.3),
            A.OneOf([A.GaussianBlur(blur_limit=(3, 5)), A.MotionBlur(blur_limit=(3, 5))], p=0.2),
            A.GaussNoise(std_range=(0.01, 0.05), p=0.2),
            A.ImageCompression(quality_range=(30, 90), p=0.2),
        ]

        def compose(rotate: float) -> A.Compose:
            return A.Compose(
                geometric(rotate) + (photometric if config.photometric else []),
                keypoint_params=A.KeypointParams(format="xy", remove_invisible=False),
                seed=0,
            )

        self.pipeline = compose(config.rotate)
        self.any_rotation_pipeline = compose(180.0) if config.any_rotation > 0 else None

    def __call__(
        self, image: np.ndarray, landmarks: np.ndarray, attributes: np.ndarray, seed: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One augmented sample, a pure function of ``seed`` (so runs and resumes reproduce);
        ``landmarks`` in the tasks' markup or the five MTFL points (see :func:`hflip`)."""
        rng = np.random.default_rng(seed)
        if rng.random() < self.config.flip:
            image, landmarks, attributes = hflip(image, landmarks, attributes, self.tasks)
        pipeline = self.pipeline
        if self.any_rotation_pipeline is not None and rng.random() < self.config.any_rotation:
            pipeline = self.any_rotation_pipeline
        pipeline.set_random_seed(int(rng.integers(2**31)))
        out = pipeline(image=image, keypoints=landmarks)
        return out["image"], np.asarray(out["keypoints"], dtype=np.float32)[:, :2], attributes
