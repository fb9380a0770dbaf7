"""Atomic outputs: a stage's files appear whole or not at all.

Each is written to a temporary file in the same folder and renamed into place, so an
interrupted write leaves the previous file (or none), never a partial one.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from frugal.errors import DataError

# mkstemp creates files readable by their owner only; outputs are ordinary files.
_FILE_MODE = 0o644


def write_parquet_atomic(df: pd.DataFrame, path: str | Path) -> Path:
    """Write `df` to `path` via a temporary file in the same folder and an atomic rename, so a
    failure never leaves a partial file (an existing file at `path` stays as it was)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = _write_temp_parquet(df, path)
    os.replace(temp, path)
    return path


def write_splits_atomic(splits: Mapping[str, pd.DataFrame], out_dir: str | Path) -> dict[str, Path]:
    """Write each split to `out_dir/<name>.parquet`, all or nothing.

    Every split is first written to a temporary file; only when all writes have succeeded are
    they renamed into place, so a failed write leaves no new file and no partial one behind.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    temps: dict[str, Path] = {}
    try:
        for name, frame in splits.items():
            temps[name] = _write_temp_parquet(frame, out_dir / f"{name}.parquet")
    except BaseException:
        _remove(temps.values())
        raise
    paths = {name: out_dir / f"{name}.parquet" for name in temps}
    for name, temp in temps.items():
        os.replace(temp, paths[name])
    return paths


def write_embeddings_atomic(ids: list[str], embeddings: np.ndarray, path: str | Path) -> Path:
    """Save row ids and their embeddings (float32) as one .npz, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            os.chmod(name, _FILE_MODE)
            np.savez(out, ids=np.asarray(ids, dtype=str), embeddings=embeddings.astype(np.float32))
        os.replace(name, path)
    except BaseException:
        _remove([Path(name)])
        raise
    return path


def read_embeddings(path: str | Path) -> tuple[list[str], np.ndarray]:
    """Row ids and embeddings written by `write_embeddings_atomic`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no cached embeddings; run `dvc repro embed` first")
    with np.load(path, allow_pickle=False) as saved:
        return saved["ids"].tolist(), saved["embeddings"]


def _write_temp_parquet(df: pd.DataFrame, final_path: Path) -> Path:
    handle, name = tempfile.mkstemp(
        dir=final_path.parent, prefix=f".{final_path.name}.", suffix=".tmp"
    )
    os.close(handle)
    os.chmod(name, _FILE_MODE)
    temp = Path(name)
    try:
        df.to_parquet(temp, index=False)
    except BaseException:
        _remove([temp])
        raise
    return temp


def _remove(paths: Iterable[Path]) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def write_text_atomic(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    """Write via a temporary file in the same folder, fsync, then rename over `path`: readers
    see the old file or the new one, never a partial one. The temporary file never survives."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    temp = Path(name)
    try:
        with os.fdopen(handle, "w", encoding=encoding, newline="") as file:
            os.chmod(temp, _FILE_MODE)
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        _remove([temp])
        raise
    return path


def write_json(payload: Any, path: str | Path) -> Path:
    """`payload` as JSON indented by 2 with a final newline, written atomically."""
    return write_text_atomic(path, json.dumps(payload, indent=2) + "\n")
