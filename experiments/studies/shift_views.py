"""Which shifted copies each pass should see: the shift test's view sets, end to end on validation faces.

    .venv/bin/python experiments/studies/shift_views.py [--out experiments/results/shift_views]   # about 5 min on 2 cores

``FaceAnalyzer`` runs the landmark network on a first crop and one re-crop, each averaged over
shifted copies of itself (``facemtl.analysis.views``). Each copy is one more network view per
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
from tqdm import tqdm

from facemtl.analysis.analyzer import FaceAnalyzer
from facemtl.analysis.combine import combine_passes, pass_spread
from facemtl.analysis.options import SHIFT_TEST
from facemtl.analysis.views import SHIFT_VIEWS, ViewSet
from facemtl.core.images import read_image
from facemtl.data.mtfl import read_mtfl
from facemtl.detection import create_detector
from facemtl.evaluation.benchmarks import (
    DATA,
    Report,
    detector_held_out,
    found_index,
    median_ms,
    one_thread,
    pad,
    validation_samples,
)
from facemtl.evaluation.metrics import point_errors
from facemtl.models.onnx_runtime import OnnxNet
from facemtl.models.pretrained import DEFAULT_DETECTOR, DEFAULT_LANDMARKS, get_pretrained
from facemtl.models.weights import load_model

ROOT = Path(__file__).resolve().parents[2]
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


#: Where a face's attributes come from (the table after the landmarks').
ATTRIBUTE_SOURCES = ("re-crop", "both passes")
#: The view sets whose attributes are tabled.
ATTRIBUTE_ROWS = ("plus", "cross", "split", "no shift test")


def views_per_face(views: ViewSet | str) -> int:
    """Network views per face over the first crop and one re-crop."""
    passes = SHIFT_VIEWS[views] if isinstance(views, str) else views
    return len(passes[0]) + len(passes[1 % len(passes)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "experiments/results/shift_views"), help="writes OUT.md and OUT.json")
    ap.add_argument("--limit", type=int, default=0, help="only the first N faces of each set (a quick pass)")
    args = ap.parse_args()
    one_thread()
    model = load_model(None)
    spec = model.config.tasks.landmarks
    detector = create_detector("facemtl")
    held_out = {p.image.resolve() for p in detector_held_out(get_pretrained(DEFAULT_DETECTOR).path)}
    train = read_mtfl(DATA / "MTFL/training.txt")
    sets = {
        "landmark model's validation split": validation_samples(get_pretrained(DEFAULT_LANDMARKS).path),
        "faces the detector held out": [s for s in train if s.image.resolve() in held_out],
    }
    analyzers = {label: FaceAnalyzer(model, detector, shift_views=views) for label, views in CANDIDATES}
    report, figures = Report(), {"shift": SHIFT_TEST, "sets": {}, "photo_512_ms": {}}
    errors: dict[str, dict[str, list[float]]] = {}
    tasks = [t.name for t in model.config.tasks.attributes]
    # per view set and attribute source (the re-crop alone, or both passes where they agree): right or not, per task
    right: dict[tuple[str, str], dict[str, list[bool]]] = {
        (label, source): {t: [] for t in tasks} for label in analyzers for source in ATTRIBUTE_SOURCES
    }
    nll: dict[tuple[str, str], list[float]] = {key: [] for key in right}  # −log p(true class), every task
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
                first, p1 = an.landmarker.predict_boxes(img, [box], 0)
                second, p2 = an.landmarker.recrop(img, first, 1)
                both = combine_passes([first, second], spec)
                errors[set_name][label].append(float(point_errors(both, truth[None], spec).mean()))
                spread = pass_spread([first, second], spec)
                for t in tasks:
                    y = s.attributes.get(t, -1)
                    if y is None or y < 0:
                        continue
                    averaged = combine_passes([p1[t], p2[t]], spec, spread=spread)[0]  # as Landmarker.passes does
                    for source, p in (("re-crop", p2[t][0]), ("both passes", averaged)):
                        right[(label, source)][t].append(int(p.argmax()) == y)
                        nll[(label, source)].append(float(-np.log(max(p[y], 1e-12))))
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
    report()
    report(
        "Attributes on the same faces (both sets, accuracy %): from the re-crop alone, or averaged over both "
        "passes where their landmarks agree (as the landmarks are)"
    )
    report()
    report(f"| view set | attributes from | {' | '.join(tasks)} | mean | NLL of the true class (all tasks) |")
    report("| --- | --- |" + " --- |" * (len(tasks) + 2))
    figures["attributes"] = {}
    for (label, source), by_task in right.items():
        if label not in ATTRIBUTE_ROWS:
            continue
        acc = {t: float(np.mean(v) * 100) for t, v in by_task.items()}
        acc["mean"] = float(np.mean(list(acc.values())))
        acc["nll"] = float(np.mean(nll[(label, source)]))
        figures["attributes"].setdefault(label, {})[source] = acc | {"faces": len(by_task[tasks[0]])}
        cells = " | ".join(f"{acc[t]:.2f}" for t in [*tasks, "mean"])
        report(f"| {label} | {source} | {cells} | {acc['nll']:.4f} |")
    md, js = report.save(args.out, figures)
    print(f"\nwrote {md}, {js}")


if __name__ == "__main__":
    main()
