"""Team mode, driven for real: the team stack (`orchestration.team`), clones of the project
pointed at it, pipelines run at once, faults injected, and what PostgreSQL holds afterwards.
Shared by tests/e2e/test_team_stack.py (CI: both clones to `evaluate`, one fault) and
benchmarks/team_stack.py (every fault, with its results)."""

from __future__ import annotations

import copy
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from frugal.config import load_params
from orchestration import team
from tests.e2e.conftest import TINY_OVERRIDES, _deep_update, free_port, make_repo_copy, project_env

# The models one tiny run registers: the base model and each compressed variant.
TEAM_VARIANTS = ["ort_int8", "energy_ptq"]


def stack_folder() -> Path:
    """A folder the `postgres` user can reach (pytest's tmp folders are root-only)."""
    folder = Path(tempfile.mkdtemp(prefix="frugal-team-", dir="/tmp"))
    folder.chmod(0o755)
    return folder


def start_stack(folder: Path) -> team.Stack:
    stack = team.Stack(
        str(folder),
        postgres_port=free_port(),
        mlflow_port=free_port(),
        dask_port=free_port(),
        prefect_port=free_port(),
    )
    return team.up(stack)


@dataclass(frozen=True)
class Clone:
    repo: Path
    seed: int
    commit: str  # what its runs log: the HEAD it runs at


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip()


def team_clone(dest: Path, stack: team.Stack, seed: int, variants: list[str]) -> Clone:
    """A clone of the project on the tiny configuration (`train.seed` = `seed`), pointed at
    the stack: its params and its committed DVC remote."""
    overrides = copy.deepcopy(TINY_OVERRIDES)
    _deep_update(overrides, {"train": {"seed": seed}, "compress": {"variants": variants}})
    _deep_update(overrides, stack.params())
    dest.mkdir(parents=True, exist_ok=True)
    make_repo_copy(dest, overrides)
    env = team_env(dest, stack)
    subprocess.run(
        ["dvc", "remote", "add", "-d", "team", str(stack.dvc_remote)],
        cwd=dest,
        env=env,
        check=True,
        capture_output=True,
    )
    git(dest, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "team remote")
    return Clone(dest, seed, git(dest, "rev-parse", "HEAD"))


def team_env(repo: Path, stack: team.Stack) -> dict[str, str]:
    return {**project_env(repo), "PREFECT_API_URL": stack.prefect_api_url}


