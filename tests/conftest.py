"""Shared fixtures and test tiers.

Tests that need the real datasets skip with a reason where ../shared is absent. Tiers (markers,
see pyproject.toml): ``data`` is added here to every test that uses a dataset fixture;
``distributed`` and ``slow`` are set by the tests. ``make test`` runs everything; ``make
test-fast`` leaves out all three.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("FACEMTL_DATA", ROOT.parent / "shared" / "data"))
MTFL = DATA / "MTFL"
W300 = DATA / "300W_train"

torch.set_num_threads(2)


#: Fixtures that read ../shared: a test using any of them (directly or through another) is ``data``.
DATA_FIXTURES = {"mtfl_dir", "w300_dir", "data_root"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if DATA_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.data)


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real data not found at {path} (clone the project beside ../shared or set FACEMTL_DATA)")
    return path


@pytest.fixture(scope="session")
def data_root() -> Path:
    """../shared/data (or $FACEMTL_DATA) itself."""
    return _need(DATA)


@pytest.fixture(scope="session")
def mtfl_dir() -> Path:
    return _need(MTFL / "training.txt").parent


@pytest.fixture(scope="session")
def w300_dir() -> Path:
    return _need(W300)


@pytest.fixture(scope="session")
def mtfl_train_samples(mtfl_dir):
    from facemtl.data.mtfl import read_mtfl

    return read_mtfl(mtfl_dir / "training.txt")


@pytest.fixture(scope="session")
def mtfl_test_samples(mtfl_dir):
    from facemtl.data.mtfl import read_mtfl

    return read_mtfl(mtfl_dir / "testing.txt")


@pytest.fixture(scope="session")
def tiny_config(mtfl_dir):
    """A factory for small real training recipes on MTFL (tcdcn, one thread); keywords override."""
    from facemtl.training.config import DatasetSpec, TrainConfig

    def make(**kw) -> TrainConfig:
        base = dict(
            model="tcdcn",
            train=(DatasetSpec(str(mtfl_dir / "training.txt")),),
            limit=400,
            val_fraction=0.25,
            epochs=8,
            batch_size=32,
            lr=3e-3,
            threads=1,
        )
        return TrainConfig(**(base | kw))

    return make
