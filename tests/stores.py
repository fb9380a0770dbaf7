"""A pipeline execution's `Tracker` on a temporary SQLite MLflow store: what the unit tests of
tracking and recording log to."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from frugal.config import load_params
from orchestration.tracking import Tracker, parent_run

ROOT = Path(__file__).resolve().parents[1]


def sqlite_tracker(folder: Path, **sections: dict[str, Any]) -> Tracker:
    """The default params with MLflow in `folder` (and `sections` merged over them), a raw data
    file of its own, and this execution's parent run opened."""
    raw = folder / "raw.parquet"
    raw.write_bytes(b"the raw data")
    overrides: dict[str, Any] = {
        "ingest": {"output": str(raw)},
        "tracking": {
            "tracking_uri": f"sqlite:///{folder / 'mlflow.db'}",
            "artifact_root": str(folder / "artifacts"),
        },
    }
    for name, values in sections.items():
        overrides[name] = {**overrides.get(name, {}), **values}
    params = load_params(ROOT / "params.yaml", overrides)
    return Tracker(params, parent_run(params, "raw-md5"))


def model_folder(folder: Path, name: str) -> Path:
    """A model folder as the registry sees it: the served files (their bytes are not read)."""
    model_dir = folder / name
    model_dir.mkdir(parents=True)
    (model_dir / "model.onnx").write_bytes(name.encode())
    (model_dir / "frugal.json").write_text("{}")
    return model_dir
