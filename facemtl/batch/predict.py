"""``facemtl predict`` over collections: records in input order to stdout or an output file that a
killed run resumes; videos followed frame by frame in their place; optional aligned crops."""

from __future__ import annotations

import argparse
import hashlib
import sys
from functools import partial
from pathlib import Path
from typing import Any

from facemtl.analysis.analyzer import Face, FaceAnalyzer, frame_record, json_line
from facemtl.analysis.options import AnalyzerOptions
from facemtl.batch.commands import batch_end, input_stream
from facemtl.batch.engine import analyze_inputs
from facemtl.batch.outputs import JsonLinesWriter
from facemtl.batch.work import Result, Work, analyze, error_text, record_of, set_threads
from facemtl.core.inputs import is_video


def predict_work(analyzer: FaceAnalyzer, item: Path, crops: str | None, size: int, template: str) -> list[Face]:
    """A worker's job for ``predict``: the faces of one photo, and with ``crops`` their aligned crops
    written there (``STEM-HASH_faceK.png`` + the transform in ``.json``)."""
    if not crops:
        return analyzer.analyze(item)
    from facemtl.core.images import read_image

    image = read_image(item)
    faces = analyzer.analyze(image)
    write_crops(image, faces, Path(item), Path(crops), size, template)
    return faces


def crop_stem(path: Path) -> str:
    """A name for an input's crops that no other input shares: its stem and a hash of its full path."""
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:8]
    return f"{path.stem}-{digest}"


def write_crops(image: Any, faces: list[Face], path: Path, out: Path, size: int, template: str) -> list[Path]:
    """Each face's aligned crop as ``OUT/STEM-HASH_faceK.png`` with its transform beside it (.json)."""
    import json

    import cv2

    from facemtl.analysis.align import align_face
    from facemtl.core.files import atomic_write

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for k, face in enumerate(faces):
        crop = align_face(image, face, size=size, template=template)
        target = out / f"{crop_stem(path)}_face{k}.png"
        ok, data = cv2.imencode(".png", crop.image)
        if not ok:
            raise OSError(f"{target}: could not encode the crop")
        png: bytes = data.tobytes()
        meta = json.dumps({"image": str(path), "face": k, **crop.to_dict()}) + "\n"
        atomic_write(target, partial(_write_bytes, data=png))
        atomic_write(target.with_suffix(".json"), partial(_write_text, text=meta))
        written.append(target)
    return written


def _write_bytes(tmp: str, data: bytes) -> None:
    Path(tmp).write_bytes(data)


def _write_text(tmp: str, text: str) -> None:
    Path(tmp).write_text(text)


def run_predict(args: argparse.Namespace, options: AnalyzerOptions, params: Any) -> int:
    from facemtl.batch.outputs import open_output

    analyzer = FaceAnalyzer.from_options(options)  # bad options fail here, before any worker starts
    set_threads(options.threads)  # this process's OpenCV and PyTorch, as each worker's
    writer = open_output(args.output, resume=args.resume, overwrite=args.overwrite) if args.output else None
    inputs, total = input_stream(args)
    if writer is not None and writer.done:
        skipped = writer.done
        if total is None:  # a stream (stdin): filtered as it arrives
            inputs = (p for p in inputs if str(p) not in skipped)
        else:
            listed = [p for p in inputs if str(p) not in skipped]
            inputs, total = iter(listed), len(listed)
        print(f"facemtl predict: resuming {args.output}: {len(skipped)} input(s) done already", file=sys.stderr)
    work: Work = analyze  # the engine batches photos for the default work
    if args.save_crops:
        work = partial(predict_work, crops=args.save_crops, size=args.crop_size, template=args.crop_template)
    # JSON lines are made where the photos are analysed: this process only writes them
    lines = isinstance(writer, JsonLinesWriter) or (writer is None and args.json)
    results = analyze_inputs(
        inputs, analyzer, workers=args.workers, inline=is_video, work=work, lines=lines, progress=True, total=total
    )
    done = failed = 0
    try:
        for r in results:
            if r.line is not None:
                failed += r.error is not None
                done += r.error is None
                _emit_line(r, writer)
                continue
            records = _video_records(analyzer, r.item, args, params) if r.inline else [record_of(r)]
            failed += "error" in records[-1]
            done += "error" not in records[-1]
            if writer is not None:
                writer.write(records)
                if "error" in records[-1]:  # the record holds it; the terminal hears of it too
                    print(f"facemtl predict: error: {records[-1]['error']}", file=sys.stderr)
            else:
                _print(r, records, args)
    finally:
        if writer is not None:
            writer.close()
    if writer is not None and writer.done and not done + failed:
        print(f"facemtl predict: every input is in {args.output} already", file=sys.stderr)
        return 0
    return batch_end("predict", done, failed)


