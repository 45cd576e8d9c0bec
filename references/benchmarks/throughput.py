"""Photo collections at full speed: ``facemtl predict`` over folders of photos, idle and busy, in one run.

    .venv/bin/python references/benchmarks/throughput.py [--photos 2000] [--out references/benchmarks/results/throughput]

Every row is the command a user runs (``facemtl predict --inputs-from LIST -o OUT.jsonl``, so start-up,
decoding, both networks and writing the records are all in the time), in a process of its own:

- CelebA-size photos (178 × 218, the first ``--photos`` of ../shared's CelebA), with the defaults
  (ONNX Runtime, one worker per core, one thread each), with one worker, and with the PyTorch backend
  at PyTorch's default threads (what ``predict`` did before the engine);
- 1 MP photos (people photos scaled to 1155 × 866, written once to a temporary folder);
- a loop of OpenCV decoding + the YuNet teacher (one thread, its own detector only), the peer the
  issue measured: a reference, never a dependency;
- the same rows while two CPU-burner processes keep the cores busy ("busy");
- peak memory (the process tree's resident set, sampled) with 1,000 and 20,000 photos;
- at scale (9,500 photos): the local engine with one worker and with one per core, and Ray Data on
  the same machine (``--engine ray``, a local Ray with one CPU per core), and whether its records
  equal the local engine's.

Writes OUT.md and OUT.json.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2

from facemtl.evaluation.benchmarks import DATA, Report, burners

ROOT = Path(__file__).resolve().parents[2]
FACEMTL = [sys.executable, "-m", "facemtl"]
YUNET = DATA.parent / "tools" / "yunet"


def tree_rss(pid: int) -> int:
    """Resident memory (KB) of a process and all its descendants, from /proc."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            total += int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS")))
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, StopIteration, ValueError):
            continue
    return total


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, int]:
    """Wall seconds of a command and its process tree's peak resident memory (MB)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak, done = 0, threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.05):
            peak = max(peak, tree_rss(proc.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = proc.communicate()
    wall = time.perf_counter() - t0
    done.set()
    sampler.join()
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {err[-2000:]}")
    return wall, peak // 1024


def predict(listing: Path, out: Path, *extra: str, env: dict[str, str] | None = None) -> tuple[float, int]:
    return timed([*FACEMTL, "predict", "--inputs-from", str(listing), "-o", str(out), "--overwrite", *extra], env)


def yunet_loop(listing: Path) -> list[str]:
    """The peer: OpenCV decoding + YuNet at full resolution, one thread, in a loop (a reference)."""
    model = next(YUNET.glob("*.onnx"))
    code = (
        "import cv2, sys\ncv2.setNumThreads(1)\n"
        f"det = cv2.FaceDetectorYN.create({str(model)!r}, '', (320, 320), 0.6)\n"
        f"for line in open({str(listing)!r}):\n"
        "    img = cv2.imread(line.strip())\n    det.setInputSize((img.shape[1], img.shape[0]))\n    det.detect(img)\n"
    )
    return [sys.executable, "-c", code]


def write_list(paths: list[Path], target: Path) -> Path:
    target.write_text("".join(f"{p}\n" for p in paths))
    return target


def distinct_copies(pool: list[Path], n: int, folder: Path) -> list[Path]:
    """``n`` distinct photo files (copies of ``pool``'s, in numbered folders): facemtl does a file
    named twice once, so a long list needs files of its own."""
    out = []
    for k in range(n):
        src = pool[k % len(pool)]
        target = folder / str(k // len(pool)) / src.name
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target)
        out.append(target)
    return out


def megapixel_photos(folder: Path, n: int) -> list[Path]:
    """``n`` photos of about 1 MP (1155 × 866): people photos scaled up, written once."""
    sources = sorted((DATA / "people").glob("*.jpg"))[:n]
    out = []
    for src in sources:
        target = folder / src.name
        if not target.exists():
            cv2.imwrite(str(target), cv2.resize(cv2.imread(str(src)), (1155, 866)), [cv2.IMWRITE_JPEG_QUALITY, 90])
        out.append(target)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", type=int, default=2000, help="CelebA-size photos per row (default 2000)")
    ap.add_argument("--megapixel", type=int, default=500, help="1 MP photos (default 500)")
    ap.add_argument("--torch-photos", type=int, default=500, help="photos for the PyTorch rows (slow)")
    ap.add_argument("--memory-photos", type=int, nargs=2, default=(1000, 20000))
    ap.add_argument(
        "--ray-photos", type=int, default=9500, help="photos of the Ray comparison (its start costs seconds)"
    )
    ap.add_argument("--no-ray", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "references/benchmarks/results/throughput"))
    args = ap.parse_args()

    celeba = sorted((DATA / "CelebA/img_align_celeba").glob("*.jpg"))[: args.photos]
    cores = len(os.sched_getaffinity(0))
    work = Path(tempfile.mkdtemp(prefix="facemtl_throughput_"))
    mp_dir = Path(tempfile.gettempdir()) / "facemtl_throughput_1mp"
    mp_dir.mkdir(exist_ok=True)
    lists = {
        "celeba": write_list(celeba, work / "celeba.txt"),
        "torch": write_list(celeba[: args.torch_photos], work / "torch.txt"),
        "1mp": write_list(megapixel_photos(mp_dir, args.megapixel), work / "1mp.txt"),
    }
    counts = {"celeba": len(celeba), "torch": min(len(celeba), args.torch_photos), "1mp": args.megapixel}
    out = work / "o.jsonl"
    rows = [
        (
            "facemtl predict, defaults (ONNX Runtime, one worker per core)",
            "celeba",
            lambda: predict(lists["celeba"], out),
        ),
        ("facemtl predict --workers 1", "celeba", lambda: predict(lists["celeba"], out, "--workers", "1")),
        (
            "facemtl predict --backend torch --workers 1 (PyTorch's default threads: predict before the engine)",
            "torch",
            lambda: predict(lists["torch"], out, "--backend", "torch", "--workers", "1", "--threads", str(cores)),
        ),
        ("facemtl predict, defaults, 1 MP photos", "1mp", lambda: predict(lists["1mp"], out)),
        ("OpenCV decode + YuNet (the teacher), 1 thread, a loop", "celeba", lambda: timed(yunet_loop(lists["celeba"]))),
    ]
    figures: dict = {"cores": cores, "photos": counts, "rows": {}}
    for state in ("idle", "busy"):
        procs = burners(2) if state == "busy" else []
        try:
            for label, kind, run in rows:
                wall, peak = run()
                figures["rows"].setdefault(label, {})[state] = {
                    "photos_per_s": counts[kind] / wall,
                    "wall_s": wall,
                    "peak_mb": peak,
                }
                print(f"{state:5} {label}: {counts[kind] / wall:.0f} photos/s ({wall:.1f} s, {peak} MB)", flush=True)
        finally:
            for p in procs:
                p.kill()

    memory = {}
    pool = sorted((DATA / "CelebA/img_align_celeba").glob("*.jpg"))
    for n in args.memory_photos:
        listing = write_list(distinct_copies(pool, n, work / "copies"), work / f"mem{n}.txt")
        wall, peak = predict(listing, out)
        memory[n] = {"peak_mb": peak, "photos_per_s": n / wall}
        print(f"memory: {n} photos, peak {peak} MB, {n / wall:.0f} photos/s", flush=True)
    figures["memory"] = memory

    if not args.no_ray:
        ray_list = write_list(pool[: args.ray_photos], work / "ray.txt")
        n = min(len(pool), args.ray_photos)
        local_out, ray_out = work / "local.jsonl", work / "ray.jsonl"
        local_wall, _ = predict(ray_list, local_out)
        one_wall, _ = predict(ray_list, work / "one.jsonl", "--workers", "1")
        env = {**os.environ, "RAY_DISABLE_USAGE_STATS": "1"}
        ray_wall, ray_peak = predict(ray_list, ray_out, "--engine", "ray", env=env)
        same = local_out.read_text() == ray_out.read_text()
        figures["ray"] = {
            "photos": n,
            "photos_per_s": n / ray_wall,
            "local_photos_per_s": n / local_wall,
            "one_worker_photos_per_s": n / one_wall,
            "peak_mb": ray_peak,
            "same_records": same,
        }
        print(f"ray: {n / ray_wall:.0f} photos/s (local {n / local_wall:.0f}); same records: {same}")
    shutil.rmtree(work, ignore_errors=True)

    report = Report()
    report(
        f"## Photos/s on this machine ({cores} cores), idle and busy (two CPU burners beside it)\n\n"
        f"CelebA-size photos: {counts['celeba']} (PyTorch rows: {counts['torch']}); 1 MP photos: {counts['1mp']}. "
        "Wall time of the whole command (start-up, decoding, networks, writing).\n"
    )
    report("| run | idle photos/s | busy photos/s | busy / idle | peak memory MB (idle) |")
    report("| --- | --- | --- | --- | --- |")
    for label, by in figures["rows"].items():
        idle, busy = by["idle"]["photos_per_s"], by["busy"]["photos_per_s"]
        report(f"| {label} | {idle:.0f} | {busy:.0f} | {100 * busy / idle:.0f} % | {by['idle']['peak_mb']} |")
    report("\n## Memory: peak resident memory of the process tree by collection size\n")
    report("| photos | peak MB | photos/s |")
    report("| --- | --- | --- |")
    for n, m in memory.items():
        report(f"| {n:,} | {m['peak_mb']} | {m['photos_per_s']:.0f} |")
    if "ray" in figures:
        r = figures["ray"]
        report("\n## At scale: the local engine (one worker and one per core) and Ray Data on the same machine\n")
        report(f"{r['photos']:,} CelebA photos, the whole command (a local Ray starts in it: about 8 s here).\n")
        report("| engine | photos/s | records equal to the local engine's |")
        report("| --- | --- | --- |")
        report(f"| local (defaults: one worker per core) | {r['local_photos_per_s']:.0f} | — |")
        report(f"| local, --workers 1 | {r['one_worker_photos_per_s']:.0f} | — |")
        report(
            f"| ray (local Ray, one actor per core) | {r['photos_per_s']:.0f} | {'yes' if r['same_records'] else 'NO'} |"
        )
    md, js = report.save(args.out, figures)
    print(f"wrote {md} and {js}")


if __name__ == "__main__":
    main()
