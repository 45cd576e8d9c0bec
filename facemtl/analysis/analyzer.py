"""Image → faces → landmarks + attributes, in original image pixels.

Data flows one way: image → detector → crop (the model's own crop rule) → network → results.
Nothing here reads or writes files except :func:`load_input` turning a path into pixels.

Landmarks are returned in the 0-based pixel convention (the first pixel's centre is (0, 0)).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence, Sized
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
from PIL import Image

from facemtl.analysis.combine import look_again, merge_views
from facemtl.analysis.landmarker import Landmarker, Passes
from facemtl.analysis.options import DEFAULTS, MIRROR_MODES, SEEDS, AnalyzerOptions
from facemtl.analysis.views import ViewSet
from facemtl.core.geometry import Box, crop_box_from_landmarks, mirror_points
from facemtl.core.images import read_image, to_bgr
from facemtl.core.types import AttributeRecord, FaceRecord, ImageRecord
from facemtl.detection import Detection, FaceDetector, box_rule, create_detector, match_detections, mirrored
from facemtl.models.loading import load_network, resolve_backend
from facemtl.models.pretrained import DEFAULT_LANDMARKS

if TYPE_CHECKING:
    from facemtl.analysis.align import AlignedFace
    from facemtl.core.tasks import TaskSet
    from facemtl.models.multitask import MultiTaskNet
    from facemtl.models.onnx_runtime import OnnxNet
    from facemtl.video.io import Frame

ImageInput = str | Path | np.ndarray | Image.Image


@dataclass(frozen=True)
class AttributePrediction:
    """The most probable class of one attribute task, with every class's probability."""

    label: str
    prob: float
    probs: dict[str, float]
    #: For an ordered task (age): the expected value of the class numbers (years), else None.
    expected: float | None = None


@dataclass
class Face:
    """One analysed face, in original image pixels."""

    box: tuple[float, float, float, float]  # detector box x1, y1, x2, y2
    score: float
    landmarks: np.ndarray  # (K, 2), 0-based pixel centres
    landmark_names: tuple[str, ...]
    attributes: dict[str, AttributePrediction] = field(default_factory=dict)
    #: In a video followed by :class:`~facemtl.video.tracking.FaceTracker`: the face's track, the same
    #: number in every frame it is followed through (``None`` for a photo).
    track_id: int | None = None

    def aligned(
        self, image: ImageInput, *, size: int = 112, template: str = "arcface", color: str = "bgr"
    ) -> AlignedFace:
        """This face's crop of ``image`` (the photo it was found in) aligned to ``template`` by a
        similarity transform from its five points (:func:`~facemtl.analysis.align.align`): ArcFace's
        112 × 112 crop, or ``ffhq`` (looser) at any ``size``; the transform travels with the crop."""
        from facemtl.analysis.align import align_face

        return align_face(load_input(image, color), self, size=size, template=template)

    def to_dict(self) -> FaceRecord:
        """The JSON schema of ``facemtl predict --json`` (one entry of ``faces``)."""
        record: FaceRecord = {
            "box": [round(float(v), 2) for v in self.box],
            "score": round(float(self.score), 4),
            "landmarks": [[round(float(x), 2), round(float(y), 2)] for x, y in self.landmarks],
            "attributes": {k: _attribute_record(a) for k, a in self.attributes.items()},
        }
        if self.track_id is not None:
            record["track_id"] = self.track_id
        return record


def _attribute_record(a: AttributePrediction) -> AttributeRecord:
    record: AttributeRecord = {"label": a.label, "prob": round(a.prob, 4)}
    if a.expected is not None:
        record["expected"] = round(a.expected, 2)
    return record


def attribute_predictions(tasks: TaskSet, probs: Mapping[str, np.ndarray]) -> dict[str, AttributePrediction]:
    """One face's class probabilities per attribute task → its predictions (most probable label)."""
    out = {}
    for task in tasks.attributes:
        p = probs[task.name]
        j = int(p.argmax())
        expected = None if task.values is None else float(np.dot(p, task.values))
        out[task.name] = AttributePrediction(
            task.labels[j], float(p[j]), dict(zip(task.labels, map(float, p), strict=True)), expected
        )
    return out


def image_record(image: str, faces: Sequence[Face]) -> ImageRecord:
    """One line of ``facemtl predict --json``: an input's name and its faces."""
    return {"image": image, "faces": [f.to_dict() for f in faces]}


