"""Hostile recipes, annotation files and command lines (issue 34): each ends in a named error or
the correct result; a batch goes on past a bad input; nothing a user owns is overwritten."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from facemtl.cli import main
from facemtl.data.mtfl import parse_mtfl_line
from facemtl.data.samples import AnnotationError
from facemtl.data.w300 import read_pts
from facemtl.training.config import TrainConfig

# -- recipes ------------------------------------------------------------------------------------
RECIPES: list[tuple[object, str]] = [
    ({"augment": 5}, "augment must be an object; got 5"),
    ({"augment": []}, "augment must be an object"),
    ({"scenes": "big"}, "scenes must be an object"),
    ({"train": [5]}, "train[0] must be a KIND:PATH string or an object; got 5"),
    ({"train": "small.txt"}, "train must be a list; got 'small.txt'"),
    ({"train": [{"path": 5}]}, "train source.path must be a string"),
    ({"train": [{"path": "x", "kind": "bogus"}]}, "kind must be one of"),
    ({"train": [{"path": "x", "colour": 1}]}, "unknown train[0] key(s): ['colour']"),
    ({"train": [{"kind": "mtfl"}]}, "missing key(s) ['path']"),
    ({"train": [{"path": "x", "weight": -1}]}, "weight must be ≥ 0"),
    ({"model_overrides": [1]}, "model_overrides must be an object"),
    ({"model_overrides": {"trunk": "x"}}, "model_overrides.trunk must be one of"),
    ({"epochs": 0}, "epochs must be ≥ 1"),
    ({"epochs": 1.5}, "epochs must be an integer"),
    ({"lr": "fast"}, "lr must be a number"),
    ({"batch_size": -1}, "batch_size must be ≥ 1"),
    ({"val_fraction": 2}, "val_fraction must be ≤ 0.9"),
    ({"task_weights": {"smile": "high"}}, "task_weights.smile must be a number"),
    ({"task_weights": [1]}, "task_weights must be an object"),
    ({"tasks": 5}, "tasks must be a list"),
    ({"freeze": "trunk"}, "freeze must be a list"),
    ({"augment": {"scale": [1, 2, 3]}}, "augment.scale must have 2 entries"),
    ({"augment": {"rotate": None}}, "augment.rotate must be a number"),
    ({"landmarks": 7}, "landmarks must be one of 5, 68"),
    ({"seed": "zero"}, "seed must be an integer"),
    ([1, 2], "a training config must be a JSON object"),
    ("text", "a training config must be a JSON object"),
]


@pytest.mark.parametrize("recipe, message", RECIPES, ids=[m[:40] for _, m in RECIPES])
def test_a_hostile_recipe_is_refused_naming_file_and_field(tmp_path, recipe, message):
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps(recipe))
    with pytest.raises(ValueError) as e:
        TrainConfig.from_json(path)
    assert str(e.value).startswith(f"{path}: "), e.value
    assert message in str(e.value), e.value


def test_a_recipe_that_is_not_json_names_the_line(tmp_path):
    path = tmp_path / "recipe.json"
    path.write_text('{\n"epochs": 3,\n"lr": }\n')
    with pytest.raises(ValueError, match=r"recipe\.json:3: invalid JSON"):
        TrainConfig.from_json(path)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"input_size": "80"}, "input_size must be an integer"),
        ({"input_size": 4096}, "input_size must be ≤ 512"),
        ({"nope": 1}, "unknown model config field(s) ['nope']"),
        ({"convs": 5}, "convs must be a list"),
        ({"convs": [{"out": "wide"}]}, "out must be an integer"),
        ({"channels": 7}, "channels must be one of 1, 3"),
        ({"std": 0}, "std must be > 0"),
    ],
)
def test_bad_model_overrides_are_a_recipe_error_before_any_data(overrides, message):
    from facemtl.training.jobs import RecipeError, create_job

    cfg = TrainConfig(model="tcdcn", model_overrides=overrides)
    with pytest.raises(RecipeError, match="model_overrides: ") as e:
        create_job(cfg)
    assert message in str(e.value)


def test_a_detector_override_is_checked_too():
    from facemtl.training.jobs import RecipeError, create_job

    with pytest.raises(RecipeError, match="stages"):
        create_job(TrainConfig(model="facemtl_det", model_overrides={"stages": [[8, 1]]}))


def test_shipped_recipes_are_found_by_name(tmp_path, monkeypatch):
    from facemtl.training.config import recipe_path, recipes_dir

    monkeypatch.chdir(tmp_path)  # no references/recipes/ folder here: a pip install's view
    names = sorted(p.stem for p in recipes_dir().glob("*.json"))
    assert "facemtl_mtfl" in names and "facemtl_det" in names
    assert recipe_path("facemtl_mtfl") == recipes_dir() / "facemtl_mtfl.json"
    assert TrainConfig.from_json("facemtl_mtfl.json") == TrainConfig.from_json("facemtl_mtfl")
    with pytest.raises(FileNotFoundError, match="nor a shipped recipe .shipped: .*facemtl_mtfl"):
        recipe_path("facemtl_nope")
    (tmp_path / "mine").mkdir()
    with pytest.raises(ValueError, match="is a folder"):
        recipe_path("mine")


# -- annotation lines ---------------------------------------------------------------------------
MTFL_LINES = [
    ("a.jpg 1 2 3", "expected 11 fields"),
    ("a.jpg " + " ".join(["x"] * 10), "coordinate is not a number"),
    ("a.jpg nan " + " ".join(["1"] * 9), "finite"),
    ("a.jpg inf " + " ".join(["1"] * 9), "finite"),
    ("a.jpg " + " ".join(["1"] * 10) + " 0 1 1 3", "gender code 0 is outside 1..2"),
    ("a.jpg " + " ".join(["1"] * 10) + " 1 9 1 3", "smile code 9 is outside"),
    ("a.jpg " + " ".join(["1"] * 10) + " 1 1 1 x", "pose code 'x' is not an integer"),
    ("a.jpg " + " ".join(["1"] * 10) + " 1 1 1 3 extra", "expected 11 fields"),
]


@pytest.mark.parametrize("line, message", MTFL_LINES)
def test_a_bad_mtfl_line_names_file_line_and_cause(line, message):
    with pytest.raises(AnnotationError, match=r"^train\.txt:7: ") as e:
        parse_mtfl_line(line, Path("."), "train.txt:7")
    assert message in str(e.value)


def test_blank_and_good_mtfl_lines_parse():
    assert parse_mtfl_line("  \r\n", Path("."), "f:1") is None
    s = parse_mtfl_line(r" lfw\a.jpg 1 2 3 4 5 6 7 8 9 10 1 2 2 3", Path("r"), "f:2")
    assert s is not None and s.image == Path("r/lfw/a.jpg")
    np.testing.assert_allclose(s.landmarks[0], [0, 5])  # 1-based in the file, 0-based inside


PTS_FILES = [
    ("version: 1\nn_points: 3\n{\n1 1\n2 2\n", "ends after 2 of 3 points"),
    ("version: 1\nn_points: 2\n{\n1 1\n2 2\n3 3\n}\n", "expected '}' after 2 points"),
    ("version: 1\nn_points: 2\n{\n1 one\n2 2\n}\n", "a.pts:4: expected 'x y'"),
    ("version: 1\nn_points: 2\n{\n1 nan\n2 2\n}\n", "a.pts:4: a point must be finite"),
    ("version: 1\nn_points: -5\n{\n}\n", "n_points must be 1 to 10000"),
    ("version: 1\nn_points: many\n{\n}\n", "bad n_points line"),
    ("version: 1\nn_points: 2\n1 1\n2 2\n", "a header needs both"),
    ("", "empty .pts file"),
    ("1 1\n2 two\n", "a.pts:2: expected 'x y'"),
]


@pytest.mark.parametrize("text, message", PTS_FILES)
def test_a_bad_pts_file_names_file_line_and_cause(tmp_path, text, message):
    pts = tmp_path / "a.pts"
    pts.write_text(text)
    with pytest.raises(AnnotationError) as e:
        read_pts(pts)
    assert message in str(e.value), e.value


def test_a_binary_pts_file_is_named(tmp_path):
    pts = tmp_path / "a.pts"
    pts.write_bytes(b"\xff\xfe\x00\x81" * 10)
    with pytest.raises(AnnotationError, match="a.pts: not a text file"):
        read_pts(pts)


def test_a_pts_file_without_header_reads_as_its_points(tmp_path):
    """68 bare ``x y`` lines, as some copies of Helen ship, read like the headed file."""
    points = np.random.default_rng(0).uniform(1, 300, (68, 2)).round(3)
    body = "".join(f"{x} {y}\n" for x, y in points)
    bare, headed = tmp_path / "bare.pts", tmp_path / "headed.pts"
    bare.write_text(body + "\n")
    headed.write_text(f"version: 1\nn_points: 68\n{{\n{body}}}\n")
    np.testing.assert_array_equal(read_pts(bare), read_pts(headed))
    np.testing.assert_allclose(read_pts(bare), points - 1, atol=1e-4)  # 1-based in the file


# -- predict and draw ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    import matplotlib.cbook as cbook

    src = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    image = cv2.imread(str(src))
    path = tmp_path_factory.mktemp("photos") / "grace.jpg"
    cv2.imwrite(str(path), cv2.resize(image, (256, 300)))
    return path


def _strict_json(line: str) -> dict:
    def refuse(name: str) -> None:
        raise ValueError(f"not JSON: {name}")

    return json.loads(line, parse_constant=refuse)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: [(d / f"{i}.txt").write_text("hi") for i in range(3)], "it holds 3 .txt"),
        (lambda d: (d / "photo.avif").write_bytes(b"\x00" * 64), "it holds 1 .avif"),
        (lambda d: None, "empty folder"),
        (lambda d: (d / "sub").mkdir(), "1 subfolder(s), not searched"),
    ],
    ids=["texts", "avif only", "empty", "subfolder only"],
)
def test_predict_on_a_folder_without_images_says_so_and_fails(tmp_path, capsys, make, message):
    folder = tmp_path / "in"
    folder.mkdir()
    make(folder)
    assert main(["predict", str(folder), "--json"]) == 1
    out, err = capsys.readouterr()
    record = _strict_json(out.strip())
    assert record["image"] == str(folder) and message in record["error"]
    assert "nothing done" in err


def test_predict_on_a_directory_named_like_an_image(tmp_path, capsys):
    folder = tmp_path / "x.jpg"
    folder.mkdir()
    assert main(["predict", str(folder)]) == 1
    err = capsys.readouterr().err
    assert "x.jpg: empty folder" in err and "nothing done" in err


def test_a_batch_goes_on_past_bad_inputs_and_memory_errors(tmp_path, photo, capsys, monkeypatch):
    import facemtl.analysis.analyzer as analyzer

    huge = tmp_path / "huge.jpg"
    huge.write_bytes(photo.read_bytes())
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(photo.read_bytes()[:200])
    real = analyzer.load_input

    def load_input(image, *a, **kw):  # memory pressure on one photo, as a 16k × 16k scan meets it
        if str(image).endswith("huge.jpg"):
            raise MemoryError
        return real(image, *a, **kw)

    monkeypatch.setattr(analyzer, "load_input", load_input)
    assert main(["predict", str(broken), str(huge), str(photo), "--json"]) == 1
    out, err = capsys.readouterr()
    records = [_strict_json(line) for line in out.splitlines()]
    assert [r["image"] for r in records] == [str(broken), str(huge), str(photo)]
    assert "cannot decode" in records[0]["error"] and records[1]["error"].startswith("out of memory")
    assert len(records[2]["faces"]) == 1
    assert "2 of 3 input(s) failed" in err


def test_json_lines_never_hold_nan():
    from facemtl.analysis.analyzer import json_line

    line = json_line({"image": "a", "faces": [{"score": math.nan, "box": [1.0, math.inf, -math.inf, 2.0]}]})
    assert _strict_json(line) == {"image": "a", "faces": [{"score": None, "box": [1.0, None, None, 2.0]}]}


def test_draw_names_the_input_a_memory_error_met(tmp_path, photo, capsys, monkeypatch):
    from facemtl.analysis.analyzer import FaceAnalyzer

    def analyze(self, image, **kw):
        raise MemoryError

    monkeypatch.setattr(FaceAnalyzer, "analyze", analyze)
    assert main(["draw", str(photo), "--out", str(tmp_path / "out")]) == 1
    assert f"facemtl draw: error: {photo}: out of memory" in capsys.readouterr().err


def test_draw_never_writes_over_its_input(tmp_path, photo, capsys):
    out = tmp_path / "out"
    out.mkdir()
    inside = out / "grace.jpg"
    inside.write_bytes(photo.read_bytes())
    before = inside.read_bytes()
    for flags in ([], ["--overwrite"]):
        assert main(["draw", str(inside), "--out", str(out), *flags]) == 1
        assert "is one of the inputs" in capsys.readouterr().err
        assert inside.read_bytes() == before


def test_draw_gives_same_named_inputs_their_own_outputs(tmp_path, photo, capsys):
    for folder, suffix in (("a", ".jpg"), ("b", ".png")):
        (tmp_path / folder).mkdir()
        cv2.imwrite(str(tmp_path / folder / f"p{suffix}"), cv2.imread(str(photo)))
    (tmp_path / "a" / "q.jpg").write_bytes(photo.read_bytes())
    (tmp_path / "a" / "q.png").write_bytes((tmp_path / "b" / "p.png").read_bytes())
    inputs = [tmp_path / "a" / "p.jpg", tmp_path / "b" / "p.png", tmp_path / "a" / "q.jpg", tmp_path / "a" / "q.png"]
    out = tmp_path / "out"
    assert main(["draw", *map(str, inputs), "--out", str(out), "--json"]) == 0
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == [
        "a/p.jpg",
        "a/p.json",
        "b/p.jpg",
        "b/p.json",
        "q.jpg.jpg",
        "q.jpg.json",
        "q.png.jpg",
        "q.png.json",
    ]
    capsys.readouterr()


def test_draw_keeps_earlier_results_unless_asked(tmp_path, photo, capsys):
    out = tmp_path / "out"
    assert main(["draw", str(photo), "--out", str(out)]) == 0
    result = out / "grace.jpg"
    result.write_bytes(b"my edited copy")
    assert main(["draw", str(photo), "--out", str(out)]) == 1
    assert "exists already (pass --overwrite" in capsys.readouterr().err
    assert result.read_bytes() == b"my edited copy"
    assert main(["draw", str(photo), "--out", str(out), "--overwrite"]) == 0
    assert result.read_bytes()[:2] == b"\xff\xd8"  # a JPEG again
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp file left


def test_draw_into_a_file_is_refused(tmp_path, photo, capsys):
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    assert main(["draw", str(photo), "--out", str(target)]) == 2
    assert "--out names a file" in capsys.readouterr().err
    assert target.read_text() == "mine"


def test_output_names_are_unique_for_any_inputs():
    from facemtl.core.inputs import output_bases

    paths = [Path(p) for p in ("/x/a/p.jpg", "/y/a/p.jpg", "/x/b/p.png", "/x/b/p.jpg", "/z/q.jpg", "/x/a/r.jpg")]
    bases = output_bases(paths)
    assert len(set(bases)) == len(paths)
    assert bases[4] == Path("q") and bases[5] == Path("r")  # no clash: the name alone
