"""The public surface: what ``import facemtl`` offers, the shipped models by name, the recipe flags.

Pinned on purpose: removing or renaming a public name breaks users, so it must break this test too.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

import facemtl
from facemtl import cli
from facemtl.models.pretrained import PRETRAINED, get_pretrained, resolve_weights
from facemtl.training.config import LANDMARK_LOSS_NAMES, TRUNK_NAMES, TrainConfig

PUBLIC = {
    "AnnotationError", "AttributePrediction", "AttributeTask", "Detection", "EvalReport", "Face",
    "FaceAnalyzer", "FaceDataset", "FaceSample", "FaceTracker", "TrackerParams", "ImageReadError", "Landmark5", "LandmarkSpec", "Landmarker",
    "MTFL_TASKS", "PRETRAINED", "Pretrained", "TaskSet", "TrainConfig", "__version__", "create_detector",
    "create_model", "draw_faces", "evaluate", "get_pretrained", "list_models", "load_model", "read_300w_folder",
    "read_image", "read_mtfl", "read_photos", "read_pts", "save_model",
}  # fmt: skip


def test_public_names_are_pinned_and_all_resolve():
    assert set(facemtl.__all__) == PUBLIC
    for name in facemtl.__all__:
        assert getattr(facemtl, name) is not None, name
    from facemtl.analysis.analyzer import FaceAnalyzer

    assert facemtl.FaceAnalyzer is FaceAnalyzer
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = facemtl.nope


def test_import_and_cli_parsing_load_no_heavy_libraries():
    code = (
        "import sys, facemtl, facemtl.cli; "
        "facemtl.cli.build_parser().parse_args(['train', '--out', 'x', '--epochs', '3', '--scenes.size', '320']); "
        "print(sorted(m for m in ('torch', 'cv2', 'albumentations', 'numpy') if m in sys.modules))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "[]"


def test_version_is_the_packages():
    r = subprocess.run([sys.executable, "-m", "facemtl", "--version"], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == f"facemtl {facemtl.__version__}"


# -- shipped models by name ---------------------------------------------------------------------
def test_every_shipped_model_loads_by_name_and_matches_its_checksum():
    kinds = {"landmarks": "MultiTaskNet", "detector": "FaceDetectorNet"}
    for name, entry in PRETRAINED.items():
        model = facemtl.load_model(name)
        assert type(model).__name__ == kinds[entry.kind]
        card = entry.card()
        assert card["name"] == name and card["provenance"]["licence"] == entry.licence
        assert all(v is not None for v in entry.metrics().values()), (
            f"{name}: a headline figure is missing from its card"
        )


def test_a_wrong_model_name_lists_the_shipped_ones():
    with pytest.raises(
        KeyError, match="shipped: facemtl_mtfl, facemtl_mtfl_celeba, facemtl_300w68, facemtl_m_age, facemtl_det"
    ):
        get_pretrained("facemtl_big")
    with pytest.raises(KeyError, match="neither a file nor a pretrained model; shipped: facemtl_mtfl"):
        resolve_weights("facemtl_big", "facemtl_mtfl")
    r = subprocess.run([sys.executable, "-m", "facemtl", "predict", "x.jpg", "--model", "facemtl_big"],
                       capture_output=True, text=True)  # fmt: skip
    assert r.returncode == 2
    assert r.stderr.strip() == (
        "facemtl predict: error: 'facemtl_big' is neither a file nor a pretrained model; shipped: facemtl_mtfl, facemtl_mtfl_celeba, facemtl_300w68, facemtl_m_age, facemtl_det"
    )


def test_a_damaged_weights_file_is_refused(tmp_path, monkeypatch):
    entry = PRETRAINED["facemtl_det"]
    damaged = tmp_path / entry.file
    data = bytearray(entry.path.read_bytes())
    data[-1] ^= 1
    damaged.write_bytes(bytes(data))
    monkeypatch.setattr("facemtl.models.pretrained.weights_dir", lambda: tmp_path)
    with pytest.raises(ValueError, match="SHA-256 .* does not match 'facemtl_det'"):
        facemtl.load_model("facemtl_det")


def test_models_command_lists_names_with_figures_from_the_cards():
    r = subprocess.run([sys.executable, "-m", "facemtl", "models"], capture_output=True, text=True, check=True)
    mtfl = get_pretrained("facemtl_mtfl").card()
    assert "facemtl_mtfl" in r.stdout and "facemtl_det" in r.stdout
    assert f"MTFL test NME % {mtfl['mtfl_test']['nme']:.2f}" in r.stdout
    assert r.stdout.count("licence:") == len(PRETRAINED)


# -- recipe flags generated from the config dataclasses -----------------------------------------
def _train_flags() -> dict[str, argparse.Action]:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {opt: a for a in sub.choices["train"]._actions for opt in a.option_strings}


def _recipe_paths(cls, prefix=""):
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(f.default):
            yield from _recipe_paths(type(f.default), f"{prefix}{f.name}.")
        else:
            yield prefix + f.name


def test_every_recipe_field_has_a_flag_with_help():
    flags = _train_flags()
    for path in _recipe_paths(TrainConfig):
        flag = "--" + path.replace("_", "-")
        assert flag in flags, flag
        assert flags[flag].help, f"{flag} has no help text"


def test_flags_override_the_recipe_file(tmp_path):
    recipe = tmp_path / "r.json"
    recipe.write_text(json.dumps({"epochs": 5, "task_weights": {"smile": 0.3}, "augment": {"rotate": 10}}))
    args = cli.build_parser().parse_args([
        "train", "--config", str(recipe), "--out", "o", "--lr", "0.01", "--augment.scale", "0.9", "1.1",
        "--no-augment.photometric", "--task-weights", "gender=0.5", "--model-overrides", "trunk=mmoe", "experts=3",
        "--tasks", "gender,smile", "--train", "300w:some/folder", "extra.txt", "--scenes.grid", "2", "4",
    ])  # fmt: skip
    cfg = cli.recipe_from_args(args)
    assert cfg.epochs == 5 and cfg.lr == 0.01
    assert cfg.augment.rotate == 10 and cfg.augment.scale == (0.9, 1.1) and cfg.augment.photometric is False
    assert cfg.task_weights == {"smile": 0.3, "gender": 0.5}
    assert cfg.model_overrides == {"trunk": "mmoe", "experts": 3}
    assert cfg.tasks == ("gender", "smile") and cfg.scenes.grid == (2, 4)
    assert [(s.kind, s.path) for s in cfg.train] == [("300w", "some/folder"), ("mtfl", "extra.txt")]


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--epochs", "0"], "epochs must be ≥ 1; got 0"),
        (["--augment.flip", "1.5"], "augment.flip must be ≤ 1; got 1.5"),
        (["--scenes.size", "100"], "scenes.size must be a multiple of 32"),
        (["--model-overrides", "trunk=towers"], "model_overrides.trunk must be one of shared, mmoe; got 'towers'"),
        (["--landmark-loss", "huber"], "argument --landmark-loss: invalid choice: 'huber'"),
        (["--lr", "fast"], "argument --lr: invalid float value: 'fast'"),
        (["--task-weights", "smile"], "argument --task-weights: expected KEY=VALUE, got 'smile'"),
    ],
)
def test_a_bad_recipe_value_is_a_named_error(flags, message, tmp_path):
    r = subprocess.run([sys.executable, "-m", "facemtl", "train", "--out", str(tmp_path), *flags],
                       capture_output=True, text=True)  # fmt: skip
    assert r.returncode == 2 and message in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_recipe_choices_match_what_the_library_implements():
    from facemtl.models.config import TRUNKS as CONFIG_TRUNKS
    from facemtl.models.multitask import TRUNKS
    from facemtl.training.balancing import create_balancer
    from facemtl.training.config import BALANCING
    from facemtl.training.losses import LANDMARK_LOSSES

    assert set(TRUNK_NAMES) == set(TRUNKS) == set(CONFIG_TRUNKS)
    assert set(LANDMARK_LOSS_NAMES) == set(LANDMARK_LOSSES)
    for strategy in BALANCING:
        create_balancer(strategy, ["landmarks", "smile"])


def test_every_shipped_recipe_loads():
    root = Path(__file__).parents[1]
    paths = sorted([*(root / "references/recipes").glob("*.json"), *(root / "experiments/recipes").glob("*.json")])
    assert len(paths) >= 25
    for path in paths:
        TrainConfig.from_json(path)


@pytest.mark.parametrize(
    "recipe, message",
    [
        ({"epochs": "ten"}, "epochs must be an integer; got 'ten'"),
        ({"cache": "yes"}, "cache must be true or false; got 'yes'"),
        ({"augment": {"photometric": 1}}, "augment.photometric must be true or false; got 1"),
        ({"scenes": {"grid": [3, 2]}}, "scenes.grid must be (low, high)"),
    ],
)
def test_a_bad_value_in_a_recipe_file_names_file_and_field(recipe, message, tmp_path):
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps(recipe))
    with pytest.raises(ValueError) as e:
        TrainConfig.from_json(path)
    assert str(e.value).startswith(f"{path}: {message}")


def test_every_public_class_and_function_has_a_docstring():
    import inspect

    missing = [
        name
        for name in facemtl.__all__
        if (inspect.isclass(obj := getattr(facemtl, name)) or inspect.isfunction(obj))
        and (not (doc := inspect.getdoc(obj)) or doc.startswith(f"{name}("))  # a dataclass's generated doc
    ]
    assert not missing, f"public names without a docstring: {missing}"


def test_generated_docs_pages_are_current():
    """docs/cli.md and docs/models.md are generated from the parsers and the model cards."""
    root = Path(__file__).parents[1]
    r = subprocess.run([sys.executable, "scripts/gen_docs.py", "--check"], cwd=root, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_quoted_prose_figures_are_refilled_from_their_source():
    """A figure quoted in prose is marked with its source; a hand-typed stale value is replaced,
    and a pointer to nothing is an error naming it."""
    import importlib.util

    path = Path(__file__).parents[1] / "scripts" / "gen_docs.py"
    spec = importlib.util.spec_from_file_location("gen_docs", path)
    assert spec and spec.loader
    gen_docs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen_docs)
    nme = facemtl.get_pretrained("facemtl_mtfl").card()["mtfl_test"]["nme"]
    mark = "<!--fig card:facemtl_mtfl#/mtfl_test/nme .2f-->"
    text = f"error {mark}9.99<!--/fig--> %, twice: {mark}<!--/fig-->"
    assert gen_docs.fill_blocks(text) == f"error {mark}{nme:.2f}<!--/fig--> %, twice: {mark}{nme:.2f}<!--/fig-->"
    with pytest.raises(KeyError, match="no 'nope' there"):
        gen_docs.fill_blocks("<!--fig end_to_end#/detectors/nope .1f-->1<!--/fig-->")


def test_a_reader_that_leaves_early_is_not_an_error():
    """`facemtl models | head`: when the reader has gone, the command stops quietly with status 0."""
    import os

    read, write = os.pipe()
    os.close(read)  # the reader is gone before the command writes anything
    try:
        r = subprocess.run([sys.executable, "-m", "facemtl", "models"], stdout=write, stderr=subprocess.PIPE, text=True)
    finally:
        os.close(write)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
