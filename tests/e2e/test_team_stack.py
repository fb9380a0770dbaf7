"""Team mode for real (`make team-up`): PostgreSQL under MLflow's tracking server, a Dask
scheduler with two worker processes, a Prefect server and a DVC remote folder, each its own
process on 127.0.0.1. Two clones that differ in `train.seed` run the tiny pipeline to
`evaluate` at the same time against it; then PostgreSQL stops under a stage; then a new
machine joins with `dvc pull`. The other faults (a Dask worker killed mid-compress, the MLflow
server restarted mid-stage) run in benchmarks/team_stack.py."""

from __future__ import annotations

import glob
import json
import shutil
import subprocess
import time

import pytest

from frugal.config import load_params
from frugal.hashing import data_md5
from orchestration import team
from tests.e2e.conftest import registered_model
from tests.e2e.team import (
    TEAM_VARIANTS,
    champion_predicts,
    champion_version,
    commit_run,
    dvc,
    evaluate_outs,
    expected_champion,
    finish,
    git,
    registry_counts,
    remove,
    stack_folder,
    start_repro,
    start_stack,
    team_clone,
    tree_md5,
    untouched,
    versions_of,
)

pytestmark = pytest.mark.skipif(
    not glob.glob("/usr/lib/postgresql/*/bin/initdb") and shutil.which("apt-get") is None,
    reason="PostgreSQL is not installed and apt-get, which installs it, is unavailable",
)


@pytest.fixture(scope="module")
def stack():
    folder = stack_folder()
    running = start_stack(folder)
    yield running
    team.down(running)
    remove(folder)


def test_two_pipelines_at_once_a_stopped_database_and_a_new_machine(stack, tiny_pipeline, tmp_path):
    # given two clones of the project, differing in train.seed, pointed at the team stack
    a = team_clone(tmp_path / "a", stack, 13, TEAM_VARIANTS)
    b = team_clone(tmp_path / "b", stack, 14, TEAM_VARIANTS)
    # when both run the pipeline to evaluate at the same time, then push
    runs = [start_repro(clone, stack, "evaluate") for clone in (a, b)]
    for process, clone in zip(runs, (a, b), strict=True):
        log = finish(process, clone)
        assert process.returncode == 0, log[-4000:]
        assert "Connecting to an existing Dask cluster" in log  # the stack's workers ran tasks
        pushed = dvc(clone, stack, "push")
        assert pushed.returncode == 0, pushed.stderr[-2000:]

    # then the registry holds each run's models once, tagged with its own commit and data
    name = registered_model(a.repo)
    models_per_run = 1 + len(TEAM_VARIANTS)
    counts = registry_counts(stack)
    assert counts["versions"] == {name: 2 * models_per_run}, counts
    assert counts["duplicate_versions"] == counts["duplicate_model_runs"] == 0, counts
    assert counts["duplicate_parent_runs"] == 0, counts
    tags = versions_of(stack, name)
    raw_md5 = data_md5(a.repo / "data/raw.parquet")
    for clone in (a, b):
        own = [t for t in tags.values() if t["git.commit"] == clone.commit]
        assert sorted(t["frugal.variant"] for t in own) == sorted(["base", *TEAM_VARIANTS])
        assert all(t["dvc.md5.raw"] == raw_md5 for t in own)
    # and the champion alias is the rule's pick over both runs, whichever finished first
    cfg = load_params(a.repo / "params.yaml").evaluate
    commit, variant = expected_champion([a, b], cfg.accuracy_budget, cfg.champion_profile)
    champion = tags[champion_version(stack, name)]
    assert champion["frugal.variant"] == variant
    assert champion["git.commit"] == commit

    # and the team stack's run is the embedded default's (clone a has the tiny run's seed):
    # byte-identical models, the same figures
    embedded = tiny_pipeline.repo
    for model in ["base", *TEAM_VARIANTS]:
        folder = "models/base" if model == "base" else f"models/compressed/{model}"
        assert tree_md5(a.repo / folder) == tree_md5(embedded / folder), model
    ours = json.loads((a.repo / "reports/metrics.json").read_text())
    theirs = json.loads((embedded / "reports/metrics.json").read_text())
    for model in ["base", *TEAM_VARIANTS]:
        for key in (
            "accuracy",
            "macro_f1",
            "ece",
            "size_mb",
            "dev_accuracy",
            "selection_accuracy",
            "modeled_uj_per_utterance",
        ):
            assert ours[model][key] == theirs[model][key], (model, key)

    # when PostgreSQL stops under a stage
    outputs = {p: tree_md5(a.repo / p) for p in ("models", "reports")}
    assert team.pg_ctl(stack, "stop").returncode == 0
    started = time.monotonic()
    failed = dvc(a, stack, "repro", "-s", "-f", "evaluate")
    took = time.monotonic() - started
    # then one sentence names the store within 60 s, no traceback, nothing half-written
    assert failed.returncode != 0
    said = failed.stdout + failed.stderr
    assert f"error: the MLflow tracking store at {stack.tracking_uri} did not answer" in said
    assert "Traceback" not in said
    assert took < 60, took
    after = {p: tree_md5(a.repo / p) for p in ("models", "reports")}
    assert untouched(outputs, after, evaluate_outs(a.repo))
    # and once it is back, the rerun completes, writes the same outputs again, and nothing in
    # the registry is duplicated or lost
    assert team.pg_ctl(stack, "start").returncode == 0
    rerun = dvc(a, stack, "repro", "-s", "-f", "evaluate")
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert registry_counts(stack) == counts
    assert {p: tree_md5(a.repo / p) for p in ("models", "reports")} == outputs

    # when a new machine joins: a clone of a's repository (its run committed: dvc.lock and the
    # reports), its data and models from the remote
    commit_run(a.repo)
    d = tmp_path / "d"
    subprocess.run(["git", "clone", "-q", str(a.repo), str(d)], check=True)
    joined = type(a)(d, a.seed, git(d, "rev-parse", "HEAD"))
    # (the clones ran to `evaluate`: what they pushed is that stage and the ones before it)
    pulled = dvc(joined, stack, "pull", "--with-deps", "evaluate")
    assert pulled.returncode == 0, pulled.stderr[-2000:]
    # then nothing is to reproduce (the `source` stage is always changed: it is a fingerprint)
    status = dvc(joined, stack, "status", "evaluate", "--json")
    assert status.returncode == 0, status.stderr
    assert set(json.loads(status.stdout)) <= {"source"}, status.stdout
    # and the champion loads from the registry and predicts
    predict = champion_predicts(d, stack, name)
    assert predict.returncode == 0, predict.stderr[-3000:]
    assert '"label"' in predict.stdout