def _emit_line(r: Result, writer: Any) -> None:
    """A photo's JSON line, to the output file or stdout; its error to stderr too."""
    if writer is not None:
        writer.write_lines([r.line])
        if r.error is not None:
            print(f"facemtl predict: error: {r.error}", file=sys.stderr)
    else:
        sys.stdout.write(f"{r.line}\n")
        sys.stdout.flush()


def _video_records(analyzer: FaceAnalyzer, path: Path, args: argparse.Namespace, params: Any) -> list[Any]:
    """A video's frames as records (followed by the tracker), its last frame marked ``last``; a video
    that cannot be read is one error record."""
    from facemtl.video.io import VideoReader
    from facemtl.video.tracking import analyze_video

    try:
        with VideoReader(path) as reader:
            records: list[Any] = [
                frame_record(path, frame, faces)
                for frame, faces in analyze_video(analyzer, reader, track=args.track, params=params)
            ]
    except Exception as e:  # noqa: BLE001  # one input's failure never ends the batch
        return [{"image": str(path), "error": error_text(e)}]
    if not records:
        return [{"image": str(path), "error": f"{path}: no frame could be read"}]
    records[-1]["last"] = True
    return records


def _print(r: Result, records: list[Any], args: argparse.Namespace) -> None:
    if args.json:
        sys.stdout.write("".join(json_line(rec) + "\n" for rec in records))
        sys.stdout.flush()
        return
    if "error" in records[-1]:
        print(f"{r.item}: error: {records[-1]['error']}", file=sys.stderr)
    elif r.inline:
        ids = {f.get("track_id") for rec in records for f in rec["faces"]} - {None}
        tracks = f", {len(ids)} face track(s)" if args.track else ""
        print(f"{r.item}: {len(records)} frame(s){tracks}")
    else:
        faces = r.faces or []
        print(f"{r.item}: {len(faces)} face(s)")
        for f in faces:
            attrs = ", ".join(f"{k} {a.label} ({a.prob:.2f})" for k, a in f.attributes.items())
            pts = " ".join(f"{n}=({x:.1f},{y:.1f})" for n, (x, y) in zip(f.landmark_names, f.landmarks, strict=True))
            print(f"  box {[round(v, 1) for v in f.box]} score {f.score:.1f}: {pts}; {attrs}")
    sys.stdout.flush()


# -- align ---------------------------------------------------------------------------------------
def run_align(args: argparse.Namespace, options: AnalyzerOptions) -> int:
    """Aligned crops of every face of every input photo into ``args.out``."""
    analyzer = FaceAnalyzer.from_options(options)
    set_threads(options.threads)  # this process's OpenCV and PyTorch, as each worker's
    inputs, total = input_stream(args)
    work = partial(predict_work, crops=str(args.out), size=args.size, template=args.template)
    done = failed = 0
    for r in analyze_inputs(
        inputs, analyzer, workers=args.workers, inline=is_video, work=work, progress=True, total=total
    ):
        if r.inline:
            failed += 1
            print(f"facemtl align: error: {r.item}: a video; align takes photos", file=sys.stderr)
        elif r.error is not None:
            failed += 1
            print(f"facemtl align: error: {r.error}", file=sys.stderr)
        else:
            done += 1
            print(f"{r.item}: {len(r.faces or [])} face(s) -> {args.out}/{crop_stem(Path(r.item))}_faceK.png")
    return batch_end("align", done, failed)
