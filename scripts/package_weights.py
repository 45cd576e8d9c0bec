"""Copy a training run's selected weights into weights/ with a complete model card.

    python scripts/package_weights.py runs/mtfl_s --test-json runs/mtfl_s/test.json \
        [--flip-test-json runs/mtfl_s/test_flip.json] [--command "facemtl train --config C --out O"]
    python scripts/package_weights.py runs/det --out weights/facemtl_det.safetensors \
        --end-to-end-json references/benchmarks/results/end_to_end.json --crowd-json references/benchmarks/results/crowd.json --command "..."

Beside it, the ONNX export a plain install runs (``NAME.onnx``). The card records provenance and licence, the recipe and command, the time spent in epochs, the epoch chosen
on the validation split and its validation figures, and the test figures: for a landmark model the
MTFL test figures from ``facemtl evaluate --json`` (and ``--flip-test``); for the detector, the
end-to-end and crowd benchmarks' JSON. ``--command`` records the command under a recipe file's
current name; the file must still hold exactly the run's recipe.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shlex
from pathlib import Path

from facemtl.models import MultiTaskNet
from facemtl.models.export import export_onnx
from facemtl.models.weights import card_path, load_model, save_model
from facemtl.training.config import DatasetSpec, TrainConfig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path)
    ap.add_argument(
        "--weights", type=Path, help="the run's weights to ship (default RUN/best.safetensors; e.g. a calibrated copy)"
    )
    ap.add_argument("--test-json", type=Path, help="facemtl evaluate --json output (landmark models)")
    ap.add_argument("--flip-test-json", type=Path, help="facemtl evaluate --flip-test --json output")
    ap.add_argument(
        "--w300-json", type=Path, help="facemtl evaluate --json output on 300w:FOLDER@holdout (68-point models)"
    )
    ap.add_argument(
        "--end-to-end-json", type=Path, help="references/benchmarks/end_to_end.py --json output (detectors)"
    )
    ap.add_argument("--crowd-json", type=Path, help="references/benchmarks/crowd.py --json output (detectors)")
    ap.add_argument(
        "--people-json", type=Path, help="references/benchmarks/people.py's OUT.json (detectors on real photos)"
    )
    ap.add_argument(
        "--fairface-json", type=Path, help="references/benchmarks/fairface.py --out JSON (models with an age head)"
    )
    ap.add_argument("--note", help="a fact about the run the card must carry (e.g. the code commit it ran at)")
    ap.add_argument("--command", help="the training command to record (default: the one the run recorded)")
    ap.add_argument(
        "--chain",
        nargs="+",
        metavar="COMMAND",
        help="a fine-tune's lineage: the training commands that made its init weights, in order, and its own",
    )
    ap.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parents[1] / "weights" / "facemtl_mtfl.safetensors"
    )
    args = ap.parse_args()
    run_card = json.loads(card_path(args.run / "best.safetensors").read_text())
    if args.command:
        check_recipe(args.command, run_card["training"]["config"])
    history = json.loads((args.run / "history.json").read_text())
    best = run_card["training"]["best_epoch"]
    val = history[best - 1]["val"]
    training = run_card["training"] | {
        "command": run_card.get("command"),
        # time spent in epochs (training + validation): excludes the one-off decoding of the data
        # and any pause between a kill and --resume, so it is the same however the run went
        "epoch_time_s": round(sum(r["seconds"] for r in history)),
        "device": f"CPU (2 cores), {run_card['training']['config']['threads'] or 'all'} torch thread(s)",
    }
    if args.command:
        training["command"] = args.command
    if args.note:
        training["note"] = args.note
    if args.chain:
        training["chain"] = args.chain
    weights = args.weights or args.run / "best.safetensors"
    model = load_model(weights)
    if model.config.kind == "detector":
        card = detector_card(args, training, val)
    else:
        assert isinstance(model, MultiTaskNet)
        card = landmark_card(args, training, val, model.config.tasks.landmarks.num_points)
    calibration = json.loads(card_path(weights).read_text()).get("calibration")
    if calibration:  # scripts/calibrate_attributes.py or calibrate_detector.py
        card["calibration"] = calibration
    save_model(model, args.out, card)
    onnx = export_onnx(model, args.out.with_suffix(".onnx"))  # what a plain install runs
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB), {onnx} and {card_path(args.out)}")
    print(f"SHA-256 for facemtl/models/pretrained.py: {sha256(args.out)} (weights), {sha256(onnx)} (ONNX)")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def detector_card(args: argparse.Namespace, training: dict, val: dict) -> dict:
    if not (args.end_to_end_json and args.crowd_json):
        raise SystemExit("a detector's card needs --end-to-end-json and --crowd-json")
    people = any(src.get("whole") for src in training["config"]["train"])
    data = (
        "whole photos of the MTFL training set (10,000), CelebA's official train partition (8,500 of the "
        "subset here) and 300-W train (1,672), every face boxed by a teacher detector (YuNet 2023mar, Apache-2.0, "
        "run by OpenCV; not shipped); annotated faces keep their annotated 5 points (300-W's 68 reduced to 5)"
    )
    labels = (
        "python scripts/label_faces.py --teacher ../shared/tools/yunet/yunet_s_640_640.onnx "
        "--mtfl ../shared/data/MTFL/training.txt --300w ../shared/data/300W_train --celeba ../shared/data/CelebA "
        "--out runs/teacher/faces.jsonl"
    )
    if people:
        data += (
            "; and the training four fifths (by file name, facemtl.data.splits.in_validation) of 939 photos of people "
            "where faces are not the subject (../shared/data/people: Stanford 40 Actions, Clothing Co-Parsing "
            "(Apache-2.0), COCO 2017 person photos (Flickr photos under their own licences, annotations CC BY 4.0), "
            "Penn-Fudan pedestrians, MMPose test images), boxed by the same teacher at the photo's size and at twice "
            "it (faces found only enlarged, or scored 0.3-0.6, are ignored regions, not background); their "
            "validation fifth was never used for training or selection"
        )
        labels += (
            "; python scripts/label_faces.py --teacher ../shared/tools/yunet/yunet_s_640_640.onnx "
            "--people ../shared/data/people --out runs/teacher/people.jsonl"
        )
    data += (
        "; 5 % of each source's photos held out for model selection. MTFL test and CelebA val were never used "
        "for training or selection."
    )
    licence = (
        "research and non-commercial use: MTFL and 300-W are research datasets, CelebA is for non-commercial "
        "research and education"
        + (", Stanford 40 Actions and Penn-Fudan research datasets of web photos" if people else "")
        + "; facemtl code is MIT"
    )
    card = {
        "name": Path(args.out).stem,
        "provenance": {"data": data, "labels": labels, "licence": licence},
        "outputs": "per location of strides 8, 16, 32: face score, box (x1, y1, x2, y2), 5 points in MTFL order",
        "pixel_convention": "0-based; the first pixel's centre is (0, 0)",
        "training": training,
        "validation_at_best_epoch": {k: val[k] for k in ("loss", "losses", "recall", "precision", "landmark_nme")},
        "mtfl_test_end_to_end": json.loads(args.end_to_end_json.read_text()),
        "crowds": json.loads(args.crowd_json.read_text()),
    }
    if args.people_json:
        card["people_photos"] = json.loads(args.people_json.read_text())
    return card


#: How a landmark model card describes each kind of training source.
SOURCE_TEXT = {
    "mtfl": "MTFL training set (Zhang et al., ECCV 2014): 10,000 faces from LFW and the web, 5 points and 4 attributes",
    "300w": "300-W training faces (LFPW train + Helen train, 68 points; iBUG)",
    "celeba": "CelebA's official train partition (8,500 aligned photos of the subset here; Liu et al., ICCV 2015): "
    "Male, Smiling and Eyeglasses as gender, smile and glasses, no landmarks or pose; each face framed by the 5 "
    "points facemtl's shipped detector finds in the photo, as inference frames it",
    "fairface": "FairFace train faces (Kärkkäinen and Joo, WACV 2021; CC BY 4.0): the training four fifths "
    "(facemtl.data.fairface, by file name) of the 3,243 in ../shared, gender and 9 age bins, no landmarks or pose; "
    "each face framed by the 5 points facemtl's shipped detector finds in the photo, as inference frames it",
}


def landmark_card(args: argparse.Namespace, training: dict, val: dict, points: int) -> dict:
    if not args.test_json:
        raise SystemExit("a landmark model's card needs --test-json")
    recipe = training["config"]
    sources = []
    for src in recipe["train"]:
        text = SOURCE_TEXT[src["kind"]]
        if src.get("pseudo_landmarks"):
            text += (
                f"; landmark targets pseudo-labelled: the points facemtl_det + {DatasetSpec(**src).pseudo_labeller} "
                "found on each photo (facemtl.training.jobs.landmarks.locate_landmarks)"
            )
        if src["kind"] == "300w" and src.get("split", "all") != "all":
            text += f", only the folder's fixed {src['split']} part (facemtl.data.w300.in_holdout)"
        sources.append(text)
    data = "; ".join(sources) + (
        f"; {recipe['val_fraction']:.0%} of the training faces held out for model selection. "
        "The MTFL test set, 300-W's held-out part, CelebA's val partition and FairFace's validation fifth were never "
        "used for training or selection."
    )
    if recipe.get("init"):
        data += f" Initialised from facemtl's {recipe['init']} weights (trained on MTFL training)."
    card = {
        "name": Path(args.out).stem,
        "provenance": {"data": data, "licence": landmark_licence(recipe)},
        "crop_protocol": "square crop, side = crop_scale × the larger side of the bounding box of the 5 MTFL points "
        f"({'derived from the 68: eye centres = means of the eye contours, nose tip, mouth corners; ' if points == 68 else ''}"
        "centred on that box); at inference the first crop is centred by the detector's 5 points and sized by its box "
        "(FaceAnalyzer seed 'hybrid'), then one re-crop from the predicted landmarks",
        "pixel_convention": "0-based; the first pixel's centre is (0, 0)",
        "training": training,
        "validation_at_best_epoch": {k: val[k] for k in ("nme", "failure_rate", "attributes") if k in val}
        | ({"five_point": val["five_point"]} if "five_point" in val else {}),
        "mtfl_test": json.loads(args.test_json.read_text()),
    }
    if args.flip_test_json:
        card["mtfl_test_flip_test"] = json.loads(args.flip_test_json.read_text())
    if args.w300_json:
        card["w300_holdout"] = json.loads(args.w300_json.read_text())
    if args.fairface_json:  # the one model of the benchmark's JSON
        models = json.loads(args.fairface_json.read_text())["models"]
        if len(models) != 1:
            raise SystemExit(f"{args.fairface_json}: holds {len(models)} models; run the benchmark on this one alone")
        card["fairface_val"] = next(iter(models.values()))
    return card


def landmark_licence(recipe: dict) -> str:
    """The strictest terms of the recipe's data (and the attribution any of it asks for)."""
    fairface = (
        "; FairFace (CC BY 4.0) asks for attribution: Kärkkäinen and Joo, FairFace: Face Attribute Dataset for "
        "Balanced Race, Gender, and Age, WACV 2021"
        if any(src["kind"] == "fairface" for src in recipe["train"])
        else ""
    )
    if any(src["kind"] == "celeba" for src in recipe["train"]):
        return (
            "research and non-commercial use: CelebA is for non-commercial research and education, MTFL a CUHK "
            "research dataset; facemtl code is MIT" + fairface
        )
    return "research and evaluation use (MTFL is a CUHK research dataset, 300-W an iBUG research dataset); facemtl code is MIT"


def check_recipe(command: str, recorded: dict) -> None:
    """The recipe file named by ``command`` must hold the recipe the run was trained with."""
    words = shlex.split(command)
    if "--config" not in words:
        raise SystemExit(f"--command has no --config: {command!r}")
    path = words[words.index("--config") + 1]
    current = json.loads(json.dumps(TrainConfig.from_json(path).to_dict()))
    # the run's recipe with today's defaults for options added since (they default to what it did)
    recorded = json.loads(json.dumps(TrainConfig.from_dict(recorded).to_dict()))
    if current != recorded:
        diff = sorted(k for k in set(current) | set(recorded) if current.get(k) != recorded.get(k))
        raise SystemExit(f"{path} differs from the run's recipe in {diff}")


if __name__ == "__main__":
    main()
