"""frugal.files: atomic writers, all or nothing (given / when / then)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from frugal.data.dataset import (
    split,
)
from frugal.files import write_parquet_atomic, write_splits_atomic
from tests.samples import labeled

# --- atomic writers ----------------------------------------------------------------------------


def _failing_on_call(monkeypatch: pytest.MonkeyPatch, failing_call: int) -> None:
    """Make DataFrame.to_parquet write some bytes and then fail on its n-th call."""
    original = pd.DataFrame.to_parquet
    calls = {"n": 0}

    def flaky(self: pd.DataFrame, path: object, *args: object, **kwargs: object) -> None:
        calls["n"] += 1
        if calls["n"] == failing_call:
            Path(str(path)).write_bytes(b"PAR1 half-written")
            raise OSError("disk full")
        original(self, path, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_parquet", flaky)


def test_write_parquet_atomic_round_trips(tmp_path: Path) -> None:
    frame = labeled(3)
    path = write_parquet_atomic(frame, tmp_path / "sub" / "raw.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(path), frame)
    assert sorted(p.name for p in path.parent.iterdir()) == ["raw.parquet"]


def test_write_parquet_atomic_failure_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given an existing output
    path = tmp_path / "raw.parquet"
    path.write_bytes(b"previous")
    _failing_on_call(monkeypatch, 1)
    # when
    with pytest.raises(OSError, match="disk full"):
        write_parquet_atomic(labeled(3), path)
    # then
    assert path.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["raw.parquet"]


def test_write_splits_atomic_writes_all_or_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given three splits, an old pool file, and a disk that fails on the second split
    splits = split(labeled(10), 0.1, 0.2, seed=0)
    (tmp_path / "pool.parquet").write_bytes(b"previous")
    _failing_on_call(monkeypatch, 2)
    # when
    with pytest.raises(OSError, match="disk full"):
        write_splits_atomic(splits, tmp_path)
    # then nothing new, nothing partial, the old file intact
    assert [p.name for p in tmp_path.iterdir()] == ["pool.parquet"]
    assert (tmp_path / "pool.parquet").read_bytes() == b"previous"


def test_write_splits_atomic_writes_every_split(tmp_path: Path) -> None:
    splits = split(labeled(10), 0.1, 0.2, seed=0)
    paths = write_splits_atomic(splits, tmp_path / "splits")
    assert set(paths) == {"pool", "dev", "test"}
    for name, path in paths.items():
        pd.testing.assert_frame_equal(pd.read_parquet(path), splits[name])
    assert sorted(p.name for p in (tmp_path / "splits").iterdir()) == [
        "dev.parquet",
        "pool.parquet",
        "test.parquet",
    ]
