"""The house: the runtime wings import nothing of the training wing and run without torch or
albumentations; the shipped ONNX files are the PyTorch networks; the runtime options are declared once."""

from __future__ import annotations

import ast
import inspect
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "facemtl"
#: The wings a photo's analysis runs in, and the modules of ``models`` that belong to the runtime.
RUNTIME_WINGS = ("core", "detection", "analysis", "video")
RUNTIME_MODELS = ("config", "detector_config", "registry", "arrays", "onnx_runtime", "loading", "pretrained")
#: What the runtime must never import (at module level, or at all for the training wing).
TRAINING = ("facemtl.training", "facemtl.data", "facemtl.evaluation")
HEAVY = ("torch", "albumentations", "safetensors", "onnx")

BLOCK = """
import sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {heavy!r}:
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, _Block())
"""


def runtime_modules() -> list[str]:
    names = [f"facemtl.models.{m}" for m in RUNTIME_MODELS]
    for wing in RUNTIME_WINGS:
        for path in sorted((PACKAGE / wing).glob("*.py")):
            names.append(f"facemtl.{wing}" if path.stem == "__init__" else f"facemtl.{wing}.{path.stem}")
    return names


def imports_of(module: str) -> list[tuple[str, bool]]:
    """Every facemtl/third-party module a module's source imports, and whether at module level."""
    path = PACKAGE.parent / (module.replace(".", "/") + ".py")
    if not path.exists():
        path = PACKAGE.parent / module.replace(".", "/") / "__init__.py"
    tree = ast.parse(path.read_text())
    top = {id(n) for n in tree.body}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, id(node) in top) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.append((node.module, id(node) in top))
    return out


def test_no_runtime_module_imports_the_training_wing():
    bad = [
        f"{m} imports {name}"
        for m in runtime_modules()
        for name, _ in imports_of(m)
        if name.startswith(TRAINING) or name == "facemtl.cli"
    ]
    assert not bad, bad


def test_every_runtime_module_imports_without_torch_or_albumentations():
    code = BLOCK.format(heavy=HEAVY) + "import importlib\nfor m in {mods!r}: importlib.import_module(m)\nprint('ok')"
    r = subprocess.run(
        [sys.executable, "-c", code.format(mods=runtime_modules())], capture_output=True, text=True, cwd=ROOT
    )
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]


