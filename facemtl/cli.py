"""``facemtl`` command line: train, evaluate, predict."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from facemtl.config import TrainConfig, parse_source


def _train(args: argparse.Namespace) -> int:
    from facemtl import distributed
    from facemtl.engine import Trainer

    cfg = TrainConfig.from_json(args.config) if args.config else TrainConfig()
    over = {}
    if args.train:
        over["train"] = tuple(parse_source(s) for s in args.train)
    for name in (
        "model",
        "epochs",
        "batch_size",
        "lr",
        "seed",
        "workers",
        "threads",
        "limit",
        "landmark_loss",
        "landmark_norm",
        "early_stop_patience",
        "val_fraction",
        "pose_balance",
        "balancing",
        "cache",
    ):
        v = getattr(args, name)
        if v is not None:
            over[name] = v
    if args.tasks is not None:
        over["tasks"] = tuple(t for t in args.tasks.split(",") if t)
    if args.task_weight:
        weights = dict(cfg.task_weights)
        for item in args.task_weight:
            name, _, val = item.partition("=")
            weights[name] = float(val)
        over["task_weights"] = weights
    if args.trunk or args.experts:
        over["model_overrides"] = dict(cfg.model_overrides)
        if args.trunk:
            over["model_overrides"]["trunk"] = args.trunk
        if args.experts:
            over["model_overrides"]["experts"] = args.experts
    cfg = TrainConfig.from_dict(cfg.to_dict() | over)
    d = distributed.Dist.from_env()  # set by torchrun; a single process otherwise
    distributed.init(d, distributed.resolve_device(args.device, d.local_rank))
    try:
        trainer = Trainer(cfg, args.out, device=args.device, dist=d)
        t0 = time.perf_counter()
        launcher = ["torchrun", f"--nproc_per_node={d.world}", "-m", "facemtl"] if d.enabled else ["facemtl"]
        card = {"command": " ".join([*launcher, *sys.argv[1:]])}
        result = trainer.fit(resume=args.resume, card=card)  # ends with a barrier: safe to tear down
    finally:
        distributed.shutdown()
    if d.is_main:
        print(
            f"best {trainer.job.metric_name} {result.best_metric:.4g} at epoch {result.best_epoch}; weights: {result.best_weights}"
        )
        print(f"wall time {time.perf_counter() - t0:.0f} s")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from facemtl.data.dataset import FaceDataset
    from facemtl.data.mtfl import read_mtfl
    from facemtl.evaluation import evaluate
    from facemtl.weights import load_model

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    model = load_model(args.weights)
    mc = model.config
    if mc.kind == "detector":
        raise ValueError(f"{args.weights}: is a face detector; score it end to end with bench/end_to_end.py")
    data = FaceDataset.for_model(read_mtfl(args.annotations), mc)
    report = evaluate(model, data, flip_test=args.flip_test)
    flip = ", flip test" if args.flip_test else ""
    print(f"{args.annotations} with {args.weights or 'shipped weights'} (crop: landmark box × {mc.crop_scale}{flip})")
    print(report.table())
    result = report.to_json()
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    if args.ced:
        from facemtl.plots import plot_ced

        plot_ced({mc.name: report.landmarks.per_face}, args.ced)
    return 0


def add_analyzer_arguments(p: argparse.ArgumentParser) -> None:
    """The options that build a :class:`FaceAnalyzer` (shared by ``predict`` and the drawing script)."""
    p.add_argument("--weights", help="a .safetensors landmark model (default: the shipped weights)")
    p.add_argument(
        "--detector",
        default="facemtl",
        help="facemtl (default: the shipped detector network), facemtl:WEIGHTS, haar (OpenCV's cascades) or yunet:PATH (your YuNet .onnx)",
    )
    p.add_argument("--min-face", type=float, default=0.0, help="ignore faces smaller than this many pixels")
    p.add_argument("--score-threshold", type=float, help="detector confidence threshold (default: the detector's)")
    p.add_argument(
        "--max-side",
        type=int,
        help="the detector sees the image downscaled to this longer side (facemtl's default 320; 640 finds faces down to ~12 px in a 640-px photo)",
    )
    p.add_argument(
        "--seed", choices=["points", "box"], default="points", help="first crop from the detector's 5 points or its box"
    )
    p.add_argument("--refine", type=int, default=1, help="re-crop passes from predicted landmarks (default 1)")
    p.add_argument("--backend", choices=["torch", "onnx"], default="torch", help="onnx: ONNX Runtime (extra 'onnx')")
    p.add_argument(
        "--flip-test", action="store_true", help="average each face with its mirror image (two passes per face)"
    )


def analyzer_from_args(args: argparse.Namespace):
    from facemtl.inference import FaceAnalyzer

    return FaceAnalyzer.from_pretrained(
        args.weights,
        detector=args.detector,
        min_face=args.min_face,
        score_threshold=args.score_threshold,
        max_side=args.max_side,
        seed=args.seed,
        refine=args.refine,
        backend=args.backend,
        flip_test=args.flip_test,
    )


def _predict(args: argparse.Namespace) -> int:
    from facemtl.imageio import ImageReadError
    from facemtl.inputs import expand_inputs

    analyzer = analyzer_from_args(args)
    failed = 0
    for path in expand_inputs(args.images):
        try:
            faces = analyzer.analyze(path)
            record = {"image": str(path), "faces": [f.to_dict() for f in faces]}
        except ImageReadError as e:
            failed += 1
            record = {"image": str(path), "error": str(e)}
        if args.json:
            print(json.dumps(record), flush=True)
        elif "error" in record:
            print(f"{path}: error: {record['error']}", file=sys.stderr)
        else:
            print(f"{path}: {len(faces)} face(s)")
            for f in faces:
                attrs = ", ".join(f"{k} {a.label} ({a.prob:.2f})" for k, a in f.attributes.items())
                pts = " ".join(
                    f"{n}=({x:.1f},{y:.1f})" for n, (x, y) in zip(f.landmark_names, f.landmarks, strict=True)
                )
                print(f"  box {[round(v, 1) for v in f.box]} score {f.score:.1f}: {pts}; {attrs}")
    return 1 if failed else 0


def _export(args: argparse.Namespace) -> int:
    from facemtl.export import export_onnx, output_names
    from facemtl.weights import load_model

    model = load_model(args.weights)
    path = export_onnx(model, args.onnx, opset=args.opset)
    c = model.config
    shape = (
        "(batch, 3, height, width) RGB"
        if c.kind == "detector"
        else f"(batch, {c.channels}, {c.input_size}, {c.input_size})"
    )
    print(
        f"{path}: input 'image' {shape}, normalised (x/255 - {c.mean}) / {c.std}; "
        f"outputs {', '.join(output_names(model))}; config in metadata 'facemtl_config'"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="facemtl", description="Multi-task face landmarks and attributes.")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model (config file and/or flags)")
    t.add_argument("--config", help="JSON training recipe (see configs/)")
    t.add_argument("--out", required=True, help="output folder: checkpoints, history, best.safetensors")
    t.add_argument("--train", nargs="+", help="training sources: FILE (MTFL format) or 300w:FOLDER")
    t.add_argument("--model")
    t.add_argument("--epochs", type=int)
    t.add_argument("--batch-size", type=int)
    t.add_argument("--lr", type=float)
    t.add_argument("--seed", type=int)
    t.add_argument("--workers", type=int)
    t.add_argument("--threads", type=int)
    t.add_argument("--limit", type=int, help="use only the first N faces")
    t.add_argument("--landmark-loss", choices=["l2", "l1", "wing"])
    t.add_argument("--landmark-norm", choices=["none", "iod"])
    t.add_argument("--tasks", help="comma-separated auxiliary tasks to train ('' = landmarks only)")
    t.add_argument("--task-weight", action="append", metavar="TASK=λ", help="set a task's λ (repeatable)")
    t.add_argument("--early-stop-patience", type=int)
    t.add_argument("--val-fraction", type=float)
    t.add_argument("--pose-balance", type=float)
    t.add_argument("--balancing", choices=["fixed", "uncertainty", "dwa"], help="how task losses are combined")
    t.add_argument("--trunk", choices=["shared", "mmoe"], help="hard sharing or multi-gate mixture of experts")
    t.add_argument("--experts", type=int, help="number of MMoE experts")
    t.add_argument(
        "--cache", action=argparse.BooleanOptionalAction, default=None, help="keep decoded face crops in memory"
    )
    t.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    t.add_argument("--resume", action="store_true", help="continue from OUT/last.ckpt")
    t.set_defaults(func=_train)

    e = sub.add_parser("evaluate", help="score weights on an MTFL-format annotation file")
    e.add_argument("--weights", help="a .safetensors file (default: the shipped weights)")
    e.add_argument("--annotations", required=True)
    e.add_argument("--json", help="also write the metrics as JSON here")
    e.add_argument("--ced", help="also plot the CED curve to this PNG (needs matplotlib)")
    e.add_argument("--threads", type=int, default=0)
    e.add_argument(
        "--flip-test", action="store_true", help="average each face with its mirror image (two passes per face)"
    )
    e.set_defaults(func=_evaluate)

    r = sub.add_parser("predict", help="detect faces and predict landmarks + attributes")
    r.add_argument("images", nargs="+", help="image files or folders")
    r.add_argument("--json", action="store_true", help="print JSON Lines, one object per input")
    add_analyzer_arguments(r)
    r.set_defaults(func=_predict)

    x = sub.add_parser("export", help="export weights to ONNX (dynamic batch axis)")
    x.add_argument(
        "--weights", help="a .safetensors file, landmark model or detector (default: the shipped landmark weights)"
    )
    x.add_argument("--onnx", required=True, help="output .onnx file")
    x.add_argument("--opset", type=int, default=17)
    x.set_defaults(func=_export)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError, KeyError, ImportError) as e:
        print(f"facemtl {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
