"""``facemtl`` command line: train, evaluate, predict, draw, export, models.

Importing this module and parsing arguments touch no torch or OpenCV (each command imports what
it needs), so ``facemtl --help`` and argument errors answer at once. ``facemtl train``'s flags
are generated from the recipe dataclasses in :mod:`facemtl.training.config`: one declaration per option.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import types
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union, get_args, get_origin, get_type_hints

from facemtl.models.pretrained import DEFAULT_LANDMARKS
from facemtl.training.config import TrainConfig, parse_source

if TYPE_CHECKING:
    from facemtl.analysis.analyzer import FaceAnalyzer

RECIPE = "recipe:"  # argparse dest prefix of the generated recipe flags


# -- recipe flags, generated from the config dataclasses ----------------------------------------
def _comma_list(text: str) -> tuple[str, ...]:
    return tuple(t for t in text.split(",") if t)


def _key_value(value_type: Any) -> Any:
    def parse(text: str) -> tuple[str, Any]:
        key, sep, value = text.partition("=")
        if not sep or not key:
            raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
        if value_type is float:
            try:
                return key, float(value)
            except ValueError:
                raise argparse.ArgumentTypeError(f"{key}: expected a number, got {value!r}") from None
        try:
            return key, json.loads(value)  # numbers, booleans, lists; anything else is a string
        except json.JSONDecodeError:
            return key, value

    parse.__name__ = "KEY=VALUE"
    return parse


def add_recipe_arguments(parser: argparse.ArgumentParser, cls: Any = TrainConfig, prefix: str = "") -> None:
    """One flag per recipe field (``--batch-size``, ``--augment.rotate``, ``--scenes.size``…)."""
    hints = get_type_hints(cls)
    group = parser.add_argument_group(f"recipe: {prefix.rstrip('.')}" if prefix else "recipe (overrides --config)")
    for f in fields(cls):
        tp, meta = hints[f.name], f.metadata
        if is_dataclass(tp):
            add_recipe_arguments(parser, tp, f"{prefix}{f.name}.")
            continue
        if get_origin(tp) in (Union, types.UnionType):  # X | None: the flag gives an X
            tp = next(a for a in get_args(tp) if a is not type(None))
        origin, args = get_origin(tp), get_args(tp)
        kw: dict[str, Any] = {"help": meta.get("help", ""), "dest": RECIPE + prefix + f.name, "default": None}
        if tp is bool:
            kw["action"] = argparse.BooleanOptionalAction
        elif origin is tuple and args[-1] is Ellipsis:
            if args[0] is str:
                kw |= {"type": _comma_list, "metavar": "A,B,..."}
            else:  # training sources
                kw |= {"type": parse_source, "nargs": "+", "metavar": "SOURCE"}
        elif origin is tuple:
            kw |= {"type": args[0], "nargs": len(args), "metavar": ("LOW", "HIGH")}
        elif origin is dict:
            kw |= {"type": _key_value(args[1]), "nargs": "+", "action": "extend", "metavar": "KEY=VALUE"}
        else:
            kw |= {"type": tp, "choices": meta.get("choices"), "metavar": None if meta.get("choices") else "N"}
            if tp is str and not meta.get("choices"):
                kw["metavar"] = f.name.upper()
        group.add_argument("--" + (prefix + f.name).replace("_", "-"), **kw)


def recipe_from_args(args: argparse.Namespace) -> TrainConfig:
    """``--config`` (or the defaults) with every recipe flag given on the command line applied."""
    cfg = TrainConfig.from_json(args.config) if args.config else TrainConfig()
    recipe = cfg.to_dict()
    for dest, value in vars(args).items():
        if not dest.startswith(RECIPE) or value is None:
            continue
        *sections, name = dest[len(RECIPE) :].split(".")
        target = recipe
        for s in sections:
            target = target[s]
        target[name] = {**target[name], **dict(value)} if isinstance(target[name], dict) else value
    return TrainConfig.from_dict(recipe)


# -- commands -----------------------------------------------------------------------------------
def _train(args: argparse.Namespace) -> int:
    cfg = recipe_from_args(args)  # a bad value is reported before torch is imported
    from facemtl.training import distributed
    from facemtl.training.engine import Trainer
    from facemtl.training.jobs import RecipeError

    d = distributed.Dist.from_env()  # set by torchrun; a single process otherwise
    distributed.init(d, distributed.resolve_device(args.device, d.local_rank))
    trainer = None
    try:
        trainer = Trainer(cfg, args.out, device=args.device, dist=d)
        t0 = time.perf_counter()
        launcher = ["torchrun", f"--nproc_per_node={d.world}", "-m", "facemtl"] if d.enabled else ["facemtl"]
        card = {"command": " ".join([*launcher, *sys.argv[1:]])}
        result = trainer.fit(resume=args.resume, overwrite=args.overwrite, card=card)  # ends with a barrier
    except RecipeError as e:
        raise RecipeError(f"{args.config or 'the recipe (command-line flags)'}: {e}") from None
    except KeyboardInterrupt:
        saved = (
            f"{trainer.folder.checkpoint} holds epoch {trainer.epoch}"
            if trainer and trainer.epoch
            else "no epoch was saved"
        )
        print(f"facemtl train: interrupted; {saved} (continue with --resume)", file=sys.stderr)
        return 130
    finally:
        distributed.shutdown()
    if d.is_main:
        print(
            f"best {result.metric_name} {result.best_metric:.4g} at epoch {result.best_epoch}; weights: {result.best_weights}"
        )
        print(f"wall time {time.perf_counter() - t0:.0f} s")
    if d.enabled:
        # Every file is written and closed by now. Leave without interpreter finalization: there,
        # gloo's C++ threads can still hold work objects whose teardown aborts the process
        # ("terminate called without an active exception", SIGABRT; it failed 3 of 11 test-suite
        # runs here; pytorch/pytorch#179291), and torchrun then fails a finished run.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from facemtl.data.dataset import FaceDataset
    from facemtl.data.mtfl import read_mtfl
    from facemtl.data.w300 import read_300w_folder
    from facemtl.evaluation.evaluator import evaluate
    from facemtl.models import MultiTaskNet
    from facemtl.models.weights import load_model

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    model = load_model(args.model)
    if not isinstance(model, MultiTaskNet):
        raise ValueError(
            f"{args.model}: is a face detector; score it end to end with references/benchmarks/end_to_end.py"
        )
    mc = model.config
    source = parse_source(args.annotations)
    if source.kind == "photos":
        raise ValueError(
            f"{args.annotations}: face-photos files score detectors (references/benchmarks/end_to_end.py, references/benchmarks/crowd.py)"
        )
    if source.kind == "300w":  # scored in the model's markup (68 → outer eye corners), else reduced to 5
        points = 68 if mc.tasks.landmarks.num_points == 68 else 5
        samples = read_300w_folder(source.path, points=points, split=source.split)
    else:
        samples = read_mtfl(source.path)
    data = FaceDataset.for_model(samples, mc)
    report = evaluate(model, data, flip_test=args.flip_test, shift_test=args.shift_test)
    views = (", flip test" if args.flip_test else "") + (f", shift test {args.shift_test}" if args.shift_test else "")
    print(f"{args.annotations} with {args.model or 'the shipped model'} (crop: landmark box × {mc.crop_scale}{views})")
    print(report.table())
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_json(), indent=2) + "\n")
    if args.ced:
        from facemtl.evaluation.plots import plot_ced

        plot_ced(
            {mc.name: report.landmarks.per_face}, args.ced, title=f"{args.annotations} ({report.landmarks.n} faces)"
        )
    return 0


def add_model_argument(p: argparse.ArgumentParser, what: str = "landmark model") -> None:
    p.add_argument(
        "--model",
        "--weights",
        dest="model",
        metavar="NAME|FILE",
        help=f"a shipped {what} by name (see facemtl models) or a .safetensors file (default: {DEFAULT_LANDMARKS})",
    )


def add_analyzer_arguments(p: argparse.ArgumentParser) -> None:
    """The options that build a :class:`FaceAnalyzer` (``predict`` and ``draw``), one flag per field of
    :class:`~facemtl.analysis.options.AnalyzerOptions` (its help, default and allowed values)."""
    from facemtl.analysis.options import AnalyzerOptions

    hints = get_type_hints(AnalyzerOptions)
    for f in fields(AnalyzerOptions):
        tp, meta = hints[f.name], f.metadata
        flag = meta.get("flag") or "--" + f.name.replace("_", "-")
        kw: dict[str, Any] = {"help": meta["help"], "dest": f.name, "default": f.default}
        if tp is bool:
            kw["action"] = "store_false" if f.default else "store_true"
        else:
            if get_origin(tp) in (Union, types.UnionType):  # X | None: the flag gives an X
                tp = next(a for a in get_args(tp) if a is not type(None))
            kw |= {"type": tp, "choices": meta.get("choices")}
            if f.name == "model":
                kw["metavar"] = "NAME|FILE"
            elif tp in (int, float) and f.name == "shift_test":
                kw["metavar"] = "FRACTION"
        p.add_argument(*([flag, "--weights"] if f.name == "model" else [flag]), **kw)


def analyzer_options(args: argparse.Namespace) -> Any:
    """The :class:`~facemtl.analysis.options.AnalyzerOptions` of parsed flags (checked: a value out of
    range is a ValueError naming the option)."""
    from facemtl.analysis.options import AnalyzerOptions, option_names

    return AnalyzerOptions(**{name: getattr(args, name) for name in option_names()})


def add_batch_arguments(p: argparse.ArgumentParser) -> None:
    """Where the inputs come from and how many processes analyse them."""
    g = p.add_argument_group("collections")
    g.add_argument("--recursive", "-r", action="store_true", help="expand folders into their subfolders too")
    g.add_argument(
        "--inputs-from",
        metavar="FILE",
        help="also read input paths from FILE, one per line (- : standard input, read as it arrives)",
    )
    g.add_argument("--shard", metavar="I/N", help="only every N-th input from the I-th (0-based): a job array's share")
    g.add_argument(
        "--workers",
        type=int,
        default=0,
        help="processes analysing photos (default 0: one per usable core, one per 50 photos for a short list; 1: this process alone)",
    )


def add_video_arguments(p: argparse.ArgumentParser) -> None:
    """How videos are followed (``predict``, ``draw``, ``live``): the tracker's options (their
    defaults are :class:`~facemtl.video.tracking.TrackerParams`'; parsing imports no numpy)."""
    g = p.add_argument_group("videos")
    g.add_argument(
        "--no-track",
        dest="track",
        action="store_false",
        help="analyse every frame as a photo of its own (no track IDs, no smoothing, the detector on every frame)",
    )
    g.add_argument(
        "--detect-every",
        type=int,
        metavar="FRAMES",
        help="frames between detector runs while every face is followed (default 10; the detector also runs "
        "when a face is lost and while none is followed)",
    )


