"""A weights file is input: a user downloads one from a colleague. Every hostile header, config
and tensor set below is refused with a ValueError naming the file and what was wrong, before the
model it describes is allocated (issue 34)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save_file

from facemtl.cli import main
from facemtl.models import create_model
from facemtl.models.weights import META_KEY, load_model, read_config, save_model

Mutation = Callable[[dict[str, Any]], Any]


def _saved(model: str, folder: Path) -> Path:
    """An untrained ``model``'s weights file: a well-formed start for each hostile edit."""
    torch.manual_seed(0)
    path = folder / f"{model}.safetensors"
    save_model(create_model(model), path)
    return path


@pytest.fixture(scope="module")
def landmark_file(tmp_path_factory) -> Path:
    return _saved("tcdcn", tmp_path_factory.mktemp("weights"))


@pytest.fixture(scope="module")
def detector_file(tmp_path_factory) -> Path:
    return _saved("facemtl_det", tmp_path_factory.mktemp("weights"))


def _tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


def _config(path: Path) -> dict[str, Any]:
    return json.loads(json.dumps(read_config(path).to_dict()))  # lists, as a header holds them


def craft(out: Path, config: Any, tensors: dict[str, torch.Tensor], *, raw_meta: str | None = None) -> Path:
    """A safetensors file whose facemtl header holds ``config`` (any JSON value, NaN included)."""
    meta = raw_meta if raw_meta is not None else json.dumps({"format_version": 2, "config": config})
    save_file(tensors, str(out), metadata={META_KEY: meta})
    return out


def _set(path: str, value: Any) -> Mutation:
    """A mutation setting one (dotted) field of a config dict."""

    def mutate(c: dict[str, Any]) -> dict[str, Any]:
        *parents, last = path.split(".")
        target = c
        for p in parents:
            target = target[int(p)] if isinstance(target, list) else target[p]
        target[last] = value
        return c

    mutate.__name__ = f"{path}={value!r}"[:40]
    return mutate


def _drop(name: str) -> Mutation:
    def mutate(c: dict[str, Any]) -> dict[str, Any]:
        del c[name]
        return c

    return mutate


# (mutation of a landmark model's config, the field the error must name)
LANDMARK_CASES: list[tuple[Mutation, str]] = [
    (_set("input_size", "sixty-four"), "input_size"),
    (_set("input_size", 64.5), "input_size"),
    (_set("input_size", 4096), "input_size"),
    (_set("input_size", 0), "input_size"),
    (_set("input_size", -40), "input_size"),
    (_set("input_size", True), "input_size"),
    (_set("input_size", None), "input_size"),
    (_set("channels", 7), "channels"),
    (_set("channels", 2), "channels"),
    (_set("feature_dim", 0), "feature_dim"),
    (_set("feature_dim", 10**9), "feature_dim"),
    (_set("std", 0), "std"),
    (_set("std", -0.5), "std"),
    (_set("std", math.nan), "std"),
    (_set("mean", "0.5"), "mean"),
    (_set("mean", math.inf), "mean"),
    (_set("crop_scale", math.nan), "crop_scale"),
    (_set("crop_scale", math.inf), "crop_scale"),
    (_set("crop_scale", 0), "crop_scale"),
    (_set("crop_scale", 1e9), "crop_scale"),
    (_set("dropout", 1.5), "dropout"),
    (_set("convs", []), "convs"),
    (_set("convs", "abc"), "convs"),
    (_set("convs", [5]), "convs[0]"),
    (_set("convs", [{"out": 16}] * 100), "convs"),
    (_set("convs.0.out", 0), "out"),
    (_set("convs.0.kernel", 99), "kernel"),
    (_set("convs.0.padding", "full"), "padding"),
    (_set("convs.0.stride", 1.5), "stride"),
    (_set("convs.0.bogus", 1), "bogus"),
    (_set("bogus", 1), "bogus"),
    (_drop("name"), "name"),
    (_set("name", 5), "name"),
    (_set("trunk", "transformer"), "trunk"),
    (_set("experts", 0), "experts"),
    (_set("batch_norm", "yes"), "batch_norm"),
    (_set("kind", "elephant"), "kind"),
    (_set("tasks", "x"), "tasks"),
    (_set("tasks.landmarks.names", []), "names"),
    (_set("tasks.landmarks.names", [f"p{i}" for i in range(5000)]), "names"),
    (_set("tasks.landmarks.flip_pairs", [[0, 99]]), "flip_pairs"),
    (_set("tasks.landmarks.flip_pairs", [[0, 1, 2]]), "flip_pairs"),
    (_set("tasks.landmarks.iod_groups", [[], [1]]), "iod_groups"),
    (_set("tasks.landmarks.iod_groups", "eyes"), "iod_groups"),
    (_set("tasks.landmarks.to_mtfl5", [[0]]), "to_mtfl5"),
    (_set("tasks.attributes", [{"name": "g", "labels": ["only"]}]), "labels"),
    (_set("tasks.attributes.0.flip_permutation", [0, 0]), "flip_permutation"),
    (_set("tasks.attributes.0.weight", math.nan), "weight"),
    (_set("tasks.attributes.1.name", "gender"), "unique"),
    (_set("tasks.landmark_weight", -1), "landmark_weight"),
    (_set("temperatures", {"gender": -1}), "temperatures"),
    (_set("temperatures", {"nope": 1.0}), "temperatures"),
    (_set("temperatures", [1.0]), "temperatures"),
]


