"""End-to-end fixtures: a throw-away copy of the repository, its environment, and one tiny real
pipeline run (`dvc repro` on a few hundred TREC questions) shared by the end-to-end and
reliability tests."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

VENV_BIN = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin"

# Tiny settings for end-to-end runs: a few hundred real questions, a few dozen steps. The data
# is set here, not taken from params.yaml: a user's own ingest.source leaves these tests as they are.
TINY_OVERRIDES = {
    "ingest": {"source": "trec", "trec_labels": "coarse", "max_rows": 240},
    "prepare": {"dev_fraction": 0.15, "test_fraction": 0.25},
    "sample": {
        "initial_size": 12,
        "batch_size": 12,
        "budget": 72,
        "compare": ["random", "margin", "badge"],
        "seeds": [1, 2],
    },
    "learning_curve": {"fractions": [0.34, 0.67, 1.0], "seeds": [13]},
    "forecast": {"at": [500]},
    "train": {"max_steps": 30, "min_steps": 0, "epochs": 4, "batch_size": 16},
    "profile": {"max_requests": 12, "latency_requests": 12},
    "compress": {
        "variants": [
            "ort_int8",
            "int8_ptq",
            "energy_ptq",
            "energy_qat",
            "structured_pruning",
            "size_target",
        ],
        "fisher_texts": 8,
        "sensitivity_texts": 16,
        "workload_texts": 8,
        "bit_choices": [2, 4, 8],
        "plan_budgets": 3,
        "qat": {"steps": 8, "batch_size": 16},
    },
    "continual": {
        "steps": [["DESC", "ENTY", "HUM"], ["LOC"], ["NUM"]],
        "methods": [
            "finetune",
            "random_replay",
            "mixed_distill",
            "mixed_distill_head",
            "full_retrain",
        ],
        "epochs": 1,
        "batch_size": 16,
        "fisher_texts": 8,
        "registered_model": "auto",
    },
    "tracking": {"registered_model": "auto"},  # named after the data
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _deep_update(base: dict, override: dict) -> None:
    for key, value in override.items():
        if isinstance(value, dict):
            _deep_update(base.setdefault(key, {}), value)
        else:
            base[key] = value


def make_repo_copy(dest: Path, overrides: dict) -> Path:
    """Copy the project's files (tracked and untracked, not ignored) into `dest`, apply
    `overrides` to its params.yaml and commit it, so DVC and MLflow see a real repo."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, files):
        src = ROOT / name.decode()
        if src.is_file():
            (dest / name.decode()).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name.decode())
    params = yaml.safe_load((dest / "params.yaml").read_text())
    _deep_update(params, overrides)
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for cmd in (
        ["git", "init", "-q"],
        ["git", "add", "-A"],
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "test"],
    ):
        subprocess.run(cmd, cwd=dest, check=True)
    return dest


def registered_model(repo: Path, continual: bool = False) -> str:
    """The MLflow registered model a copy of the repository registers its models under."""
    from frugal.config import load_params, registered_model_name

    return registered_model_name(load_params(repo / "params.yaml"), continual)


def project_env(repo: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}:{env['PATH']}"
    env["PREFECT_HOME"] = str(repo / ".prefect")
    env.pop("PREFECT_API_URL", None)
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


@dataclass(frozen=True)
class TinyPipeline:
    repo: Path
    lock: dict  # dvc.lock right after the run: every stage's output hashes


@pytest.fixture(scope="session")
def tiny_pipeline(tmp_path_factory) -> TinyPipeline:
    """A throw-away repository after one full `dvc repro` on TINY_OVERRIDES, shared by the
    end-to-end and reliability tests (which read it; none changes its outputs).
    FRUGAL_TINY_PIPELINE=<a repo of an earlier session> reuses one while iterating on tests."""
    reuse = os.environ.get("FRUGAL_TINY_PIPELINE")
    if reuse:
        repo = Path(reuse)
        return TinyPipeline(repo, yaml.safe_load((repo / "dvc.lock").read_text()))
    repo = make_repo_copy(tmp_path_factory.mktemp("tiny-pipeline"), TINY_OVERRIDES)
    result = subprocess.run(
        ["dvc", "repro"],
        cwd=repo,
        env=project_env(repo),
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    return TinyPipeline(repo, yaml.safe_load((repo / "dvc.lock").read_text()))
