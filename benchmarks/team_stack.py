"""Team mode, measured: a fresh team stack (orchestration/team.py), two clones of the project
(the tiny configuration, `train.seed` 13 and 14) running the whole pipeline at the same time
against it, then the three faults, then a new machine joining; and an embedded run (SQLite,
thread pool, no servers) of clone a's configuration, to compare with.

    python benchmarks/team_stack.py        # make bench-team-stack; ~30 min on 2 cores

Writes benchmarks/results/team_stack.json and prints a table. Each fault's outcome is stated
before it runs (`OUTCOMES`) and checked after."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stamp import provenance  # noqa: E402  (benchmarks/ is sys.path[0])

from frugal.config import load_params, registered_model_name  # noqa: E402
from orchestration import team  # noqa: E402
from tests.e2e.conftest import (  # noqa: E402
    TINY_OVERRIDES,
    make_repo_copy,
    project_env,
    registered_model,
)
from tests.e2e.team import (  # noqa: E402
    champion_predicts,
    champion_version,
    commit_run,
    dvc,
    evaluate_outs,
    expected_champion,
    finish,
    git,
    kill_busy_worker,
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

OUTPUT = ROOT / "benchmarks" / "results" / "team_stack.json"
VARIANTS = TINY_OVERRIDES["compress"]["variants"]
OUTCOMES = {
    "dask_worker_killed_mid_compress": "the stage completes; compressed models byte-identical "
    "to the undisturbed run's; no registry version or run added",
    "mlflow_server_restarted_mid_stage": "the stage completes (the client's retries ride out "
    "the restart) or fails with one sentence naming the store; the rerun completes; no "
    "registry version or run added",
    "postgresql_stopped": "one sentence naming the store within 60 s, no traceback; no file "
    "in models/ or reports/ changed (the stage's own outputs removed, as DVC does before any "
    "stage runs); once PostgreSQL is back the rerun completes, writes the same outputs, adds "
    "nothing to the registry",
}
METRIC_KEYS = ("accuracy", "macro_f1", "ece", "size_mb", "dev_accuracy", "selection_accuracy")


def _continual_models(repo: Path) -> int:
    """Models the continual stage registered in this clone's run: one per (method, step)."""
    report = load_params(repo / "params.yaml").continual.report
    records = json.loads((repo / report).read_text(encoding="utf-8"))["records"]
    return len({(r["method"], r["step"]) for r in records})


def _outputs(repo: Path) -> dict:
    return {p: tree_md5(repo / p) for p in ("models", "reports")}


def concurrent_runs(stack: team.Stack, work: Path) -> tuple[list, dict]:
    clones = [
        team_clone(work / name, stack, seed, VARIANTS) for name, seed in (("a", 13), ("b", 14))
    ]
    started = time.monotonic()
    processes = [start_repro(clone, stack) for clone in clones]
    seconds, ok = [], []
    for process, clone in zip(processes, clones, strict=True):
        log = finish(process, clone, timeout=3600)
        seconds.append(round(time.monotonic() - started, 1))
        ok.append(process.returncode == 0)
        if process.returncode != 0:
            raise RuntimeError(f"{clone.repo}: dvc repro failed\n{log[-4000:]}")
        pushed = dvc(clone, stack, "push")
        if pushed.returncode != 0:
            raise RuntimeError(pushed.stderr[-2000:])
    name = registered_model(clones[0].repo)
    counts = registry_counts(stack)
    tags = versions_of(stack, name)
    params = load_params(clones[0].repo / "params.yaml")
    cfg = params.evaluate
    commit, variant = expected_champion(clones, cfg.accuracy_budget, cfg.champion_profile)
    champion = tags[champion_version(stack, name)]
    per_run = 1 + len(VARIANTS)
    expected = {
        name: 2 * per_run,
        registered_model_name(params, continual=True): sum(
            _continual_models(c.repo) for c in clones
        ),
    }
    result = {
        "clones": {c.repo.name: {"train.seed": c.seed, "commit": c.commit} for c in clones},
        "both_completed": all(ok),
        "seconds_to_finish": dict(zip(("a", "b"), seconds, strict=True)),
        "models_per_run": per_run,
        "registry": counts,
        "versions_expected": expected,
        "versions_as_expected": counts["versions"] == expected,
        "versions_per_commit": {
            c.repo.name: sum(t.get("git.commit") == c.commit for t in tags.values()) for c in clones
        },
        "champion": {
            "registered": [champion.get("git.commit"), champion.get("frugal.variant")],
            "rule_over_both_runs": [commit, variant],
            "agrees": [champion.get("git.commit"), champion.get("frugal.variant")]
            == [commit, variant],
        },
    }
    return clones, result


