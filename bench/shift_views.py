"""Which shifted copies each pass should see: the shift test's view sets, end to end on validation faces.

    .venv/bin/python bench/shift_views.py [--out bench/results/shift_views]   # about 5 min on 2 cores

``FaceAnalyzer`` runs the landmark network on a first crop and one re-crop, each averaged over
shifted copies of itself (``facemtl.models.test_time``). Each copy is one more network view per
face, and on a whole photo those views are most of the time after the detector. This scores view
sets against each other on the two sets of validation faces the defaults were chosen on — the
landmark model's own validation split and the MTFL training faces whose photos the detector's
training held out — never on MTFL test: facemtl's detector, the hybrid first crop, one re-crop,
the two passes averaged where they agree, one view of the photo (the mirror view is left out, as it
only runs for faces whose passes disagree). Error = mean point distance / eye distance (%), paired
against ``plus`` (the first default: the crop and four copies, every pass), ± its standard error.
Time: ``FaceAnalyzer.analyze`` on the 512×512 portrait, ONNX Runtime, one thread, median.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import matplotlib.cbook as cbook  # the portrait the peers bench times
import numpy as np
from common import Report, detector_held_out, found_index, median_ms, one_thread, pad, validation_samples
from tqdm import tqdm

from facemtl.data.mtfl import read_mtfl
from facemtl.detection import create_detector
from facemtl.export import OnnxNet
from facemtl.imageio import read_image
from facemtl.inference import FaceAnalyzer
from facemtl.metrics import point_errors
from facemtl.models.test_time import SHIFT_TEST, SHIFT_VIEWS, ViewSet
from facemtl.passes import combine_passes
from facemtl.pretrained import DEFAULT_DETECTOR, DEFAULT_LANDMARKS, get_pretrained
from facemtl.weights import load_model

ROOT = Path(__file__).resolve().parent.parent
H, V, C = ((1, 0), (-1, 0)), ((0, 1), (0, -1)), ((0, 0),)

#: (label, view set): the named sets, then others tried on the way.
CANDIDATES: list[tuple[str, ViewSet | str]] = [
    *((name, name) for name in SHIFT_VIEWS),
    ("split, passes swapped (up/down, then left/right)", (V, H)),
    ("left/right in both passes", (H, H)),
    ("crop + left/right, then crop + up/down", (C + H, C + V)),
    ("first crop alone, then plus", (C, SHIFT_VIEWS["plus"][0])),
    ("plus, then the re-crop alone", (SHIFT_VIEWS["plus"][0], C)),
    ("no shift test", (C,)),
]


def views_per_face(views: ViewSet | str) -> int:
    """Network views per face over the first crop and one re-crop."""
    passes = SHIFT_VIEWS[views] if isinstance(views, str) else views
    return len(passes[0]) + len(passes[1 % len(passes)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "bench/results/shift_views"), help="writes OUT.md and OUT.json")
    ap.add_argument("--limit", type=int, default=0, help="only the first N faces of each set (a quick pass)")
    args = ap.parse_args()
    one_thread()
    model = load_model(None)
    spec = model.config.tasks.landmarks
    detector = create_detector("facemtl")
    held_out = {p.image.resolve() for p in detector_held_out(get_pretrained(DEFAULT_DETECTOR).path)}
    train = read_mtfl(ROOT.parent / "shared/data/MTFL/training.txt")
    sets = {
        "landmark model's validation split": validation_samples(get_pretrained(DEFAULT_LANDMARKS).path),
        "faces the detector held out": [s for s in train if s.image.resolve() in held_out],
    }
    analyzers = {label: FaceAnalyzer(model, detector, shift_views=views) for label, views in CANDIDATES}
    report, figures = Report(), {"shift": SHIFT_TEST, "sets": {}, "photo_512_ms": {}}
    errors: dict[str, dict[str, list[float]]] = {}
    for set_name, samples in sets.items():
        samples = samples[: args.limit] if args.limit else samples
        errors[set_name] = {label: [] for label in analyzers}
        for s in tqdm(samples, desc=set_name, mininterval=20):
            img, border = pad(read_image(s.image))
            truth = s.landmarks + border
            dets = detector.detect(img)
            i = found_index(dets, truth)
            if i is None:
                continue
            for label, an in analyzers.items():
                box = an.crop_box(dets[i])
                first, _ = an.landmarker.predict_boxes(img, [box], 0)
                second, _ = an.landmarker.recrop(img, first, 1)
                both = combine_passes([first, second], spec)
                errors[set_name][label].append(float(point_errors(both, truth[None], spec).mean()))
    onnx = OnnxNet.from_model(model)
    onnx_detector = create_detector("facemtl", backend="onnx")
    photo = cv2.resize(cv2.imread(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)), (512, 512))
    for label, views in CANDIDATES:
        an = FaceAnalyzer(onnx, onnx_detector, shift_views=views)
        figures["photo_512_ms"][label] = median_ms(lambda an=an: an.analyze(photo), repeats=15, number=20)
    names = list(sets)
    report(
        f"| view set | network views per face | {' | '.join(f'{n}: error (%) | paired vs plus' for n in names)} | 512-px photo (ms) |"
    )
    report("| --- | --- |" + " --- | --- |" * len(names) + " --- |")
    for label, views in CANDIDATES:
        cells = []
        for n in names:
            e, ref = np.array(errors[n][label]), np.array(errors[n]["plus"])
            d = e - ref
            figures["sets"].setdefault(n, {"faces": len(e)})[label] = {
                "nme": float(e.mean() * 100),
                "paired": float(d.mean() * 100),
                "paired_se": float(d.std() / np.sqrt(len(d)) * 100),
            }
            cells.append(f"{e.mean() * 100:.3f} | {d.mean() * 100:+.3f} ± {d.std() / np.sqrt(len(d)) * 100:.3f}")
        report(f"| {label} | {views_per_face(views)} | {' | '.join(cells)} | {figures['photo_512_ms'][label]:.2f} |")
    md, js = report.save(args.out, figures)
    print(f"\nwrote {md}, {js}")


if __name__ == "__main__":
    main()
