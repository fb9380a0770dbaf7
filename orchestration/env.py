"""Process environment every entry point sets before importing Prefect, MLflow or HF code:
telemetry off, hubs offline, Prefect state inside the project."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

TELEMETRY_OFF = {
    "DVC_NO_ANALYTICS": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "DASK_LOGGING__DISTRIBUTED": "warning",  # Dask task runner: no per-worker INFO chatter
}


# Each stage process starts a temporary Prefect server; on a busy 2-core machine it can take
# longer than Prefect's default 20 s to answer.
PREFECT_DEFAULTS = {"PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120"}


def configure_environment() -> None:
    """Set telemetry-off variables and Prefect defaults (without overriding the user's) and
    PREFECT_HOME."""
    for key, value in {**TELEMETRY_OFF, **PREFECT_DEFAULTS}.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("PREFECT_HOME", str(ROOT / ".prefect"))