def tracker_params(args: argparse.Namespace) -> Any:
    from facemtl.video.tracking import TrackerParams

    return TrackerParams() if args.detect_every is None else TrackerParams(detect_every=args.detect_every)


def analyzer_from_args(args: argparse.Namespace) -> FaceAnalyzer:
    from facemtl.analysis.analyzer import FaceAnalyzer

    return FaceAnalyzer.from_options(analyzer_options(args))


def _predict(args: argparse.Namespace) -> int:
    from facemtl.batch.predict import run_predict

    if args.engine == "ray":
        from facemtl.batch.ray_data import run_predict_ray

        return run_predict_ray(args, analyzer_options(args))
    return run_predict(args, analyzer_options(args), tracker_params(args))


def _draw(args: argparse.Namespace) -> int:
    from facemtl.batch.commands import run_draw

    return run_draw(args, analyzer_options(args), tracker_params(args))


def _align(args: argparse.Namespace) -> int:
    from facemtl.batch.predict import run_align

    return run_align(args, analyzer_options(args))


def _live(args: argparse.Namespace) -> int:
    from contextlib import ExitStack

    from facemtl.analysis.drawing import draw_faces
    from facemtl.video.io import VideoReader, has_gui, is_camera
    from facemtl.video.live import FrameServer, paced, show_in_window
    from facemtl.video.tracking import analyze_video

    analyzer = analyzer_from_args(args)
    params = tracker_params(args)
    shown = 0
    with ExitStack() as stack:
        if has_gui() and not args.serve:
            server, sink = None, show_in_window(f"facemtl live: {args.source}")
        else:
            server, sink = stack.enter_context(FrameServer(args.host, args.port)), None
            print(f"facemtl live: serving {args.source} at {server.url} (Ctrl-C stops)", flush=True)
        try:
            while True:
                with VideoReader(args.source) as reader:
                    wait = None if is_camera(args.source) else paced(reader.fps)
                    for frame, faces in analyze_video(analyzer, reader, track=args.track, params=params):
                        image = draw_faces(frame.image, faces)
                        if server is not None:
                            server.frames.put(image)
                        elif sink is not None and not sink(image):
                            return 0
                        shown += 1
                        if args.frames and shown >= args.frames:
                            return 0
                        if wait is not None:
                            wait()
                if not args.loop or is_camera(args.source):
                    return 0
        except KeyboardInterrupt:
            return 0
    return 0


