"""The adapter records what a stage returns through the `Tracker`, on a temporary SQLite
store: a stage's own run with a metric's curve and files, a model's own run registered with an
alias, figures added to the run that made a model, the parent run's files and figures, and
the champion alias settled last; recording the same outcome again (a retried stage) adds no
run and no version."""

from __future__ import annotations

from pathlib import Path

import pytest

from frugal.registry import CHAMPION_ALIAS, champion_tags
from frugal.stages import Outcome, RunLog, Version
from orchestration import tracking
from orchestration.adapter import record
from orchestration.tracking import Tracker
from tests.stores import model_folder, sqlite_tracker


@pytest.fixture
def tracker(tmp_path: Path) -> Tracker:
    return sqlite_tracker(tmp_path)


def test_an_outcome_is_recorded_once_however_often_the_stage_runs(tracker, tmp_path):
    # given what a stage returned: its own run, a model it made, a report for the parent run
    report = tmp_path / "summary.json"
    report.write_text('{"labels": 3}')
    model_dir = model_folder(tmp_path, "base")
    tags = {"frugal.variant": "base"} | champion_tags("pool-1", True, 12.5)
    outcome = Outcome(
        reports=(report,),
        runs=[
            RunLog(
                run_name="sample",
                tags={"frugal.stage": "sample"},
                steps=[(10, {"proxy_accuracy": 0.5}), (20, {"proxy_accuracy": 0.7})],
                metrics={"labels": 20.0},
                artifacts=(report,),
                folder="sample",
            ),
            RunLog(
                run_name="base",
                model_dir=model_dir,
                tags={"frugal.stage": "train"},
                metrics={"best_dev_accuracy": 0.9},
                dicts={"train/plan.json": {"bits": 8}},
                register=True,
                version=Version(tags, "base: 90% test"),
            ),
        ],
        parent_metrics={"base.test_accuracy": 0.9},
        parent_dicts={"reports/plan.json": {"target": 0.9}},
        champion_pool="pool-1",
    )
    # when it is recorded, then recorded again (the stage retried)
    record(tracker, "train", outcome)
    record(tracker, "train", outcome)
    # then each run exists once under the parent, with its curve, figures and files
    client = tracking.client(tracker.params.tracking)
    runs = client.search_runs(
        [client.get_experiment_by_name(tracker.params.tracking.experiment).experiment_id],
        f"tags.`mlflow.parentRunId` = '{tracker.parent_run_id}'",
    )
    by_name = {r.info.run_name: r for r in runs}
    assert sorted(by_name) == ["base", "sample"]
    sample = by_name["sample"]
    curve = client.get_metric_history(sample.info.run_id, "proxy_accuracy")
    assert {(m.step, m.value) for m in curve} == {(10, 0.5), (20, 0.7)}  # a retry logs again
    assert sample.data.metrics["labels"] == 20.0
    assert [f.path for f in client.list_artifacts(sample.info.run_id, "sample")] == [
        "sample/summary.json"
    ]
    # ... the model registered once, described, and the champion alias on it
    name = tracker.registered_model()
    versions = client.search_model_versions(f"name = '{name}'")
    assert [str(v.version) for v in versions] == ["1"]
    assert versions[0].description == "base: 90% test"
    assert versions[0].tags["frugal.variant"] == "base"
    assert str(client.get_model_version_by_alias(name, CHAMPION_ALIAS).version) == "1"
    # ... and the parent run keeps the report and the figures
    parent = client.get_run(tracker.parent_run_id)
    assert parent.data.metrics["base.test_accuracy"] == 0.9
    files = {f.path for f in client.list_artifacts(tracker.parent_run_id, "reports")}
    assert files == {"reports/summary.json", "reports/plan.json"}


def test_figures_of_a_model_go_to_the_run_that_made_it(tracker, tmp_path):
    model_dir = model_folder(tmp_path, "energy_ptq")
    made = tracker.own_model_run(model_dir, "energy_ptq", {"frugal.stage": "compress"})
    profiled = RunLog(model_dir=model_dir, tags={"frugal.rapl": "n/a"}, metrics={"uj": 3.0})
    record(tracker, "profile", Outcome(runs=[profiled]))
    run = tracking.client(tracker.params.tracking).get_run(made)
    assert run.data.metrics == {"uj": 3.0} and run.data.tags["frugal.rapl"] == "n/a"
