"""`prefect deployment run 'frugal-pipeline/default'` against a real Prefect server on
127.0.0.1 (free port, temporary PREFECT_HOME), with the deployment served by the project."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.e2e.conftest import TINY_OVERRIDES, free_port, make_repo_copy, project_env


def _wait_for(url: str, proc: subprocess.Popen, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"process exited early with {proc.returncode}"
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} not ready after {seconds} s")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture
def prefect_server(tmp_path):
    port = free_port()
    env = project_env(tmp_path)
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    log = open(tmp_path / "server.log", "w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "prefect",
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    api = f"http://127.0.0.1:{port}/api"
    try:
        _wait_for(f"{api}/health", server, 120)
        yield api, env["PREFECT_HOME"]
    finally:
        _stop(server)
        log.close()


def test_deployment_run_completes_and_writes_outputs(prefect_server, tmp_path):
    api, prefect_home = prefect_server
    repo = make_repo_copy(tmp_path / "repo", TINY_OVERRIDES)
    env = project_env(repo)
    env.update(PREFECT_API_URL=api, PREFECT_HOME=prefect_home, PREFECT_RUNNER_POLL_FREQUENCY="1")
    serve_log = open(tmp_path / "serve.log", "w")
    served = subprocess.Popen(
        [sys.executable, "-m", "flows.serve"],
        cwd=repo,
        env=env,
        stdout=serve_log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for(f"{api}/deployments/name/frugal-pipeline/default", served, 120)
        # lighter than the dvc e2e run, which covers every variant and method
        overrides = json.dumps(
            {
                "train": {"max_steps": 12},
                "sample": {"compare": ["random", "margin"], "seeds": [1]},
                "compress": {"variants": ["int8_ptq", "energy_qat"]},
                "continual": {"methods": ["finetune", "ccfi"]},
            }
        )
        run = subprocess.run(
            [
                "prefect",
                "deployment",
                "run",
                "frugal-pipeline/default",
                "--param",
                f"overrides={overrides}",
                "--watch",
                "--watch-timeout",
                "800",
            ],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
    finally:
        _stop(served)
        serve_log.close()
    log = (tmp_path / "serve.log").read_text()
    assert run.returncode == 0, run.stdout + run.stderr + log
    assert "Completed" in run.stdout
    for out in (
        "data/splits/pool.parquet",
        "data/labels/labeled.parquet",
        "reports/forecast.json",
        "models/base/model.onnx",
        "models/compressed/energy_qat/model.onnx",
        "reports/metrics.json",
        "reports/report.html",
    ):
        assert (repo / out).is_file(), out
    # the deployment parameter reached the training stage
    history = json.loads((repo / "reports/train.json").read_text())
    assert history["planned_steps"] == 12
    assert os.path.getsize(repo / "mlruns/mlflow.db") > 0