def _export(args: argparse.Namespace) -> int:
    from facemtl.models import ModelConfig
    from facemtl.models.export import export_onnx, output_names
    from facemtl.models.weights import load_model

    model = load_model(args.model)
    path = export_onnx(model, args.onnx, opset=args.opset)
    c = model.config
    shape = (
        f"(batch, {c.channels}, {c.input_size}, {c.input_size})"
        if isinstance(c, ModelConfig)
        else "(batch, 3, height, width) RGB"
    )
    print(
        f"{path}: input 'image' {shape}, normalised (x/255 - {c.mean}) / {c.std}; "
        f"outputs {', '.join(output_names(model))}; config in metadata 'facemtl_config'"
    )
    return 0


def _models(args: argparse.Namespace) -> int:
    from facemtl.models.pretrained import DEFAULT_DETECTOR, PRETRAINED

    for p in PRETRAINED.values():
        metrics = "; ".join(f"{k} {v:.2f}" for k, v in p.metrics().items() if v is not None)
        size = p.path.stat().st_size / 1e6 if p.path.is_file() else float("nan")
        default = ", the default" if p.name in (DEFAULT_LANDMARKS, DEFAULT_DETECTOR) else ""
        print(f"{p.name}  ({p.kind}{default}, {size:.2f} MB)  {p.summary}")
        print(f"    {metrics}")
        print(f"    licence: {p.licence}")
        if args.verbose:
            print(f"    file: {p.path}\n    sha256: {p.sha256}\n    card: {p.card_path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from facemtl import __version__

    p = argparse.ArgumentParser(prog="facemtl", description="Multi-task face landmarks and attributes.")
    p.add_argument("--version", action="version", version=f"facemtl {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser(
        "train",
        help="train a model (recipe file and/or flags)",
        description="Train a landmark model or a face detector. Every recipe field has a flag; flags override --config.",
    )
    t.add_argument(
        "--config",
        help="JSON training recipe: a file, or the name of a recipe shipped with facemtl (e.g. facemtl_mtfl; "
        "the recipes of the shipped weights; see references/recipes/ in a checkout)",
    )
    t.add_argument("--out", required=True, help="output folder: checkpoints, history, best.safetensors")
    t.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    t.add_argument("--resume", action="store_true", help="continue from OUT/last.ckpt")
    t.add_argument(
        "--overwrite", action="store_true", help="start again in an OUT that holds a run (its files are replaced)"
    )
    add_recipe_arguments(t)
    t.set_defaults(func=_train)

    e = sub.add_parser("evaluate", help="score a landmark model on annotated faces (MTFL file or 300-W folder)")
    add_model_argument(e)
    e.add_argument(
        "--annotations",
        required=True,
        help="an MTFL-format file, or 300w:FOLDER of photos + .pts (300w:FOLDER@holdout: its fixed held-out part)",
    )
    e.add_argument("--json", help="also write the metrics as JSON here")
    e.add_argument("--ced", help="also plot the CED curve to this PNG (needs matplotlib)")
    e.add_argument("--threads", type=int, default=0)
    e.add_argument(
        "--flip-test", action="store_true", help="average each face with its mirror image (two passes per face)"
    )
    e.add_argument(
        "--shift-test",
        type=float,
        default=0.0,
        metavar="FRACTION",
        help="average each crop with copies shifted by this fraction of its side (predict's default: 0.05; "
        "here 0, the network's one-pass figure)",
    )
    e.set_defaults(func=_evaluate)

    r = sub.add_parser(
        "predict",
        help="detect faces and predict landmarks + attributes",
        description="Faces, landmarks and attributes of photos and videos. Many photos run in parallel processes "
        "(--workers), results in input order; --output writes JSON Lines or Parquet that --resume continues.",
    )
    r.add_argument("inputs", nargs="*", help="images, folders, videos or glob patterns ('-': paths on stdin)")
    r.add_argument("--json", action="store_true", help="print JSON Lines, one object per input (per frame for a video)")
    r.add_argument(
        "--output",
        "-o",
        metavar="FILE",
        help="write the records to FILE: .jsonl (JSON Lines) or .parquet (a folder of parts)",
    )
    r.add_argument("--resume", action="store_true", help="continue --output: skip the inputs it holds, append the rest")
    r.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    r.add_argument("--save-crops", metavar="DIR", help="also write each face's aligned crop (and its transform) to DIR")
    r.add_argument("--crop-size", type=int, default=112, help="aligned crops' side, px (default 112)")
    r.add_argument("--crop-template", choices=["arcface", "ffhq"], default="arcface", help="aligned crops' template")
    r.add_argument(
        "--engine",
        choices=["local", "ray"],
        default="local",
        help="local (default: worker processes here) or ray (Ray Data on a running cluster or a local one; "
        "the ray extra; needs --output .parquet)",
    )
    add_batch_arguments(r)
    add_analyzer_arguments(r)
    add_video_arguments(r)
    r.set_defaults(func=_predict)

    d = sub.add_parser("draw", help="draw landmarks, boxes and attributes on images, folders or videos")
    d.add_argument("inputs", nargs="*", help="images, folders of images, .mp4/.avi videos or glob patterns")
    d.add_argument("--out", default="annotated", help="output folder (default: annotated/)")
    d.add_argument("--json", action="store_true", help="also write each input's predictions as OUT/NAME.json")
    d.add_argument("--overwrite", action="store_true", help="replace outputs that exist already (never an input)")
    add_batch_arguments(d)
    add_analyzer_arguments(d)
    add_video_arguments(d)
    d.set_defaults(func=_draw)

    a = sub.add_parser(
        "align",
        help="aligned face crops (ArcFace 112 x 112, or FFHQ-style) of every face in photos",
        description="Write each face's crop aligned to a template by a similarity transform from its five points, "
        "with the transform (photo pixels -> crop pixels) in a JSON file beside it.",
    )
    a.add_argument("inputs", nargs="*", help="images, folders or glob patterns ('-': paths on stdin)")
    a.add_argument("--out", required=True, help="output folder: STEM-HASH_faceK.png and .json per face")
    a.add_argument("--size", type=int, default=112, help="crop side, px (default 112)")
    a.add_argument("--template", choices=["arcface", "ffhq"], default="arcface", help="where the five points go")
    add_batch_arguments(a)
    add_analyzer_arguments(a)
    a.set_defaults(func=_align)

    v = sub.add_parser(
        "live",
        help="analyse a camera or stream live: a window, or a browser page on this machine",
        description="Follow the faces of a camera (its index, e.g. 0), a stream URL or a video file, showing "
        "annotated frames in a window where OpenCV has a GUI, else serving them at http://HOST:PORT/.",
    )
    v.add_argument("source", help="camera index (0), stream URL (rtsp://..., http://...) or video file")
    v.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1: this machine only)")
    v.add_argument("--port", type=int, default=8765, help="port to serve on (0: any free port; default 8765)")
    v.add_argument("--serve", action="store_true", help="serve to a browser even where a window could open")
    v.add_argument("--loop", action="store_true", help="play a video file again from the start when it ends")
    v.add_argument("--frames", type=int, default=0, help="stop after this many frames (0: run until the source ends)")
    add_analyzer_arguments(v)
    add_video_arguments(v)
    v.set_defaults(func=_live)

    x = sub.add_parser("export", help="export a model to ONNX (dynamic batch axis)")
    add_model_argument(x, "model (landmarks or detector)")
    x.add_argument("--onnx", required=True, help="output .onnx file")
    x.add_argument("--opset", type=int, default=17)
    x.set_defaults(func=_export)

    m = sub.add_parser("models", help="list the shipped pretrained models with their headline figures")
    m.add_argument("-v", "--verbose", action="store_true", help="also show file, SHA-256 and card paths")
    m.set_defaults(func=_models)
    return p


#: What a plain install lacks, and how to add it (train, evaluate, export, --backend torch).
TRAIN_EXTRA = {"torch", "albumentations", "safetensors", "onnx"}
TRAIN_INSTALL = "pip install torch==2.13.0 (the CPU build), then pip install 'facemtl[train]'"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except BrokenPipeError:  # the reader left early (`facemtl models | head`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's exit flush must not fail again
        return 0
    except KeyboardInterrupt:
        print(f"facemtl {args.command}: interrupted", file=sys.stderr)
        return 130
    except (OSError, ValueError, KeyError, ImportError, MemoryError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        if isinstance(e, MemoryError):
            msg = f"out of memory ({e or 'MemoryError'})"
        if isinstance(e, ModuleNotFoundError) and (e.name or "").split(".")[0] in TRAIN_EXTRA:
            msg = f"{e.name} is not installed; this needs the train extra: {TRAIN_INSTALL}"
        print(f"facemtl {args.command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
