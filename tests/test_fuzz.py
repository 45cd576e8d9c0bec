"""Property-based fuzzing of everything facemtl reads from users (issue 34): weights headers,
model configs, recipes and annotation lines. Whatever the input, the reader returns a value or
raises its named error (a ValueError subclass naming the field, file or line), never another
exception. Derandomised and bounded, so the suite stays deterministic and quick."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from facemtl.data.mtfl import parse_mtfl_line
from facemtl.data.samples import AnnotationError
from facemtl.data.w300 import read_pts
from facemtl.models import config_from_dict, create_model
from facemtl.training.config import TrainConfig

FUZZ = settings(
    max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=12,
)

LANDMARK_CONFIG = json.loads(json.dumps(create_model("tcdcn").config.to_dict()))
DETECTOR_CONFIG = json.loads(json.dumps(create_model("facemtl_det").config.to_dict()))


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a value inside nested dicts and lists."""
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


def _replace(value: Any, path: tuple, new: Any) -> Any:
    copy = json.loads(json.dumps(value))
    target = copy
    for p in path[:-1]:
        target = target[p]
    target[path[-1]] = new
    return copy


def _mutations(base: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """``base`` with one to three values anywhere inside replaced by arbitrary JSON."""
    paths = _paths(base)

    @st.composite
    def mutate(draw: st.DrawFn) -> dict[str, Any]:
        value = base
        for _ in range(draw(st.integers(1, 3))):
            live = [p for p in paths if _exists(value, p)]
            value = _replace(value, draw(st.sampled_from(live)), draw(json_values))
        return value

    return mutate()


def _exists(value: Any, path: tuple) -> bool:
    for p in path:
        if isinstance(value, dict) and p in value or isinstance(value, list) and isinstance(p, int) and p < len(value):
            value = value[p]
        else:
            return False
    return True


@FUZZ
@given(config=st.one_of(_mutations(LANDMARK_CONFIG), _mutations(DETECTOR_CONFIG), json_values))
def test_model_configs_are_read_or_refused_with_a_value_error(config):
    try:
        parsed = config_from_dict(config)
    except ValueError:
        return
    # accepted: every field within its bounds, so building the model on the meta device is safe
    import torch

    with torch.device("meta"):
        create_model(parsed)


@FUZZ
@given(meta=st.one_of(st.text(max_size=200), json_values.map(json.dumps)))
def test_weights_headers_are_read_or_refused_naming_the_file(tmp_path_factory, meta):
    import torch
    from safetensors.torch import save_file

    from facemtl.models.weights import META_KEY, read_config

    path = tmp_path_factory.mktemp("fuzz") / "w.safetensors"
    save_file({"x": torch.zeros(1)}, str(path), metadata={META_KEY: meta})
    try:
        read_config(path)
    except ValueError as e:
        assert str(e).startswith(str(path))


RECIPE = json.loads(json.dumps(TrainConfig().to_dict()))


@FUZZ
@given(recipe=st.one_of(_mutations(RECIPE), json_values))
def test_recipes_are_read_or_refused_with_a_value_error(recipe):
    try:
        TrainConfig.from_dict(recipe) if isinstance(recipe, dict) else TrainConfig.from_dict({"train": recipe})
    except ValueError:
        pass


tokens = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=6),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.integers(-5, 10).map(str),
)


@FUZZ
@given(parts=st.lists(tokens, max_size=17))
def test_mtfl_lines_are_parsed_or_refused_naming_the_line(parts):
    try:
        parse_mtfl_line(" ".join(parts), Path("."), "f.txt:3")
    except AnnotationError as e:
        assert str(e).startswith("f.txt:3: ")


@FUZZ
@given(
    lines=st.lists(
        st.one_of(tokens, st.sampled_from(["{", "}", "version: 1", "n_points: 2", "n_points: 68", "1 2", ""])),
        max_size=12,
    )
)
def test_pts_files_are_read_or_refused_naming_the_file(tmp_path_factory, lines):
    path = tmp_path_factory.mktemp("fuzz") / "a.pts"
    path.write_text("\n".join(lines))
    try:
        points = read_pts(path)
    except AnnotationError as e:
        assert str(e).startswith(str(path))
    else:
        assert points.ndim == 2 and points.shape[1] == 2


@pytest.mark.parametrize("mode", ["header", "bytes"])
def test_random_bytes_are_never_weights(tmp_path, mode):
    import random

    from facemtl.models.weights import load_model

    rng = random.Random(0)
    for i in range(40):
        data = rng.randbytes(rng.randrange(0, 300))
        if mode == "header":  # a plausible length prefix, then garbage
            data = len(data).to_bytes(8, "little") + data
        path = tmp_path / f"{i}.safetensors"
        path.write_bytes(data)
        with pytest.raises(ValueError, match=str(path)):
            load_model(path)