def embedded_identity(clone_a: Path, work: Path) -> dict:
    """Clone a's configuration run embedded (SQLite store, thread pool, no servers): are the
    models byte-identical and the metrics the same?"""
    params = json.loads(json.dumps(TINY_OVERRIDES))
    params["compress"]["variants"] = VARIANTS
    embedded = work / "embedded"
    embedded.mkdir()
    make_repo_copy(embedded, params)
    done = subprocess.run(
        ["dvc", "repro"], cwd=embedded, env=project_env(embedded), capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(done.stdout[-3000:] + done.stderr[-3000:])
    ours, theirs = tree_md5(clone_a / "models"), tree_md5(embedded / "models")
    same_models = sorted(k for k in theirs if ours.get(k) == theirs[k])
    metrics_a = json.loads((clone_a / "reports/metrics.json").read_text())
    metrics_e = json.loads((embedded / "reports/metrics.json").read_text())
    differing = [
        f"{model}.{key}"
        for model in metrics_e
        for key in (*METRIC_KEYS, "modeled_uj_per_utterance")
        if metrics_a.get(model, {}).get(key) != metrics_e[model].get(key)
    ]
    return {
        "model_files": len(theirs),
        "byte_identical_model_files": len(same_models),
        "different_model_files": sorted(
            k for k in set(theirs) | set(ours) if ours.get(k) != theirs.get(k)
        ),
        "metrics_compared": len(metrics_e) * (len(METRIC_KEYS) + 1),
        "differing_metrics": differing,
        "identical": not differing and len(same_models) == len(theirs) == len(ours),
    }


def worker_fault(stack: team.Stack, clone, counts_before: dict) -> dict:
    before = tree_md5(clone.repo / "models/compressed")
    process = start_repro(clone, stack, "-s", "-f", "compress")
    killed = kill_busy_worker(stack, "variant")
    log = finish(process, clone)
    after = tree_md5(clone.repo / "models/compressed")
    counts = registry_counts(stack)
    return {
        "killed": killed,
        "stage_completed": process.returncode == 0,
        "models_byte_identical": after == before,
        "registry_unchanged": counts == counts_before,
        "log_tail": log[-600:] if process.returncode else "",
        "met": process.returncode == 0 and after == before and counts == counts_before,
    }


def mlflow_restart_fault(stack: team.Stack, clone, counts_before: dict) -> dict:
    process = start_repro(clone, stack, "-s", "-f", "profile")
    log_path = clone.repo / "repro.log"
    deadline = time.monotonic() + 300
    while "Beginning flow run" not in log_path.read_text(errors="replace"):
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError("the profile stage did not start")
        time.sleep(0.5)
    time.sleep(8)  # inside the stage: its first models are being logged
    restart_started = time.monotonic()
    team.stop_process(stack, "mlflow")
    team.start_mlflow(stack)
    restart_seconds = round(time.monotonic() - restart_started, 1)
    log = finish(process, clone)
    first = {"returncode": process.returncode}
    if process.returncode != 0:
        said = [line for line in log.splitlines() if line.startswith("error:")]
        first["error"] = said[-1] if said else log[-600:]
        rerun = dvc(clone, stack, "repro", "-s", "-f", "profile")
        first["rerun_returncode"] = rerun.returncode
    counts = registry_counts(stack)
    completed = process.returncode == 0 or first.get("rerun_returncode") == 0
    one_sentence = process.returncode == 0 or "Traceback" not in log
    return {
        "restart_seconds": restart_seconds,
        **first,
        "registry_unchanged": counts == counts_before,
        "met": completed and one_sentence and counts == counts_before,
    }


def postgres_fault(stack: team.Stack, clone, counts_before: dict) -> dict:
    outputs = _outputs(clone.repo)
    team.pg_ctl(stack, "stop")
    started = time.monotonic()
    failed = dvc(clone, stack, "repro", "-s", "-f", "evaluate")
    seconds = round(time.monotonic() - started, 1)
    said = failed.stdout + failed.stderr
    errors = [line for line in said.splitlines() if line.startswith("error:")]
    unchanged = untouched(outputs, _outputs(clone.repo), evaluate_outs(clone.repo))
    team.pg_ctl(stack, "start")
    rerun = dvc(clone, stack, "repro", "-s", "-f", "evaluate")
    counts = registry_counts(stack)
    restored = _outputs(clone.repo) == outputs
    names_store = any(f"tracking store at {stack.tracking_uri}" in e for e in errors)
    return {
        "seconds_to_error": seconds,
        "error": errors[-1] if errors else said[-600:],
        "traceback": "Traceback" in said,
        "outputs_untouched": unchanged,
        "rerun_completed": rerun.returncode == 0,
        "rerun_outputs_identical": restored,
        "registry_unchanged": counts == counts_before,
        "met": failed.returncode != 0
        and names_store
        and seconds < 60
        and "Traceback" not in said
        and unchanged
        and rerun.returncode == 0
        and restored
        and counts == counts_before,
    }


def new_machine(stack: team.Stack, clone, work: Path, name: str) -> dict:
    """A clone of `clone`'s repository (its run committed: dvc.lock and the reports) pulls."""
    commit_run(clone.repo)
    joined_repo = work / "d"
    subprocess.run(["git", "clone", "-q", str(clone.repo), str(joined_repo)], check=True)
    joined = type(clone)(joined_repo, clone.seed, git(joined_repo, "rev-parse", "HEAD"))
    pulled = dvc(joined, stack, "pull")
    status = dvc(joined, stack, "status", "--json")
    changed = sorted(json.loads(status.stdout)) if status.returncode == 0 else ["(failed)"]
    predict = champion_predicts(joined_repo, stack, name)
    return {
        "pulled": pulled.returncode == 0,
        "stages_to_reproduce": [s for s in changed if s != "source"],
        "always_changed": [s for s in changed if s == "source"],
        "champion_predicts": predict.returncode == 0 and '"label"' in predict.stdout,
        "prediction": predict.stdout.strip()[-200:],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="keep the clones and the stack's data")
    args = parser.parse_args()
    folder = stack_folder()
    work = Path(tempfile.mkdtemp(prefix="frugal-team-clones-"))
    stack = start_stack(folder)
    results: dict = {"outcomes_stated": OUTCOMES, "variants": VARIANTS}
    try:
        clones, results["concurrent"] = concurrent_runs(stack, work)
        a, b = clones
        counts = results["concurrent"]["registry"]
        faults = {
            "dask_worker_killed_mid_compress": worker_fault(stack, a, counts),
            "mlflow_server_restarted_mid_stage": mlflow_restart_fault(stack, b, counts),
            "postgresql_stopped": postgres_fault(stack, a, counts),
        }
        results["faults"] = faults
        name = registered_model(a.repo)
        results["new_machine"] = new_machine(stack, a, work, name)
    finally:
        team.down(stack)
    results["embedded_vs_team"] = embedded_identity(clones[0].repo, work)
    if not args.keep:
        remove(folder)
        remove(work)
    results["provenance"] = provenance()
    OUTPUT.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(table(results))


def table(results: dict) -> str:
    c = results["concurrent"]
    rows = [
        ("2 pipelines at once complete", c["both_completed"]),
        *(
            (f"registry versions of {model} (expected {expected})", counted)
            for model, expected in c["versions_expected"].items()
            for counted in [c["registry"]["versions"].get(model, 0)]
        ),
        (
            "duplicated versions / model runs / parent runs",
            "{duplicate_versions} / {duplicate_model_runs} / {duplicate_parent_runs}".format(
                **c["registry"]
            ),
        ),
        ("champion = the rule's pick over both runs", c["champion"]["agrees"]),
    ]
    for fault, outcome in results["faults"].items():
        rows.append((f"fault: {fault.replace('_', ' ')}", "met" if outcome["met"] else "MISSED"))
    joined = results["new_machine"]
    rows.append(("new machine: stages to reproduce after dvc pull", joined["stages_to_reproduce"]))
    rows.append(("new machine: champion loads and predicts", joined["champion_predicts"]))
    e = results["embedded_vs_team"]
    rows.append(
        (
            "team stack vs embedded: model files byte-identical",
            f"{e['byte_identical_model_files']} of {e['model_files']}",
        )
    )
    rows.append(("team stack vs embedded: differing metrics", len(e["differing_metrics"])))
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{label:<{width}}  {value}" for label, value in rows)


if __name__ == "__main__":
    main()
