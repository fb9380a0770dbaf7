"""A cold run as a new user meets it: a fresh clone of this repo where every stage computes
(`make setup`, then `dvc repro --force` so no stage is skipped, on a new Prefect database),
then a no-op `dvc repro`. Reports wall time per stage, the stage compute (the union of each
flow's task-run intervals, read from the clone's Prefect database), and the orchestration +
tracking overhead (wall minus compute). Run with nothing else busy on the CPU.

    python benchmarks/cold_run.py [--workdir DIR] [--set section.key=value ...]

Prints a table and writes benchmarks/results/cold_run.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sqlite3
import subprocess
import tempfile
import time
from datetime import datetime
from pathlib import Path

import yaml
from stamp import provenance  # benchmarks/ is sys.path[0]

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "benchmarks" / "results" / "cold_run.json"


def _env(repo: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{repo / '.venv' / 'bin'}:{env['PATH']}"
    env["VIRTUAL_ENV"] = str(repo / ".venv")
    for key in ("PREFECT_HOME", "PREFECT_API_URL", "MLFLOW_TRACKING_URI"):
        env.pop(key, None)
    return env


def _set(params: dict, assignment: str) -> None:
    key, value = assignment.split("=", 1)
    *path, last = key.split(".")
    node = params
    for part in path:
        node = node[part]
    node[last] = yaml.safe_load(value)


def _timed_repro(repo: Path, force: bool) -> tuple[float, dict[str, float], str]:
    """Wall seconds of `dvc repro`, wall seconds per stage (from its output), and the log."""
    cmd = ["dvc", "repro", *(["--force"] if force else [])]
    started = time.monotonic()
    process = subprocess.Popen(
        cmd, cwd=repo, env=_env(repo), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    stages: dict[str, float] = {}
    current, since, log = None, started, []
    for line in process.stdout:
        log.append(line)
        match = re.match(r"Running stage '([\w-]+)'", line)
        if match:
            now = time.monotonic()
            if current:
                stages[current] = now - since
            current, since = match.group(1), now
    process.wait()
    total = time.monotonic() - started
    if current:
        stages[current] = started + total - since
    if process.returncode != 0:
        raise SystemExit(f"dvc repro failed:\n{''.join(log[-60:])}")
    return total, stages, "".join(log)


def _compute_seconds(repo: Path) -> dict[str, float]:
    """Per flow: the union of its task runs' intervals (the work the stage does)."""
    db = sqlite3.connect(repo / ".prefect" / "prefect.db")
    rows = db.execute(
        "select f.name, t.start_time, t.end_time from task_run t join flow_run r "
        "on t.flow_run_id = r.id join flow f on f.id = r.flow_id "
        "where t.start_time is not null and t.end_time is not null"
    ).fetchall()
    spans: dict[str, list[tuple[float, float]]] = {}
    for flow, start, end in rows:
        s, e = (datetime.fromisoformat(x).timestamp() for x in (start, end))
        spans.setdefault(flow, []).append((s, e))
    out = {}
    for flow, intervals in spans.items():
        total, cursor = 0.0, float("-inf")
        for s, e in sorted(intervals):
            if e > cursor:
                total += e - max(s, cursor)
                cursor = e
        out[flow] = total
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--set", action="append", default=[], help="params override")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="frugal-cold-"))
    repo = work / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(repo)], check=True)
    if args.set:
        params = yaml.safe_load((repo / "params.yaml").read_text())
        for assignment in args.set:
            _set(params, assignment)
        (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    started = time.monotonic()
    subprocess.run(["make", "setup"], cwd=repo, check=True, capture_output=True)
    setup = time.monotonic() - started
    total, stages, log = _timed_repro(repo, force=True)
    (work / "run.log").write_text(log)
    noop, _, noop_log = _timed_repro(repo, force=False)
    compute = _compute_seconds(repo)
    compute = {name.replace("-", "_"): seconds for name, seconds in compute.items()}  # flow names
    stage_compute = sum(compute.get(s, 0.0) for s in stages)
    result = {
        "provenance": provenance(),
        "setup_s": round(setup, 1),
        "run_s": round(total, 1),
        "noop_repro_s": round(noop, 1),
        "stage_wall_s": {s: round(v, 1) for s, v in stages.items()},
        "stage_compute_s": {s: round(compute.get(s, 0.0), 1) for s in stages},
        "compute_s": round(stage_compute, 1),
        "overhead_s": round(total - stage_compute, 1),
        "overhead_share_of_compute": round((total - stage_compute) / stage_compute, 3),
        "test_accuracy": json.loads((repo / "reports/metrics.json").read_text())["base"][
            "accuracy"
        ],
        "overrides": args.set,
        "cpu_count": os.cpu_count(),
        "workdir": str(work),
    }
    print(f"{'stage':16s} {'wall s':>8s} {'compute s':>10s}")
    for stage, wall in stages.items():
        print(f"{stage:16s} {wall:8.1f} {compute.get(stage, 0.0):10.1f}")
    print(
        f"cold run {total:.0f} s (compute {stage_compute:.0f} s, overhead "
        f"{total - stage_compute:.0f} s = {result['overhead_share_of_compute']:.0%}); "
        f"no-op repro {noop:.1f} s; setup {setup:.0f} s"
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