def _refused(source: Path, out: Path, mutate: Mutation, field: str) -> None:
    """``source``'s config mutated, its tensors kept: loading is a ValueError naming file and field."""
    bad = craft(out / "bad.safetensors", mutate(_config(source)), _tensors(source))
    with pytest.raises(ValueError) as e:
        load_model(bad)
    assert str(e.value).startswith(str(bad)), e.value
    assert field in str(e.value), e.value


@pytest.mark.parametrize("mutate, field", LANDMARK_CASES, ids=[m.__name__ for m, _ in LANDMARK_CASES])
def test_a_hostile_landmark_config_is_refused_naming_file_and_field(landmark_file, tmp_path, mutate, field):
    _refused(landmark_file, tmp_path, mutate, field)


DETECTOR_CASES: list[tuple[Mutation, str]] = [
    (_set("stages", [[32, 1], [56, 2], [80, 2]]), "stages"),
    (_set("stages", [[0, 1], [56, 2], [80, 2], [112, 2]]), "stages"),
    (_set("stages", [[32, 100], [56, 2], [80, 2], [112, 2]]), "stages"),
    (_set("strides", [4, 8]), "strides"),
    (_set("score_threshold", 0), "score_threshold"),
    (_set("score_threshold", 1.5), "score_threshold"),
    (_set("score_threshold", math.nan), "score_threshold"),
    (_set("small_face_threshold", "low"), "small_face_threshold"),
    (_set("box_rule", [0, 0]), "box_rule"),
    (_set("box_rule", [0, 0, 0]), "box_rule"),
    (_set("max_side", 10**9), "max_side"),
    (_set("input_size", 4096 * 8), "input_size"),
    (_set("anchors", "centre"), "anchors"),
    (_set("neck", 10**6), "neck"),
    (_set("stem", -1), "stem"),
    (_set("smallest_face", math.inf), "smallest_face"),
]


@pytest.mark.parametrize("mutate, field", DETECTOR_CASES, ids=[m.__name__ for m, _ in DETECTOR_CASES])
def test_a_hostile_detector_config_is_refused_naming_file_and_field(detector_file, tmp_path, mutate, field):
    _refused(detector_file, tmp_path, mutate, field)


