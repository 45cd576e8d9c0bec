"""Faces followed through a video: identities that last, points that hold still, and the detector
run only when it is needed.

Per frame, each track's face is re-cropped from its own last landmarks by the training crop rule
and goes through the landmark network's passes (:class:`~facemtl.analysis.landmarker.Landmarker`, as in a
photo's analysis, minus the detector). How far those passes disagree is the track's confidence: on
a face they agree within a few % of the eye distance; a crop that lost its face (the face left the
frame, turned away or was covered) gives passes that scatter, or a face whose size jumps. The detector runs on
the whole frame every ``detect_every`` frames (new faces; at the side the detector's defaults choose for
the frame) and on every frame while no face is followed or awaited; its faces are matched to tracks by box IoU (greedy, best pair first — faces seldom
overlap, and a box matches at most one face); an unmatched face starts a track, a track the
detector does not confirm twice in a row, or whose crop lost its face, is *lost*: it keeps its ID
for ``grace`` seconds and takes it back if a face is found near where it was. A lost face is looked for
in a window around where it was last seen (:func:`~facemtl.detection.window.detect_near`: a few hundred
pixels of detector input at any frame size) at once when its track loses confidence, then on every frame
while no other face is followed and every third of ``detect_every`` frames while one is, if it had been
followed that long (a shorter-lived track, most often a false detection, waits for the periodic look). Points are smoothed by
One Euro filters, one for the face's rigid pose and one for its shape (:mod:`facemtl.video.smoothing`), attribute
probabilities by a running average over the last ``attribute_window`` seconds.

This follows MediaPipe's face-mesh graphs (re-crop from the last landmarks, detector only when a
face is lost, One Euro smoothing), with the detector's periodic look for new faces added.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from facemtl.analysis.landmarker import Landmarker
from facemtl.core.geometry import Box, crop_box_from_landmarks
from facemtl.core.images import to_bgr
from facemtl.core.tasks import interocular_distance
from facemtl.detection import Detection, box_iou
from facemtl.detection.window import detect_near
from facemtl.video.matching import MATCH_IOU, greedy_pairs, near, parts
from facemtl.video.smoothing import PoseParams, PoseSmoother

if TYPE_CHECKING:
    from facemtl.analysis.analyzer import Face, FaceAnalyzer
    from facemtl.video.io import Frame, VideoReader


@dataclass(frozen=True)
class TrackerParams:
    """How a :class:`FaceTracker` follows faces; times are in seconds, so the defaults mean the
    same at any frame rate.

    ``detect_every``: frames between detector runs while every track is confident (new faces are
    found within that many frames). ``grace``: how long a lost track keeps its ID. ``lost_spread``:
    the pass disagreement (fraction of the eye distance) beyond which a track's crop is taken to have
    lost its face. ``max_misses``: detector runs in a row that may miss a followed face before its
    track is lost. ``min_visible``: the share of a track's crop that must lie in the frame.
    ``smoothing``: the One Euro filters of the landmarks, split into the face's rigid pose and its
    shape (:class:`~facemtl.video.smoothing.PoseSmoother`). ``attribute_window``: the time constant of the
    attributes' running average.
    """

    detect_every: int = 10
    grace: float = 1.5
    lost_spread: float = 0.2
    max_misses: int = 2
    min_visible: float = 0.5
    smoothing: PoseParams = field(default_factory=PoseParams)
    attribute_window: float = 1.0
    #: The shift test of the passes that follow a face (None: the analyzer's, as for a photo; 0: each
    #: crop alone, half the network's work — the smoothing averages frames as the views average crops).
    shift_test: float | None = None

    def __post_init__(self) -> None:
        if self.detect_every < 1:
            raise ValueError(f"detect_every must be ≥ 1 frame; got {self.detect_every}")
        for name in ("grace", "lost_spread", "attribute_window"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0; got {getattr(self, name)}")
        if not 0 <= self.min_visible <= 1:
            raise ValueError(f"min_visible must be in [0, 1]; got {self.min_visible}")


#: A face's eye distance changes by less than this factor from one frame to the next; an estimate
#: that does (a crop half out of the frame, mostly) is not taken: the track is lost instead.
MAX_GROWTH = 1.3
#: Below this IoU with the detector's box a followed face is re-seeded from the detection (drift).
RESEED_IOU = 0.5


@dataclass
class _Track:
    id: int
    raw: np.ndarray  # (K, 2) last unsmoothed landmarks, image pixels
    velocity: np.ndarray  # (2,) px per second of the landmarks' mean, for the next frame's crop
    box_shape: np.ndarray  # (4,) the detector box relative to the landmarks' span box (see _box)
    score: float
    probs: dict[str, np.ndarray]
    filter: PoseSmoother
    last_seen: float
    lost: bool = False
    misses: int = 0
    smoothed: np.ndarray | None = None
    #: Frames followed with confidence; a track is shown (and gets its ID) from its first such frame
    #: after the detection that started it, so a detector's false face whose crop scatters at once never shows.
    followed: int = 0


class FaceTracker:
    """Follows the faces of a video frame by frame (see the module).

    >>> tracker = FaceTracker(FaceAnalyzer.from_pretrained(), fps=30)
    >>> for frame in frames:
    ...     faces = tracker.update(frame)        # faces[i].track_id: the same face, the same ID

    ``analyzer``'s detector finds faces and its landmarker follows them (its ``refine``, views and
    averaging apply; its mirror view does not). Pass each frame's ``time`` (seconds) where frames are
    not evenly spaced; else frame N is at N / ``fps``.
    """

    def __init__(self, analyzer: FaceAnalyzer, *, fps: float = 30.0, params: TrackerParams | None = None):
        if not (math.isfinite(fps) and fps > 0):
            raise ValueError(f"fps must be > 0; got {fps}")
        self.analyzer = analyzer
        self.fps = fps
        self.params = params or TrackerParams()
        own = analyzer.landmarker
        if self.params.shift_test is None or self.params.shift_test == own.shift_test:
            self.landmarker = own
        else:  # the same network, its own views
            self.landmarker = Landmarker(
                own.model, refine=own.refine, average=own.average, flip_test=own.flip_test,
                shift_test=self.params.shift_test, shift_views=own.shift_views,
            )  # fmt: skip
        self.reset()

    def reset(self) -> None:
        """Forget every track (a new video)."""
        self._tracks: list[_Track] = []
        self._next_id = 0
        self._frame = 0
        self._time: float | None = None
        self._since_detect = 0
        self._since_look = 0
        #: Detector runs so far on whole frames, and on windows around lost faces (for benchmarks:
        #: how often the tracker needed it).
        self.detections = 0
        self.searches = 0

    # -- geometry ---------------------------------------------------------------------------------
    def _five(self, landmarks: np.ndarray) -> np.ndarray:
        return self.analyzer.model.config.tasks.landmarks.mtfl5(landmarks)

    def _span(self, landmarks: np.ndarray) -> Box:
        return crop_box_from_landmarks(self._five(landmarks), 1.0)

    def _box(self, track: _Track, landmarks: np.ndarray) -> np.ndarray:
        """The track's face box on these landmarks: the detector's box, kept relative to the
        landmarks' span box, so it moves and scales with the followed points."""
        s = self._span(landmarks)
        return np.array([s.cx, s.cy, s.cx, s.cy]) + track.box_shape * s.size

    def _box_shape(self, det: Detection, landmarks: np.ndarray) -> np.ndarray:
        s = self._span(landmarks)
        return (np.asarray(det.box, np.float64) - [s.cx, s.cy, s.cx, s.cy]) / max(s.size, 1e-6)

    def _scale(self, landmarks: np.ndarray) -> float:
        spec = self.analyzer.model.config.tasks.landmarks
        return float(max(interocular_distance(landmarks[None], spec)[0], 1.0))

    # -- one frame --------------------------------------------------------------------------------
    def update(self, frame: np.ndarray, *, time: float | None = None, color: str = "bgr") -> list[Face]:
        """The faces of the next frame, with their track IDs; ``time``: seconds since the start."""
        image = to_bgr(frame, color=color)
        now = self._frame / self.fps if time is None else float(time)
        dt = (now - self._time) if self._time is not None else 1.0 / self.fps
        self._time, self._frame = now, self._frame + 1
        p = self.params

        live = [t for t in self._tracks if not t.lost]
        unsure = self._follow(image, live, now)
        self._since_detect += 1
        self._since_look += 1
        # a lost face may be back: look for it every few frames while it waits
        waits = any(t.lost and self._established(t) for t in self._tracks)
        # (on every frame while it is the only face: there is nothing else to spend the time on)
        waiting = waits and (not live or self._since_look >= max(1, p.detect_every // 3))
        # the whole frame (new faces too) periodically, and on every frame while no face is followed
        # or awaited (a face that appears is found at once)
        if self._since_detect >= p.detect_every or not (live or waits):
            self.detections += 1
            self._detect(image, now, list(self.analyzer.detector.detect(image)))
            self._since_detect = self._since_look = 0
        elif unsure or waiting:  # known faces only, each where it was last seen
            sought = [t for t in self._tracks if t.lost and t.followed]
            dets = [d for t in sought for d in detect_near(self.analyzer.detector, image, self._box(t, t.raw))]
            self.searches += 1
            self._detect(image, now, dets, sought)
            self._since_look = 0
        # a lost track waits out its grace period (one never shown goes at once); only an established
        # one makes the detector look for it more often (a short-lived one is most often a false detection)
        self._tracks = [t for t in self._tracks if not t.lost or (t.followed and now - t.last_seen <= p.grace)]
        self._drop_duplicates()
        return self._faces(dt, now)

    def _follow(self, image: np.ndarray, tracks: list[_Track], now: float) -> bool:
        """Each track re-cropped from its last landmarks, moved on by their last velocity (a face
        moving a tenth of its eye distance a frame would otherwise be cropped off-centre); returns
        whether any track lost confidence."""
        if not tracks:
            return False
        ahead = [(t.raw if t.smoothed is None else t.smoothed) + t.velocity * (now - t.last_seen) for t in tracks]
        # framed as the analyzer frames a detection (centre from the 5 points, side from the face
        # box through the box rule), so the re-crop that follows sees the face differently framed and
        # the two passes' errors partly cancel when averaged, as they do in a photo
        boxes = [
            self.analyzer.crop_box(Detection(tuple(self._box(t, a)), t.score, "net", self._five(a)))
            for t, a in zip(tracks, ahead, strict=True)
        ]
        visible = np.array([_visible(b, image.shape) for b in boxes])
        follow = [i for i, v in enumerate(visible) if v >= self.params.min_visible]
        unsure = False
        for i, t in enumerate(tracks):
            if i not in follow:
                t.lost = True
                unsure |= t.followed > 0
        if not follow:
            return unsure
        seen = self.landmarker.passes(image, [boxes[i] for i in follow])
        for j, i in enumerate(follow):
            t = tracks[i]
            grew = self._scale(seen.landmarks[j]) / self._scale(t.raw)
            if seen.spread[j] > self.params.lost_spread or not 1 / MAX_GROWTH <= grew <= MAX_GROWTH:
                t.lost = True
                unsure |= t.followed > 0  # one look at once (a track never shown was no face: none)
                continue
            t.followed += 1
            step = max(now - t.last_seen, 1e-6)
            moved = (seen.landmarks[j].mean(0) - t.raw.mean(0)) / step
            t.velocity = 0.5 * t.velocity + 0.5 * moved  # a little smoothing: the estimate is noisy
            self._average_attributes(t, {k: v[j] for k, v in seen.probs.items()}, now)
            t.raw = seen.landmarks[j]
            t.last_seen = now
        return unsure

    def _established(self, t: _Track) -> bool:
        """Followed long enough (``detect_every`` frames) to be a face worth waiting for."""
        return t.followed >= self.params.detect_every

    def _detect(self, image: np.ndarray, now: float, dets: list[Detection], sought: list[_Track] | None = None) -> None:
        """Match the detector's faces to tracks, start tracks for new faces, lose tracks it keeps
        missing. ``sought``: the detector looked only for these (in windows where they were last seen):
        other tracks are not judged, and a face no sought track claims is left for the next whole-frame
        look (a window's edge may cut a face)."""
        followed = [self._box(t, t.raw) for t in self._tracks if not t.lost]
        dets = [d for d, part in zip(dets, parts(dets, followed), strict=True) if not part]
        tracks = sorted(self._tracks if sought is None else sought, key=lambda t: t.lost)  # followed faces choose first
        boxes = np.array([self._box(t, t.raw) for t in tracks]).reshape(-1, 4)
        det_boxes = np.array([d.box for d in dets]).reshape(-1, 4)
        affinity = box_iou(boxes, det_boxes)
        for i, t in enumerate(tracks):  # a lost face may come back near where it was: search twice its box
            if t.lost:
                close = near(boxes[i], det_boxes)
                affinity[i] = np.where(close & (affinity[i] < MATCH_IOU), MATCH_IOU, affinity[i])
        pairs = greedy_pairs(affinity, MATCH_IOU)
        matched_tracks = {i for i, _ in pairs}
        reseed: list[tuple[_Track | None, Detection]] = []
        for i, j in pairs:
            t, d = tracks[i], dets[j]
            t.score, t.misses = d.score, 0
            own_iou = float(box_iou(boxes[i], np.asarray(d.box))[0, 0])
            if t.lost or own_iou < RESEED_IOU:
                reseed.append((t, d))
            else:
                t.box_shape = 0.5 * t.box_shape + 0.5 * self._box_shape(d, t.raw)
        for i, t in enumerate(tracks):
            if i not in matched_tracks and not t.lost:
                t.misses += 1
                if t.misses >= self.params.max_misses:
                    t.lost = True
        matched_dets = {j for _, j in pairs}
        if sought is None:
            reseed += [(None, d) for j, d in enumerate(dets) if j not in matched_dets]
        if not reseed:
            return
        seen = self.analyzer.passes(image, [d for _, d in reseed])
        for k, (known, d) in enumerate(reseed):
            probs = {name: v[k] for name, v in seen.probs.items()}
            if known is None:
                points = PoseSmoother(self.analyzer.model.config.tasks.landmarks.iod_groups, self.params.smoothing)
                t = _Track(-1, seen.landmarks[k], np.zeros(2), np.zeros(4), d.score, probs, points, now)
                self._tracks.append(t)
            else:
                t = known
                if t.lost:  # re-found after a jump: no smoothing across it
                    t.filter.reset()
                    t.velocity = np.zeros(2)
                # (a followed face re-framed from the detector's box stays smoothed: its points moved
                # by its drift, not by a jump)
                t.lost = False
                self._average_attributes(t, probs, now)
            t.raw, t.last_seen = seen.landmarks[k], now
            t.box_shape = self._box_shape(d, t.raw)
            if known is None and seen.spread[k] <= self.params.lost_spread:
                t.followed = 1  # its passes agree already: a face, shown from this frame on

    def _average_attributes(self, t: _Track, probs: dict[str, np.ndarray], now: float) -> None:
        a = 1.0 - math.exp(-max(now - t.last_seen, 1.0 / self.fps) / self.params.attribute_window)
        t.probs = {k: t.probs[k] + a * (v - t.probs[k]) if k in t.probs else v for k, v in probs.items()}

    def _drop_duplicates(self) -> None:
        """Two tracks on one face (a face re-found before its lost track matched): the older stays."""
        live = sorted((t for t in self._tracks if not t.lost), key=lambda t: (t.id < 0, t.id))
        if len(live) < 2:
            return
        boxes = np.array([self._box(t, t.raw) for t in live])
        iou = box_iou(boxes, boxes)
        drop = {live[j].id for i in range(len(live)) for j in range(i + 1, len(live)) if iou[i, j] > RESEED_IOU}
        self._tracks = [t for t in self._tracks if t.id not in drop]

    def _faces(self, dt: float, now: float) -> list[Face]:
        from facemtl.analysis.analyzer import Face, attribute_predictions

        cfg = self.analyzer.model.config
        faces = []
        for t in self._tracks:  # IDs in order of confirmation
            if t.id < 0 and t.followed and not t.lost:
                t.id, self._next_id = self._next_id, self._next_id + 1
        for t in sorted(self._tracks, key=lambda t: t.id):
            if t.lost or t.last_seen != now or not t.followed:
                continue
            t.smoothed = t.filter(t.raw, dt)
            attrs = attribute_predictions(cfg.tasks, t.probs)
            box = tuple(float(v) for v in self._box(t, t.smoothed))
            faces.append(Face(box, t.score, t.smoothed, cfg.tasks.landmarks.names, attrs, track_id=t.id))  # type: ignore[arg-type]
        return faces


def _visible(box: Box, shape: tuple[int, ...]) -> float:
    """The share of a crop box inside an image of ``shape``."""
    x1, y1, x2, y2 = box.to_xyxy()
    w = max(0.0, min(x2, shape[1] - 1) - max(x1, 0.0))
    h = max(0.0, min(y2, shape[0] - 1) - max(y1, 0.0))
    return w * h / max(box.size**2, 1e-9)


def analyze_video(
    analyzer: FaceAnalyzer, reader: VideoReader, *, track: bool = True, params: TrackerParams | None = None
) -> Iterator[tuple[Frame, list[Face]]]:
    """Each frame of a video with its faces: followed by a :class:`FaceTracker` (IDs, smoothing),
    or with ``track=False`` each frame analysed as a photo of its own."""
    tracker = FaceTracker(analyzer, fps=reader.fps, params=params) if track else None
    for frame in reader:
        faces = tracker.update(frame.image, time=frame.time) if tracker else analyzer.analyze(frame.image)
        yield frame, faces
