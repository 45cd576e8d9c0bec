"""Copy a training run's selected weights into weights/ with a complete model card.

    python scripts/package_weights.py runs/mtfl_s --test-json runs/mtfl_s/test.json

The card records provenance and licence, the recipe and command, the wall time, the epoch chosen
on the validation split and its validation figures, and the MTFL test figures from
``facemtl evaluate --json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from facemtl.weights import DEFAULT_WEIGHTS, card_path, load_model, save_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--test-json", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=DEFAULT_WEIGHTS)
    args = ap.parse_args()
    run_card = json.loads(card_path(args.run / "best.safetensors").read_text())
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
            "wall_time_s": round(sum(r["seconds"] for r in history)),
            "device": "CPU, 2 threads",
        },
        "validation_at_best_epoch": {k: val[k] for k in ("nme", "failure_rate", "attributes")},
        "mtfl_test": json.loads(args.test_json.read_text()),
    }
    save_model(load_model(args.run / "best.safetensors"), args.out, card)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB) and {card_path(args.out)}")


if __name__ == "__main__":
    main()