HEADERS: list[tuple[str, str, str]] = [
    ("config a list", json.dumps({"format_version": 2, "config": [1, 2]}), "JSON object"),
    ("config null", json.dumps({"format_version": 2, "config": None}), "JSON object"),
    ("config a string", json.dumps({"format_version": 2, "config": "tcdcn"}), "JSON object"),
    ("record a list", json.dumps([1, 2]), "without a facemtl model config"),
    ("record not JSON", "{not json", "without a facemtl model config"),
    ("record without config", json.dumps({"format_version": 2}), "without a facemtl model config"),
]


@pytest.mark.parametrize("name, meta, message", HEADERS, ids=[h[0] for h in HEADERS])
def test_a_hostile_header_record_is_refused(landmark_file, tmp_path, name, meta, message):
    bad = craft(tmp_path / "bad.safetensors", None, _tensors(landmark_file), raw_meta=meta)
    with pytest.raises(ValueError, match=message) as e:
        load_model(bad)
    assert str(e.value).startswith(str(bad))


def test_a_file_that_is_not_safetensors_is_refused(landmark_file, tmp_path):
    cases = {
        "empty": b"",
        "text": b"hello, this is not a weights file",
        "huge header length": (2**62).to_bytes(8, "little") + b"{}",
        "cut in half": landmark_file.read_bytes()[: landmark_file.stat().st_size // 2],
        "header cut": landmark_file.read_bytes()[:100],
    }
    for name, data in cases.items():
        bad = tmp_path / f"{name.replace(' ', '_')}.safetensors"
        bad.write_bytes(data)
        with pytest.raises(ValueError) as e:
            load_model(bad)
        assert str(e.value).startswith(str(bad)), (name, e.value)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.safetensors"):
        load_model(tmp_path / "nothing.safetensors")


def test_tensors_that_disagree_with_the_config_are_refused_before_allocation(landmark_file, tmp_path):
    """A config in range whose model the file's tensors do not describe (input_size 512 in a
    small file: an FC layer of hundreds of MB) is refused from the header's shapes alone."""
    config, tensors = _config(landmark_file), _tensors(landmark_file)
    cases = {
        "bigger input": (_set("input_size", 512)(dict(config)), tensors),
        "other feature size": (_set("feature_dim", 128)(dict(config)), tensors),
        "tensor missing": (config, {k: v for k, v in tensors.items() if k != "heads.smile.bias"}),
        "tensor extra": (config, {**tensors, "extra.weight": torch.zeros(3)}),
    }
    for name, (cfg, ts) in cases.items():
        bad = craft(tmp_path / f"{name.replace(' ', '_')}.safetensors", cfg, ts)
        with pytest.raises(ValueError, match="do not match its model config") as e:
            load_model(bad)
        assert str(e.value).startswith(str(bad)), (name, e.value)


def test_tensors_holding_nan_are_refused(landmark_file, tmp_path):
    tensors = _tensors(landmark_file)
    name = next(k for k in tensors if k.endswith("weight"))
    tensors[name] = tensors[name].clone()
    tensors[name].view(-1)[0] = float("nan")
    bad = craft(tmp_path / "nan.safetensors", _config(landmark_file), tensors)
    with pytest.raises(ValueError, match=f"NaN or infinite values: {name}"):
        load_model(bad)


def test_the_command_line_names_a_bad_weights_file(landmark_file, tmp_path, capsys):
    bad = craft(tmp_path / "bad.safetensors", _set("std", 0)(_config(landmark_file)), _tensors(landmark_file))
    photo = tmp_path / "p.png"
    photo.write_bytes(b"")  # never reached: the model is refused first
    assert main(["predict", str(photo), "--model", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("facemtl predict: error: ") and str(bad) in err and "std must be > 0" in err
    assert "Traceback" not in err


def test_every_shipped_model_still_loads():
    from facemtl.models.pretrained import PRETRAINED

    for name in PRETRAINED:
        load_model(name)