def test_a_photo_is_analysed_without_torch_through_four_wings(photo_path):
    code = BLOCK.format(heavy=HEAVY) + (
        "import sys\nfrom facemtl import FaceAnalyzer\n"
        f"faces = FaceAnalyzer.from_pretrained().analyze({str(photo_path)!r})\n"
        "wings = sorted({m.split('.')[1] for m in sys.modules if m.startswith('facemtl.')})\n"
        "print(len(faces), type(faces[0].landmarks).__name__, ' '.join(wings))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    n, kind, wings = r.stdout.split(maxsplit=2)
    assert int(n) >= 1 and kind == "ndarray"
    assert wings.split() == ["analysis", "core", "detection", "models"]


@pytest.fixture
def photo_path(tmp_path):
    """A photo with one face: the bundled demo portrait where matplotlib has it, else a drawn face."""
    try:
        import matplotlib.cbook as cbook

        return Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    except ImportError:
        pytest.skip("matplotlib's sample photo is not installed")


# -- the shipped ONNX files ---------------------------------------------------------------------
def test_every_shipped_onnx_file_is_its_pytorch_network():
    """The file a plain install runs matches its checksum and gives the PyTorch network's outputs."""
    import torch

    from facemtl.models.onnx_runtime import open_onnx
    from facemtl.models.pretrained import PRETRAINED
    from facemtl.models.weights import load_model

    rng = np.random.default_rng(0)
    for name, entry in PRETRAINED.items():
        net, model = open_onnx(entry.verified_onnx_path()), load_model(name)
        assert net.config == model.config, name
        c = model.config
        shape = (3, 3, 97, 129) if c.kind == "detector" else (4, c.channels, c.input_size, c.input_size)
        x = rng.standard_normal(shape).astype(np.float32)
        with torch.inference_mode():
            expected = model(torch.from_numpy(x))
        got = net.run_arrays(x)
        if c.kind == "detector":
            np.testing.assert_allclose(got, expected.numpy(), atol=2e-4, err_msg=name)
        else:
            np.testing.assert_allclose(got["landmarks"], expected["landmarks"].numpy(), atol=2e-5, err_msg=name)
            for task, logits in expected["attributes"].items():
                np.testing.assert_allclose(got["attributes"][task], logits.numpy(), atol=2e-4, err_msg=name)


def test_a_changed_onnx_file_is_refused(tmp_path, monkeypatch):
    import shutil

    import facemtl.models.pretrained as pretrained

    shutil.copytree(pretrained.weights_dir(), tmp_path / "w", ignore=shutil.ignore_patterns("*.safetensors"))
    target = tmp_path / "w" / "facemtl_det.onnx"
    target.write_bytes(target.read_bytes()[:-1] + b"\0")
    monkeypatch.setattr(pretrained, "weights_dir", lambda: tmp_path / "w")
    with pytest.raises(ValueError, match=r"facemtl_det.onnx: SHA-256 .* does not match 'facemtl_det'"):
        pretrained.get_pretrained("facemtl_det").verified_onnx_path()


def test_own_weights_run_on_onnx_exported_once_into_the_cache(tmp_path, monkeypatch):
    """A user's safetensors file runs with ONNX Runtime: exported on first use into the cache (keyed by
    the file's digest), read from there afterwards without exporting again."""
    import facemtl.models.export as export
    from facemtl.models.loading import load_network
    from facemtl.models.onnx_runtime import OnnxNet
    from facemtl.models.pretrained import PRETRAINED

    monkeypatch.setenv("FACEMTL_CACHE", str(tmp_path / "cache"))
    own = tmp_path / "mine.safetensors"
    own.write_bytes(PRETRAINED["facemtl_mtfl"].path.read_bytes())
    net = load_network(own, kind="landmarks", default="facemtl_mtfl", backend="onnx")
    assert isinstance(net, OnnxNet)
    cached = list((tmp_path / "cache" / "onnx").glob("*.onnx"))
    assert len(cached) == 1

    def no_export(*a, **k):
        raise AssertionError("exported again")

    monkeypatch.setattr(export, "onnx_bytes", no_export)
    again = load_network(own, kind="landmarks", default="facemtl_mtfl", backend="onnx")
    assert again.config == net.config
    with pytest.raises(ValueError, match="holds a face detector, not a landmark model"):
        load_network("facemtl_det", kind="landmarks", default="facemtl_mtfl", backend="onnx")


# -- runtime options, declared once -------------------------------------------------------------
def test_runtime_options_are_declared_once():
    from facemtl import cli
    from facemtl.analysis.analyzer import FaceAnalyzer
    from facemtl.analysis.landmarker import Landmarker
    from facemtl.analysis.options import BACKENDS, DEFAULTS, VIEW_SETS, option_names
    from facemtl.analysis.views import SHIFT_VIEWS
    from facemtl.models.loading import BACKENDS as LOADING_BACKENDS

    assert set(VIEW_SETS) == set(SHIFT_VIEWS) and BACKENDS == LOADING_BACKENDS
    args = cli.build_parser().parse_args(["predict", "x.jpg"])
    assert cli.analyzer_options(args) == DEFAULTS  # the flags' defaults are the options'
    for fn in (FaceAnalyzer.__init__, FaceAnalyzer.from_pretrained, Landmarker.__init__):
        for name, p in inspect.signature(fn).parameters.items():
            if (
                name in option_names()
                and name not in ("model", "detector")
                and p.default is not inspect.Parameter.empty
            ):
                assert p.default == getattr(DEFAULTS, name), (fn.__qualname__, name)


def test_a_bad_option_on_the_command_line_names_it():
    r = subprocess.run(
        [sys.executable, "-m", "facemtl", "predict", "x.jpg", "--shift-test", "0.7"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert r.returncode == 2 and "shift_test" in r.stderr and "0.7" in r.stderr, r.stderr
