"""Faults injected into real `dvc repro` runs of a small real pipeline:

* kill -9 of the whole process group in the middle of `train`, then in the middle of
  `compress`; rerunning `dvc repro` completes, and every output equals an uninterrupted run's
  (the same DVC hashes and file bytes with the same seeds);
* a second `dvc repro` started while one runs is refused with a clear message, and the first
  completes with its store intact; a `frugal-pipeline` flow run and `dvc repro` exclude each
  other the same way (the flow holds DVC's repository lock).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import yaml

from tests.e2e.conftest import TINY_OVERRIDES, make_repo_copy, project_env

# outputs compared between the interrupted and the uninterrupted run (timings excluded)
COMPARED = ["models/base", "models/compressed", "reports/plan_candidates.csv"]


def _run(repo: Path, *cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        cmd, cwd=repo, env=project_env(repo), capture_output=True, text=True, timeout=1200
    )


def _repro(repo: Path, *args: str) -> str:
    """`dvc repro *args` to completion; its output."""
    result = _run(repo, "dvc", "repro", *args)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def _start(repo: Path, log: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        ["dvc", "repro", *args],
        cwd=repo,
        env=project_env(repo),
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _kill_when(proc: subprocess.Popen, log: Path, marker: str, seconds: float = 900) -> None:
    """kill -9 the whole process group (dvc, the stage's Python, Prefect's server) as soon as
    `marker` appears in the run's output."""
    deadline = time.monotonic() + seconds
    while marker not in log.read_text(errors="replace"):
        assert proc.poll() is None, f"run ended before {marker!r}:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"no {marker!r} after {seconds} s"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)


def _hashes(lock: dict) -> dict[str, str]:
    outs = {o["path"]: o["md5"] for stage in lock["stages"].values() for o in stage.get("outs", [])}
    return {path: outs[path] for path in COMPARED}


def _files(repo: Path, folder: str) -> dict[str, str]:
    return {
        str(path.relative_to(repo)): hashlib.md5(path.read_bytes()).hexdigest()
        for path in sorted((repo / folder).rglob("*"))
        if path.is_file()
    }


def test_kill_9_in_train_and_in_compress_then_rerun_gives_the_same_outputs(tmp_path, tiny_pipeline):
    """In a copy of the tiny pipeline's repository (its MLflow store left behind): `train`, then
    `compress`, run again from scratch, killed midway, then run again to completion."""
    repo = tmp_path / "repo"
    shutil.copytree(tiny_pipeline.repo, repo, ignore=shutil.ignore_patterns("mlruns", ".prefect"))
    log = tmp_path / "run.log"
    again = ("--force", "--single-item", "--no-run-cache")  # computed again, never restored

    # killed while training (after its first dev evaluation): DVC had removed the old model
    _kill_when(_start(repo, log, *again, "train"), log, "dev accuracy")
    assert not (repo / "models/base/model.safetensors").exists()
    assert "Running stage 'train'" in _repro(repo, *again, "train")

    # killed while compressing (during distillation, after sensitivity and candidate plans)
    _kill_when(_start(repo, log, *again, "compress"), log, "distillation steps of")
    assert not (repo / "models/compressed").exists()
    killed = (repo / "mlruns/mlflow.db").stat().st_size
    assert "Running stage 'compress'" in _repro(repo, *again, "compress")

    # the reruns reproduced the uninterrupted run's outputs: the whole pipeline is up to date
    rerun = _repro(repo)
    for stage in ("train", "compress", "profile", "evaluate", "continual", "report"):
        assert f"Stage '{stage}' didn't change" in rerun, rerun
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    assert _hashes(lock) == _hashes(tiny_pipeline.lock)  # the uninterrupted run's
    for folder in ("models/base", "models/compressed"):
        assert _files(repo, folder) == _files(tiny_pipeline.repo, folder)
    assert not list(repo.glob("models/*.partial")), "a half-written model was left behind"
    with sqlite3.connect(repo / "mlruns/mlflow.db") as db:
        assert db.execute("pragma integrity_check").fetchone() == ("ok",)
        versions = db.execute("select count(*) from model_versions").fetchone()[0]
    n_variants = len(TINY_OVERRIDES["compress"]["variants"])
    assert versions == 1 + n_variants  # base + every compressed variant, registered by the rerun
    assert (repo / "mlruns/mlflow.db").stat().st_size >= killed


def test_second_repro_while_one_runs_is_refused(tmp_path):
    repo = make_repo_copy(tmp_path / "repo", TINY_OVERRIDES)
    log = tmp_path / "first.log"
    first = subprocess.Popen(
        ["dvc", "repro", "prepare"],
        cwd=repo,
        env=project_env(repo),
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 300
        while "Running stage 'ingest'" not in log.read_text():
            assert first.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        second = _run(repo, "dvc", "repro", "prepare")
    finally:
        assert first.wait(timeout=600) == 0, log.read_text()[-3000:]
    assert second.returncode != 0
    assert "lock" in (second.stdout + second.stderr).lower(), second.stdout + second.stderr
    assert "Traceback" not in second.stderr
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    assert {"ingest", "prepare"} <= set(lock["stages"])
    assert json.loads(json.dumps(lock))  # the lock file the first run wrote is whole


def test_a_pipeline_flow_run_and_dvc_repro_exclude_each_other(tmp_path):
    """`frugal-pipeline` (what `prefect deployment run` starts) holds DVC's repository lock:
    while it runs, `dvc repro` is refused; while `dvc repro` runs, the flow is refused with a
    clear message and runs nothing."""
    from dvc.lock import make_lock

    from orchestration.repo_lock import repo_lock

    repo = make_repo_copy(tmp_path / "repo", TINY_OVERRIDES)
    with repo_lock(repo):  # as a running pipeline flow holds it
        repro = _run(repo, "dvc", "repro", "prepare")
    assert repro.returncode != 0
    assert "Unable to acquire lock" in repro.stdout + repro.stderr, repro.stdout + repro.stderr

    lock = make_lock(str(repo / ".dvc/tmp/lock"))  # as a running `dvc repro` holds it
    lock.lock()
    try:
        flow = _run(repo, sys.executable, "-m", "flows.pipeline")
    finally:
        lock.unlock()
    assert flow.returncode == 2, flow.stderr[-3000:]
    assert "another pipeline run (`dvc repro` or frugal-pipeline) holds this repository" in (
        flow.stderr
    )
    assert "Traceback" not in flow.stderr
    assert not (repo / "data/raw.parquet").exists(), "a stage ran without the lock"
