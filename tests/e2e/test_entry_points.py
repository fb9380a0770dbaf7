"""Every entry point runs under the project's settings, shares one Prefect server per run,
and says in one sentence when Prefect cannot be reached; `frugal forecast` and the `source`
stage's command run as their own processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from frugal.data.source import fingerprint
from tests.conftest import ROOT


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment of a fresh shell: no PREFECT_*, telemetry or HF variables set."""
    keep = ("PATH", "HOME", "LANG", "VIRTUAL_ENV", "TMPDIR")
    return {**{k: v for k, v in os.environ.items() if k in keep}, **extra}


def _python(code: str, env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip


def test_a_stage_entry_point_runs_under_the_projects_settings():
    code = (
        "import json, flows.common\n"
        "from prefect.settings import get_current_settings\n"
        "s = get_current_settings()\n"
        "print(json.dumps({'home': str(s.home), 'timeout': "
        "s.server.ephemeral.startup_timeout_seconds, 'analytics': s.server.analytics_enabled}))"
    )
    result = _python(code, _clean_env())
    assert result.returncode == 0, result.stderr
    settings = json.loads(result.stdout.strip().splitlines()[-1])
    assert settings == {"home": str(ROOT / ".prefect"), "timeout": 120, "analytics": False}
    env = _python("import flows.common, os; print(os.environ['DO_NOT_TRACK'])", _clean_env())
    assert env.stdout.strip() == "1"


def test_an_unreachable_prefect_api_is_one_sentence_not_a_traceback(tmp_path):
    env = _clean_env(PREFECT_API_URL="http://127.0.0.1:9/api", PREFECT_HOME=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "-m", "flows", "ingest"], cwd=ROOT, env=env, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: PREFECT_API_URL=http://127.0.0.1:9/api: no Prefect API answers there; start "
        "that server (`make prefect-ui`), or unset PREFECT_API_URL to let the pipeline start "
        "its own"
    ]


def test_stage_processes_share_one_server_that_exits_when_they_are_gone(tmp_path):
    env = _clean_env(PREFECT_HOME=str(tmp_path))
    code = "import orchestration.prefect_server as p; p.IDLE_EXIT_S = 3; print(p.ensure_api())"
    hogs = [  # both cores busy: the start must still succeed, within its own deadline
        subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)
    ]
    try:
        first = _python(code, env)
        second = _python(code, env)
    finally:
        for hog in hogs:
            hog.kill()
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert first.stdout == second.stdout  # the second process reused the first one's server
    state = json.loads((tmp_path / "server.json").read_text())
    assert state["api_url"] == first.stdout.strip()
    deadline = time.monotonic() + 60
    while (tmp_path / "server.json").exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not (tmp_path / "server.json").exists(), "the server outlived its clients"
    deadline = time.monotonic() + 30  # uvicorn's shutdown, on a busy machine
    while _alive(state["pid"]) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _alive(state["pid"])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_forecast_runs_as_a_module(tmp_path):
    n_labels = np.repeat([100, 200, 400, 800, 1600], 2)
    score = 0.9 - 0.5 * n_labels**-0.4 + np.random.default_rng(0).normal(0, 0.003, n_labels.size)
    points = tmp_path / "points.csv"
    pd.DataFrame({"n_labels": n_labels, "score": score}).to_csv(points, index=False)
    completed = subprocess.run(
        [sys.executable, "-m", "frugal.cli", "forecast", str(points), "--at", "5000",
         "--target", "0.8"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout)
    assert set(result) == {"forecasts", "max_score", "labels_for_target", "method", "calibration"}


def test_the_source_stage_command_writes_the_fingerprint(tmp_path):
    # the default data, set here: the repository's params.yaml may name a user's own file
    ingest = {**yaml.safe_load((ROOT / "params.yaml").read_text())["ingest"], "source": "trec"}
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"ingest": ingest}))
    out = tmp_path / "source.json"
    subprocess.run(
        [sys.executable, "-m", "frugal.data.source", "--params", str(params), "--out", str(out)],
        cwd=ROOT, check=True,
    )  # fmt: skip
    assert json.loads(out.read_text()) == json.loads(json.dumps(fingerprint(ingest)))