def frame_record(path: str | Path, frame: Frame, faces: Sequence[Face]) -> ImageRecord:
    """One line of ``facemtl predict --json`` for a video frame: ``PATH#frame=N``, its index and time."""
    record = image_record(f"{path}#frame={frame.index}", faces)
    record["frame"], record["time"] = frame.index, round(frame.time, 4)
    return record


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def json_line(record: Mapping[str, Any]) -> str:
    """A record as one line of strict JSON. A number that is not finite becomes ``null``: Python's
    ``json`` would write a bare ``NaN``, which no JSON reader accepts (and the next line too would
    be lost to a reader that stops at the first error)."""
    return json.dumps(_finite(record), allow_nan=False)


def load_input(image: ImageInput, color: str = "bgr") -> np.ndarray:
    """Path, numpy array (channel order given by ``color``) or PIL image → 8-bit BGR."""
    if isinstance(image, (str, Path)):
        return read_image(image)
    return to_bgr(image, color=color)


class FaceAnalyzer:
    """Detect faces and predict their landmarks and attributes.

    >>> analyzer = FaceAnalyzer.from_pretrained()          # shipped weights, facemtl's detector
    >>> faces = analyzer.analyze("photo.jpg")              # or a BGR/RGB array, or a PIL image
    >>> faces[0].landmarks, faces[0].attributes["smile"].label

    The first crop of a face comes from the detector: centred on its 5 points and sized by its
    box through the calibrated box rule (``seed="hybrid"``, the default: a box does not shrink
    with a turned head as the points' span does), from the points alone by the training crop rule
    (``seed="points"``), or from the box alone (``seed="box"``). ``refine``, ``average``,
    ``flip_test``, ``shift_test`` and ``shift_views`` go to :attr:`landmarker` (a
    :class:`~facemtl.analysis.landmarker.Landmarker`, the network on crops): ``refine`` re-crops from the
    predicted landmarks, and with ``average`` (the default) the passes are averaged where they agree —
    their framing errors partly cancel, while a re-crop alone drifts; with ``shift_test`` (default
    :data:`~facemtl.analysis.options.SHIFT_TEST`) every crop is averaged with copies shifted by that
    fraction of its side: by default (``shift_views="split"``) the first crop with copies shifted left
    and right, the re-crop with copies shifted up and down (``"cross"``: all four in every pass;
    ``"plus"``: those and the crop itself, the first default). A face whose first crop is a box's rough framing (``seed="box"``, or a detector
    without points) gets its last pass; a face's attributes are averaged over its passes where its
    landmarks are, else the last pass's (on validation faces both are better that way). The
    defaults (hybrid, one re-crop, averaged, the shift test, the mirror view where the passes disagree) were
    chosen on validation faces: those whose photos the detector's training held out and the
    landmark model's own validation split (``references/benchmarks/end_to_end.py --detector-validation`` /
    ``--validation``), weighing time too.
    ``mirror`` looks at faces again in the photo's mirror image — detector, first crop and
    re-crops all run on it — and merges each face's two results (:func:`~facemtl.analysis.combine.merge_views`):
    the mean where they agree, else the one whose passes agree better. Neither network is
    mirror-symmetric, and a face one view frames badly (a turned head, mostly) the other usually
    frames well. ``"auto"`` (the default) does it only for photos with a face whose passes still
    disagree (beyond :data:`~facemtl.analysis.combine.AVERAGE_WITHIN`, so never with ``refine=0``), and merges
    only those faces; ``"always"`` merges every face (twice the time per photo; better on validation
    faces, not on MTFL test); ``"never"`` keeps one view. Not with ``detections`` given (there is no detector to re-run).
    The attributes are always the photo's own view's.

    ``model`` is a :class:`MultiTaskNet` or an :class:`~facemtl.models.onnx_runtime.OnnxNet` (same outputs).
    """

    def __init__(
        self,
        model: MultiTaskNet | OnnxNet,
        detector: FaceDetector | None = None,
        *,
        refine: int = DEFAULTS.refine,
        flip_test: bool = DEFAULTS.flip_test,
        shift_test: float = DEFAULTS.shift_test,
        shift_views: str | ViewSet = DEFAULTS.shift_views,
        seed: str = DEFAULTS.seed,
        average: bool = DEFAULTS.average,
        mirror: str = DEFAULTS.mirror,
    ):
        if seed not in SEEDS:
            raise ValueError(f"seed must be one of {', '.join(SEEDS)}, got {seed!r}")
        if mirror not in MIRROR_MODES:
            raise ValueError(f"mirror must be one of {', '.join(MIRROR_MODES)}, got {mirror!r}")
        self.landmarker = Landmarker(
            model, refine=refine, average=average, flip_test=flip_test, shift_test=shift_test, shift_views=shift_views
        )
        self.detector = detector if detector is not None else create_detector("facemtl")
        self.seed = seed
        self.mirror = mirror
        #: The options it was built from (:meth:`from_options`), which let worker processes build
        #: the same analyzer (:meth:`analyze_many`); None for an analyzer built from objects.
        self.options: AnalyzerOptions | None = None

    @classmethod
    def from_pretrained(
        cls,
        weights: str | Path | None = None,
        *,
        device: str = "cpu",
        backend: str = DEFAULTS.backend,
        detector: str | FaceDetector = DEFAULTS.detector,
        min_face: float = DEFAULTS.min_face,
        score_threshold: float | None = DEFAULTS.score_threshold,
        max_side: int | None = DEFAULTS.max_side,
        threads: int = DEFAULTS.threads,
        **kw: Any,
    ) -> FaceAnalyzer:
        """A shipped model by name (``facemtl models`` lists them; default ``facemtl_mtfl_celeba``),
        your own safetensors file or its ``.onnx`` export. ``backend``
        (:data:`~facemtl.models.loading.BACKENDS`): ``onnx`` runs the networks with ONNX Runtime
        (the shipped ONNX files; your own weights exported once and cached), ``torch`` with PyTorch
        (the ``train`` extra; any ``device``), ``auto`` (default) the first where it can.
        ``detector``: a :func:`~facemtl.detection.create_detector` name (``facemtl``, ``haar``,
        ``yunet:PATH``) or any :class:`FaceDetector`; ``min_face``, ``score_threshold`` and
        ``max_side`` (the longer side the detector sees) go to it; ``threads``: each ONNX Runtime
        session's compute threads."""
        backend = resolve_backend(backend, device)
        model = load_network(
            weights, kind="landmarks", default=DEFAULT_LANDMARKS, backend=backend, device=device, threads=threads
        )
        if isinstance(detector, str):
            detector = create_detector(
                detector,
                score_threshold=score_threshold,
                min_face=min_face,
                max_side=max_side,
                backend=backend,
                threads=threads,
            )
        return cls(model, detector, **kw)  # type: ignore[arg-type]  # a landmark model: load_network checks the kind

    @classmethod
    def from_options(cls, options: AnalyzerOptions = DEFAULTS, *, device: str = "cpu") -> FaceAnalyzer:
        """An analyzer built from :class:`~facemtl.analysis.options.AnalyzerOptions` (what
        ``facemtl predict`` and ``draw`` do with their flags)."""
        kw = {name: getattr(options, name) for name in (*AnalyzerOptions.LANDMARKER, *AnalyzerOptions.DETECTOR)}
        analyzer = cls.from_pretrained(
            options.model,
            device=device,
            backend=options.backend,
            detector=options.detector,
            seed=options.seed,
            mirror=options.mirror,
            **kw,
        )
        analyzer.options = options
        return analyzer

    @property
    def model(self) -> MultiTaskNet | OnnxNet:
        return self.landmarker.model

    def crop_box(self, det: Detection) -> Box:
        """The model's first crop for a detection: the training crop rule on the detector's 5
        points (``seed="points"``, when it has them), the calibrated landmark box × the model's
        crop scale (``seed="box"``, and any seed when the detector gives no points), or the
        points' crop centre with the box's size (``seed="hybrid"``)."""
        scale = self.model.config.crop_scale
        box = box_rule(self.detector.box_rules, det).landmark_box(det).scaled(scale)
        if self.seed == "box" or det.landmarks is None:
            return box
        points = crop_box_from_landmarks(det.landmarks, scale)
        return points if self.seed == "points" else Box(points.cx, points.cy, box.size)

    def passes(self, image_bgr: np.ndarray, dets: Sequence[Detection]) -> Passes:
        """Each detected face's passes (first crop from the detection, re-crops), averaged only where the first crop was centred by the
        detector's points (a box's rough framing is left at its last pass)."""
        return self.landmarker.passes(image_bgr, [self.crop_box(d) for d in dets], self._seeded(dets))

    def _seeded(self, dets: Sequence[Detection]) -> np.ndarray:
        """Which faces' first crops were centred by the detector's points (not a box's rough framing)."""
        return np.array([self.seed != "box" and d.landmarks is not None for d in dets], bool)

    def mirror_view(
        self, image_bgr: np.ndarray, dets: Sequence[Detection], look: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The faces of ``dets`` (those ``look`` marks, default all) found again in the photo's
        mirror image (matched at box IoU ≥ 0.5): their indices in ``dets``, and that view's
        landmarks (mapped back to the photo) and pass spreads."""
        width = image_bgr.shape[1]
        flipped = cv2.flip(image_bgr, 1)  # a copy, five times faster than numpy's for a large photo
        found = list(self.detector.detect(flipped))
        back = np.array([mirrored(d, width).box for d in found]).reshape(-1, 4)
        match = match_detections(back, np.array([d.box for d in dets]).reshape(-1, 4), np.zeros(len(dets), bool))
        look = np.ones(len(dets), bool) if look is None else look
        pairs = [(int(j), i) for i, j in enumerate(match.matched) if j >= 0 and look[j]]  # (face, mirror detection)
        spec = self.model.config.tasks.landmarks
        if not pairs:
            return np.empty(0, int), np.empty((0, spec.num_points, 2)), np.empty(0)
        seen = self.passes(flipped, [found[i] for _, i in pairs])
        return (
            np.array([j for j, _ in pairs]),
            mirror_points(seen.landmarks, width, spec.flip_permutation()),
            seen.spread,
        )

    # -- public API ---------------------------------------------------------------------------
    def analyze(
        self, image: ImageInput, *, color: str = "bgr", detections: Sequence[Detection] | None = None
    ) -> list[Face]:
        """All faces in one image. ``color`` is the channel order of a numpy input ("bgr" or "rgb").

        Pass ``detections`` to skip the detector (e.g. boxes from your own detector, with
        ``kind`` naming one of the detector's box rules; ``mirror`` then has no effect).
        """
        bgr = load_input(image, color)
        dets = list(self.detector.detect(bgr) if detections is None else detections)
        return self._faces([bgr], [dets], mirror=detections is None)[0]

    def analyze_batch(self, images: Sequence[ImageInput], *, color: str = "bgr") -> list[list[Face]]:
        """:meth:`analyze` for several images at once: each photo's detector run, then every pass of
        every face of them all as one network batch (faster than one photo at a time)."""
        bgrs = [load_input(im, color) for im in images]
        return self._faces(bgrs, [list(self.detector.detect(b)) for b in bgrs], mirror=True)

    def _faces(self, bgrs: Sequence[np.ndarray], dets: Sequence[list[Detection]], *, mirror: bool) -> list[list[Face]]:
        cfg = self.model.config
        boxes = [[self.crop_box(d) for d in ds] for ds in dets]
        views = self.landmarker.passes_many(bgrs, boxes, [self._seeded(ds) for ds in dets])
        out = []
        for bgr, ds, view in zip(bgrs, dets, views, strict=True):
            landmarks, spread, probs = view.landmarks, view.spread, view.probs
            look = look_again(self.mirror, self._seeded(ds), spread)
            if mirror and look.any():
                own, seen, seen_spread = self.mirror_view(bgr, ds, look)
                landmarks[own] = merge_views(landmarks[own], seen, spread[own], seen_spread, cfg.tasks.landmarks)
            faces = []
            for i, d in enumerate(ds):
                attrs = attribute_predictions(cfg.tasks, {k: v[i] for k, v in probs.items()})
                faces.append(Face(d.box, d.score, landmarks[i], cfg.tasks.landmarks.names, attrs))
            out.append(faces)
        return out

    def analyze_many(
        self, images: Iterable[ImageInput], *, workers: int = 0, progress: bool = False
    ) -> Iterator[list[Face]]:
        """:meth:`analyze` for a collection, in input order, with bounded memory: photos are read and
        analysed in ``workers`` processes (0: one per usable core; 1: here), each with this analyzer's
        options (:meth:`from_options`; an analyzer built from objects runs here). A photo that fails
        raises its error here, in order; ``facemtl predict`` instead reports it and goes on."""
        from facemtl.batch.engine import analyze_inputs

        total = len(images) if isinstance(images, Sized) else None
        for result in analyze_inputs(images, self, workers=workers, progress=progress, total=total):
            if result.error is not None or result.faces is None:
                raise result.exception()
            yield result.faces
