"""The landmark network on square crops of one photo: a first crop, re-crops from its own
landmarks, and the passes combined.

Kept apart from :mod:`facemtl.analysis.analyzer` so that what runs the network on crops knows nothing of
detectors, mirror views or output records: the benches call it directly on ground-truth crops,
and :class:`~facemtl.analysis.analyzer.FaceAnalyzer` calls it once per view of a photo.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from facemtl.analysis.combine import combine_passes, pass_spread
from facemtl.analysis.options import DEFAULTS
from facemtl.analysis.views import ViewSet, shift_offsets, softmax, test_time_averaged
from facemtl.core.geometry import Box, CropTransform, crop_box_from_landmarks, from_unit
from facemtl.core.images import to_array, to_channels
from facemtl.models.arrays import array_net
from facemtl.models.config import ModelConfig

if TYPE_CHECKING:
    from facemtl.models.multitask import MultiTaskNet
    from facemtl.models.onnx_runtime import OnnxNet


@dataclass(frozen=True)
class Passes:
    """What the passes over a photo's faces give: landmarks ``(N, K, 2)`` in image pixels, how far
    the passes disagree per face (``(N,)``, a fraction of the eye distance) and the class
    probabilities per attribute task (averaged over the passes where the landmarks are, else the
    last pass's)."""

    landmarks: np.ndarray
    spread: np.ndarray
    probs: dict[str, np.ndarray]


class Landmarker:
    """Landmarks and attribute probabilities for square crops of one image.

    ``refine`` extra passes re-crop each face from its predicted landmarks (the exact training crop
    rule) and predict again; with ``average`` the landmarks returned are the mean of every pass's
    where the passes agree (:func:`~facemtl.analysis.combine.combine_passes`), for the faces the caller marks
    (a first crop framed by a box's rough rule is better left at its last pass), and so are their
    attribute probabilities (else the last pass's). ``flip_test``
    averages each crop with its mirror image, ``shift_test`` with copies shifted by that fraction
    of its side, ``shift_views`` naming which copies each pass sees (:data:`~facemtl.analysis.views.SHIFT_VIEWS`;
    :mod:`facemtl.analysis.views`). ``model`` is a
    :class:`MultiTaskNet` or an :class:`~facemtl.models.onnx_runtime.OnnxNet` (same outputs).
    """

    def __init__(
        self,
        model: MultiTaskNet | OnnxNet,
        *,
        refine: int = DEFAULTS.refine,
        average: bool = DEFAULTS.average,
        flip_test: bool = DEFAULTS.flip_test,
        shift_test: float = DEFAULTS.shift_test,
        shift_views: str | ViewSet = DEFAULTS.shift_views,
    ):
        # a bad shift or view set fails here, not at the first photo
        shift_offsets(shift_test, model.config.input_size, shift_views)
        self.model = model.eval()
        self._net = array_net(self.model)
        self.refine = refine
        self.average = average
        self.flip_test = flip_test
        self.shift_test = shift_test
        self.shift_views = shift_views

    @property
    def config(self) -> ModelConfig:
        return self.model.config

    def predict_boxes(
        self, image_bgr: np.ndarray, boxes: Sequence[Box], pass_index: int = 0
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Run the network on square crop boxes of one image, as one batch; ``pass_index`` (0: a
        first crop) picks the shift test's views (:func:`~facemtl.analysis.views.shift_offsets`).

        Returns landmarks ``(N, K, 2)`` in image pixels and class probabilities per attribute task.
        """
        return self._predict(image_bgr, boxes, pass_index)

    def recrop(
        self, image_bgr: np.ndarray, landmarks: np.ndarray, pass_index: int = 1
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """One refinement pass: crop each face by the training rule from its landmarks ``(N, K, 2)``
        and predict again (``pass_index``: which pass this is, 1 for the first re-crop)."""
        return self._recrop(image_bgr, landmarks, pass_index)

    def passes(self, image_bgr: np.ndarray, boxes: Sequence[Box], average: np.ndarray | None = None) -> Passes:
        """The first crop (``boxes``) and ``refine`` re-crops of each face, combined where
        ``self.average`` for the faces ``average`` marks (default all)."""
        return self.passes_many([image_bgr], [boxes], [average])[0]

    def passes_many(
        self,
        images_bgr: Sequence[np.ndarray],
        boxes: Sequence[Sequence[Box]],
        average: Sequence[np.ndarray | None] | None = None,
    ) -> list[Passes]:
        """:meth:`passes` for the faces of several photos at once: every pass of every face runs as one
        network batch, so a collection pays the per-call cost once per pass instead of once per photo."""
        owner = np.array([i for i, bx in enumerate(boxes) for _ in bx], int)
        counts = [len(bx) for bx in boxes]
        landmarks, probs = self._predict_faces(images_bgr, owner, [b for bx in boxes for b in bx], 0)
        passes, pass_probs = [landmarks], [probs]
        for i in range(1, self.refine + 1):
            landmarks, probs = self._predict_faces(images_bgr, owner, self._recrop_boxes(landmarks), i)
            passes.append(landmarks)
            pass_probs.append(probs)
        spec = self.config.tasks.landmarks
        spread = pass_spread(passes, spec)
        if self.average:
            masks = [
                np.ones(n, bool) if m is None else m
                for n, m in zip(counts, average or [None] * len(counts), strict=True)
            ]
            mask = np.concatenate(masks) if masks else np.ones(0, bool)
            landmarks = np.where(mask[:, None, None], combine_passes(passes, spec, spread=spread), landmarks)
            # where the landmarks are averaged, so are the attributes: every pass framed the face well
            probs = {
                k: np.where(mask[:, None], combine_passes([p[k] for p in pass_probs], spec, spread=spread), v)
                for k, v in probs.items()
            }
        ends = np.cumsum(counts)
        return [
            Passes(landmarks[e - n : e], spread[e - n : e], {k: v[e - n : e] for k, v in probs.items()})
            for n, e in zip(counts, ends, strict=True)
        ]

    def _predict(
        self, image: np.ndarray, boxes: Sequence[Box], pass_index: int
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """:meth:`predict_boxes` (an 8-bit BGR image)."""
        return self._predict_faces([image], np.zeros(len(boxes), int), list(boxes), pass_index)

    def _predict_faces(
        self, images: Sequence[np.ndarray], owner: np.ndarray, boxes: Sequence[Box], pass_index: int
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The network on crop ``boxes``, box j of ``images[owner[j]]`` (8-bit BGR), as one batch:
        landmarks ``(N, K, 2)`` in image pixels and class probabilities. Each crop is cut from the
        colour image and then put in the model's channel layout, as training makes its crops (and
        a gray model does not convert a whole 12 MP photo for a few faces)."""
        cfg = self.config
        if not boxes:
            k = cfg.tasks.landmarks.num_points
            return np.empty((0, k, 2)), {t.name: np.empty((0, t.num_classes)) for t in cfg.tasks.attributes}
        transforms = [CropTransform.from_box(b, cfg.input_size) for b in boxes]
        crops = np.stack([to_channels(t.warp(images[i]), cfg.channels) for t, i in zip(transforms, owner, strict=True)])
        out = test_time_averaged(
            self._net,
            to_array(crops, cfg.mean, cfg.std),
            cfg.tasks,
            flip=self.flip_test,
            shift=self.shift_test,
            views=self.shift_views,
            pass_index=pass_index,
        )
        pts = from_unit(out["landmarks"], cfg.input_size)
        landmarks = np.stack([t.invert(p) for t, p in zip(transforms, pts, strict=True)])
        return landmarks, {name: softmax(v.astype(np.float64)) for name, v in out["attributes"].items()}

    def _recrop(
        self, image: np.ndarray, landmarks: np.ndarray, pass_index: int
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        return self._predict(image, self._recrop_boxes(landmarks), pass_index)

    def _recrop_boxes(self, landmarks: np.ndarray) -> list[Box]:
        """Each face's training crop from its landmarks ``(N, K, 2)`` (the rule reads the five MTFL
        points of any markup)."""
        five = self.config.tasks.landmarks.mtfl5
        return [crop_box_from_landmarks(five(lm), self.config.crop_scale) for lm in landmarks]