def start_repro(clone: Clone, stack: team.Stack, *args: str) -> subprocess.Popen:
    log = open(clone.repo / "repro.log", "w")  # noqa: SIM115 - the process owns it
    return subprocess.Popen(
        ["dvc", "repro", *args],
        cwd=clone.repo,
        env=team_env(clone.repo, stack),
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(process: subprocess.Popen, clone: Clone, timeout: float = 1500) -> str:
    process.wait(timeout=timeout)
    return (clone.repo / "repro.log").read_text(errors="replace")


def dvc(clone: Clone, stack: team.Stack, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["dvc", *args],
        cwd=clone.repo,
        env=team_env(clone.repo, stack),
        capture_output=True,
        text=True,
        timeout=600,
    )


def query(stack: team.Stack, sql: str) -> list[tuple]:
    """Rows of `sql` on the MLflow database in PostgreSQL (what the store holds)."""
    import psycopg2

    connection = psycopg2.connect(
        host="127.0.0.1", port=stack.postgres_port, user="postgres", dbname="mlflow"
    )
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchall()
    finally:
        connection.close()


def registry_counts(stack: team.Stack) -> dict:
    """What PostgreSQL holds: versions, runs, and any duplicates (two versions of one run, two
    runs of one model in one pipeline execution, two parent runs of one execution)."""
    versions = query(stack, "SELECT name, count(*) FROM model_versions GROUP BY name")
    doubled_versions = query(
        stack,
        "SELECT run_id FROM model_versions WHERE current_stage != 'Deleted_Internal' "
        "GROUP BY name, run_id HAVING count(*) > 1",
    )
    doubled_runs = query(
        stack,
        "SELECT p.value, d.value FROM tags p JOIN tags h ON h.run_uuid = p.run_uuid "
        "JOIN tags d ON d.run_uuid = p.run_uuid WHERE p.key = 'mlflow.parentRunId' "
        "AND h.key = 'frugal.model_md5' AND d.key = 'frugal.model_dir' "
        "GROUP BY p.value, h.value, d.value HAVING count(*) > 1",
    )
    doubled_parents = query(
        stack,
        "SELECT value FROM tags WHERE key = 'frugal.pipeline_key' "
        "GROUP BY value HAVING count(*) > 1",
    )
    runs = query(stack, "SELECT count(*) FROM runs WHERE lifecycle_stage = 'active'")
    return {
        "versions": dict(versions),
        "runs": runs[0][0],
        "duplicate_versions": len(doubled_versions),
        "duplicate_model_runs": len(doubled_runs),
        "duplicate_parent_runs": len(doubled_parents),
    }


def versions_of(stack: team.Stack, name: str) -> dict[str, dict[str, str]]:
    """{version: its tags} of the registered model `name`."""
    rows = query(
        stack,
        f"SELECT version, key, value FROM model_version_tags WHERE name = '{name}'",
    )
    tags: dict[str, dict[str, str]] = {}
    for version, key, value in rows:
        tags.setdefault(str(version), {})[key] = value
    return tags


def champion_version(stack: team.Stack, name: str) -> str:
    rows = query(
        stack,
        f"SELECT version FROM registered_model_aliases WHERE name = '{name}' "
        "AND alias = 'champion'",
    )
    return str(rows[0][0])


def expected_champion(clones: list[Clone], cfg_budget: float, profile: str) -> tuple[str, str]:
    """(commit, variant) of the rule's pick over every clone's models, from their
    reports/metrics.json: the lowest mean modeled energy on `profile` among the models within
    the budget of their own base model (ties: none in practice; the earliest version wins)."""
    from frugal import catalog
    from frugal.report.evaluation import champion_energy, within_budget

    candidates = []
    for clone in clones:
        summary = catalog.METRICS.read_file(clone.repo / "reports/metrics.json")
        for name, entry in summary.items():
            if within_budget(entry.selection_accuracy_vs_baseline.difference, cfg_budget):
                energy = champion_energy(entry.modeled_uj_per_utterance[profile])
                candidates.append((energy, clone.commit, name))
    energy, commit, variant = min(candidates)
    return commit, variant


def tree_md5(folder: Path) -> dict[str, str]:
    """{relative path: md5} of every file under `folder` (what a fault must leave unchanged)."""
    if not folder.exists():
        return {}
    return {
        str(path.relative_to(folder)): hashlib.md5(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def evaluate_outs(repo: Path) -> list[str]:
    """The evaluate stage's outputs (dvc.yaml), relative to reports/."""
    cfg = load_params(repo / "params.yaml").evaluate
    paths = (cfg.output, cfg.report, cfg.predictions, cfg.plots_dir, cfg.pareto_plot)
    return [str(Path(p).relative_to("reports")) for p in paths]


def untouched(before: dict, after: dict, removed_outs: list[str]) -> bool:
    """Whether a failed stage left models/ and reports/ as they were: every file still there is
    byte-identical, and what is gone is the stage's own outputs, which DVC removes before it
    runs a stage (a rerun writes them again)."""
    for folder, files in after.items():
        if any(before[folder].get(name) != md5 for name, md5 in files.items()):
            return False
        gone = set(before[folder]) - set(files)
        if folder != "reports" and gone:
            return False
        if any(not any(g == o or g.startswith(o + "/") for o in removed_outs) for g in gone):
            return False
    return True


def worker_pids(stack: team.Stack) -> dict[str, int]:
    """{worker address: pid} of the Dask worker processes (a nanny's child each)."""
    from distributed import Client

    with Client(stack.dask_address, timeout=10) as client:
        return client.run(os.getpid)


def kill_busy_worker(stack: team.Stack, key_part: str, timeout: float = 600) -> dict:
    """Wait until a Dask worker has run a task whose key contains `key_part` for 3 s, then
    kill its process (SIGKILL: no goodbye to the scheduler) while the task still runs.
    Returns what was killed."""
    from distributed import Client

    seen: dict[tuple[str, str], float] = {}
    deadline = time.monotonic() + timeout
    with Client(stack.dask_address, timeout=10) as client:
        while time.monotonic() < deadline:
            now = time.monotonic()
            for address, keys in client.processing().items():
                for key in (str(k) for k in keys if key_part in str(k)):
                    if now - seen.setdefault((address, key), now) >= 3:
                        pid = client.run(os.getpid, workers=[address])[address]
                        os.kill(pid, 9)
                        return {"worker": address, "pid": pid, "task": key}
            time.sleep(0.5)
    raise TimeoutError(f"no task with {key_part!r} in its key ran within {timeout:.0f} s")


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def commit_run(repo: Path) -> None:
    """Commit a run as a team member would: dvc.lock and every uncached out (reports, plots and
    tables of variants the clone added included); DVC's .gitignore keeps cached outs out."""
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "run")


def champion_predicts(repo: Path, stack: team.Stack, name: str) -> subprocess.CompletedProcess:
    """Load `models:/<name>@champion` from the stack's registry in a fresh Python in `repo` (as a
    new machine would) and predict one question; stdout holds the prediction as JSON."""
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import mlflow, pandas as pd;"
            f"m = mlflow.pyfunc.load_model('models:/{name}@champion');"
            "print(m.predict(pd.DataFrame({'text': ['Who wrote Hamlet?']})).to_json())",
        ],
        cwd=repo,
        env={**team_env(repo, stack), "MLFLOW_TRACKING_URI": stack.tracking_uri},
        capture_output=True,
        text=True,
        timeout=300,
    )
