"""Copy a training run's selected weights into weights/ with a complete model card.

    python scripts/package_weights.py runs/mtfl_s --test-json runs/mtfl_s/test.json \
        [--flip-test-json runs/mtfl_s/test_flip.json] [--command "facemtl train --config C --out O"]

The card records provenance and licence, the recipe and command, the time spent in epochs, the epoch chosen
on the validation split and its validation figures, and the MTFL test figures from
``facemtl evaluate --json`` (and ``--flip-test``). ``--command`` records the command under a
recipe file's current name; the file must still hold exactly the run's recipe.
"""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path

from facemtl.config import TrainConfig
from facemtl.weights import DEFAULT_WEIGHTS, card_path, load_model, save_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--test-json", type=Path, required=True)
    ap.add_argument("--flip-test-json", type=Path, help="facemtl evaluate --flip-test --json output")
    ap.add_argument("--command", help="the training command to record (default: the one the run recorded)")
    ap.add_argument("--out", type=Path, default=DEFAULT_WEIGHTS)
    args = ap.parse_args()
    run_card = json.loads(card_path(args.run / "best.safetensors").read_text())
    if args.command:
        check_recipe(args.command, run_card["training"]["config"])
    history = json.loads((args.run / "history.json").read_text())
    best = run_card["training"]["best_epoch"]
    val = history[best - 1]["val"]
    card = {
        "name": "facemtl_mtfl",
        "provenance": {
            "data": "MTFL training set (Zhang et al., ECCV 2014): 10,000 faces from LFW and the web; "
            "9,000 trained on, 1,000 held out for model selection. The MTFL test set was never used for training or selection.",
            "licence": "research and evaluation use (MTFL is a CUHK research dataset); facemtl code is MIT",
        },
        "crop_protocol": "square crop, side = crop_scale × the larger side of the 5 landmarks' bounding box, centred on that box; "
        "at inference the box comes from the detector through a calibrated rule, then two re-crops from the predicted landmarks",
        "pixel_convention": "0-based; the first pixel's centre is (0, 0)",
        "training": run_card["training"]
        | {
            "command": run_card.get("command"),
            # time spent in epochs (training + validation): excludes the one-off crop cache (~10 s)
            # and any pause between a kill and --resume, so it is the same however the run went
            "epoch_time_s": round(sum(r["seconds"] for r in history)),
            "device": f"CPU (2 cores), {run_card['training']['config']['threads'] or 'all'} torch thread(s)",
        },
        "validation_at_best_epoch": {k: val[k] for k in ("nme", "failure_rate", "attributes")},
        "mtfl_test": json.loads(args.test_json.read_text()),
    }
    if args.flip_test_json:
        card["mtfl_test_flip_test"] = json.loads(args.flip_test_json.read_text())
    if args.command:
        card["training"]["command"] = args.command
    save_model(load_model(args.run / "best.safetensors"), args.out, card)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB) and {card_path(args.out)}")


def check_recipe(command: str, recorded: dict) -> None:
    """The recipe file named by ``command`` must hold the recipe the run was trained with."""
    words = shlex.split(command)
    if "--config" not in words:
        raise SystemExit(f"--command has no --config: {command!r}")
    path = words[words.index("--config") + 1]
    current = json.loads(json.dumps(TrainConfig.from_json(path).to_dict()))
    if current != recorded:
        diff = sorted(k for k in set(current) | set(recorded) if current.get(k) != recorded.get(k))
        raise SystemExit(f"{path} differs from the run's recipe in {diff}")


if __name__ == "__main__":
    main()
