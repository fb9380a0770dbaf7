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

# MLflow's client retries a tracking server for minutes by default (7 retries, backoff 2 s,
# 120 s timeouts). Here a server that refuses connections is given up after about 30 s (waits
# of 0, 4, 8 and 16 s): long enough to ride out a server restart. One that accepts but hangs
# (its database down) costs 5 × 20 s more; a stage's first call is bounded apart
# (`orchestration.tracking.OPENING_DEADLINE_S`), so a store that is down is named early.
MLFLOW_CLIENT_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "4",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
}


def configure_environment() -> None:
    """Set telemetry-off variables, Prefect and MLflow client defaults (without overriding the
    user's) and PREFECT_HOME."""
    for key, value in {**TELEMETRY_OFF, **PREFECT_DEFAULTS, **MLFLOW_CLIENT_DEFAULTS}.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("PREFECT_HOME", str(ROOT / ".prefect"))
