"""The UIs, in a real headless browser (Debian's chromium): `make ui` serves the MLflow UI over
the project's store and it shows the registered model with its `champion` alias; `make
prefect-ui` serves the Prefect UI over the project's Prefect database and it shows a stage's flow
run. Both servers listen on 127.0.0.1 only, and the MLflow server takes tracking calls
(server mode) that land in the same SQLite store."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.e2e.conftest import free_port, project_env, registered_model

CHROMIUM = shutil.which("chromium")


def _serve(target: str, repo: Path, log: Path, **variables: str) -> subprocess.Popen:
    args = [f"{key}={value}" for key, value in variables.items()]
    return subprocess.Popen(
        ["make", "-s", "-C", str(ROOT), target, *args],
        env=project_env(repo),
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def _wait(url: str, proc: subprocess.Popen, log: Path, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-3000:]
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} not up after {seconds} s: {log.read_text()[-2000:]}")


def _listen_addresses(port: int) -> set[str]:
    """Local addresses of the sockets listening on `port` (from /proc/net/tcp*)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


def _page_text(url: str) -> str:
    """The page as the browser rendered it (scripts run), as plain text."""
    dom = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--virtual-time-budget=30000", "--dump-dom", url],
        capture_output=True, text=True, timeout=180,
    ).stdout  # fmt: skip
    dom = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", dom).split())


def _post(url: str, body: dict) -> list[dict]:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


needs_chromium = pytest.mark.skipif(
    CHROMIUM is None and os.environ.get("CI") != "true",
    reason="chromium not installed (`make browser`); CI installs it and never skips",
)


@needs_chromium
def test_mlflow_ui_shows_the_registered_model_and_its_champion(tiny_pipeline, tmp_path):
    repo, port = tiny_pipeline.repo, free_port()
    server = _serve("ui", repo, tmp_path / "mlflow.log", MLFLOW_PORT=port,
                    MLFLOW_STORE=repo / "mlruns")  # fmt: skip
    try:
        _wait(f"http://127.0.0.1:{port}/health", server, tmp_path / "mlflow.log")
        assert _listen_addresses(port) == {"0100007F"}  # 127.0.0.1, nothing else
        name = registered_model(repo)
        page = _page_text(f"http://127.0.0.1:{port}/#/models/{name}")
        assert name in page and "champion" in page, page[:2000]
        # server mode: a tracking call through the server lands in the project's store
        from mlflow.tracking import MlflowClient

        client = MlflowClient(f"http://127.0.0.1:{port}")
        experiment = client.create_experiment("server-mode-check")
        run = client.create_run(experiment, tags={"check": "server mode"})
        client.log_metric(run.info.run_id, "answer", 42.0)
    finally:
        _stop(server)
    with sqlite3.connect(repo / "mlruns/mlflow.db") as db:
        stored = db.execute(
            "select value from metrics where run_uuid = ? and key = 'answer'", (run.info.run_id,)
        ).fetchone()
    assert stored == (42.0,)


@needs_chromium
def test_prefect_ui_shows_a_stage_flow_run(tiny_pipeline, tmp_path):
    repo, port = tiny_pipeline.repo, free_port()
    log = tmp_path / "prefect.log"
    server = _serve("prefect-ui", repo, log, PREFECT_PORT=port, PREFECT_HOME=repo / ".prefect")
    try:
        api = f"http://127.0.0.1:{port}/api"
        _wait(f"{api}/health", server, log)
        assert _listen_addresses(port) == {"0100007F"}
        flows = _post(f"{api}/flows/filter", {"flows": {"name": {"any_": ["train"]}}})
        runs = _post(f"{api}/flow_runs/filter", {"flows": {"id": {"any_": [flows[0]["id"]]}}})
        run = runs[0]
        page = _page_text(f"http://127.0.0.1:{port}/runs/flow-run/{run['id']}")
        assert run["name"] in page and "train" in page and "Completed" in page, page[:2000]
    finally:
        _stop(server)
