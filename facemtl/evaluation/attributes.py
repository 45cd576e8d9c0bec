"""Attribute scores as the benchmarks report them: on MTFL test (ground-truth crops, with each
task's calibration) and on CelebA val end to end (the photo through the analyzer, a face not found
scored wrong)."""

from __future__ import annotations

import numpy as np

from facemtl.analysis.analyzer import FaceAnalyzer
from facemtl.core.images import read_image
from facemtl.data.celeba import celeba_attributes, celeba_photos
from facemtl.data.dataset import FaceDataset
from facemtl.evaluation.calibration import Reliability, reliability
from facemtl.evaluation.evaluator import evaluate, predict_dataset
from facemtl.models.multitask import MultiTaskNet

#: The attribute tasks CelebA labels.
CELEBA_TASKS = ("gender", "smile", "glasses")


def mtfl_test(model: MultiTaskNet, samples: list) -> dict:
    """Landmark error and each attribute's accuracy and calibration error on annotated faces' crops."""
    data = FaceDataset.for_model(samples, model.config)
    rep = evaluate(model, data)
    probs = predict_dataset(model, data)["probs"]
    out: dict = {"nme": rep.landmarks.nme, "attributes": {}}
    for j, task in enumerate(model.config.tasks.attributes):
        if task.name not in rep.attributes:  # a task the set has no labels for (MTFL has no age)
            continue
        rel = reliability(probs[task.name], data.attributes[:, j])
        out["attributes"][task.name] = {"accuracy": rep.attributes[task.name]["accuracy"], "ece": rel.ece}
    return out


def celeba_val(model: MultiTaskNet, root: str) -> tuple[dict, dict[str, Reliability]]:
    """Faces found and each CelebA attribute's accuracy and calibration on CelebA val photos, end to end."""
    analyzer = FaceAnalyzer(model)
    photos = celeba_photos(root, "val")
    labels = celeba_attributes(root)
    names = [t.name for t in model.config.tasks.attributes]
    probs: dict[str, list] = {t: [] for t in CELEBA_TASKS}
    truth: dict[str, list] = {t: [] for t in CELEBA_TASKS}
    found = 0
    for path in photos:
        faces = analyzer.analyze(read_image(path))
        found += bool(faces)
        for t in CELEBA_TASKS:
            task = model.config.tasks.attribute(t)
            truth[t].append(labels[path.name][t])
            if faces:
                probs[t].append([faces[0].attributes[t].probs[label] for label in task.labels])
            else:  # no face: scored wrong (all probability on the other class)
                wrong = np.zeros(task.num_classes)
                wrong[1 - labels[path.name][t]] = 1.0
                probs[t].append(wrong.tolist())
    out: dict = {"photos": len(photos), "found": 100.0 * found / len(photos), "attributes": {}}
    rels = {}
    for t in CELEBA_TASKS:
        if t not in names:
            continue
        p, y = np.asarray(probs[t]), np.asarray(truth[t])
        rels[t] = reliability(p, y)
        out["attributes"][t] = {"accuracy": float((p.argmax(1) == y).mean() * 100), "ece": rels[t].ece}
    return out, rels
