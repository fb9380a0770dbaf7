"""The one adapter between the stage table (`frugal.stages`) and Prefect and MLflow: any row
runs as a Prefect flow named after it, its parts (`Context.map`) as tasks on the task runner,
and what it returns (`Outcome`) is recorded through the `Tracker`, the stage's one way to
MLflow. No per-stage code lives here: a stage is its core module and its row.

No `from __future__ import annotations` here: a stage flow's parameters are validated by
Prefect (pydantic), which needs the annotations as classes."""

import shutil
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from prefect import Flow, get_run_logger, task, unmapped

from frugal.config import Params
from frugal.stages import Context, Outcome, RunLog
from frugal.stages.table import Stage
from orchestration.progress import Bars, tracked

if TYPE_CHECKING:
    from orchestration.tracking import Tracker


def _context(tracker: "Tracker | None" = None) -> Context:
    """A Context on the current Prefect run's logger; `progress` is set by the caller."""
    logger = get_run_logger()
    commit = None
    if tracker is not None:
        from orchestration.tracking import git_commit  # MLflow: tracked stages only

        commit = git_commit()[0]
    return Context(
        log=logger.info,
        warn=logger.warning,
        mapper=_on_task_runner,
        parent_run=None if tracker is None else tracker.parent_run_id,
        commit=commit,
    )


def _part(part: Callable[[Any, Context], Any], item: Any) -> Any:
    """One part of a stage, as a task: its own logger and progress bars."""
    with Bars() as bars:
        return part(item, replace(_context(), progress=bars))


def _on_task_runner(name: str, part: Callable, items: Sequence[Any], ctx: Context) -> list[Any]:
    """`Context.map` on the flow's task runner: one task run `name` per item."""
    futures = task(_part, name=name).map(unmapped(part), list(items))
    return [f.result() for f in tracked(futures, name, len(futures))]


def stage_flow(stage: Stage) -> Flow:
    """The Prefect flow of a stage row: `(params, tracker)` for a tracked stage (the
    execution's parent run, see `tracking.pipeline_run`), `(params)` for another."""

    if not stage.tracked:  # imports no MLflow

        def run_untracked(params: Params) -> Any:
            return execute(stage, params, None)

        return Flow(run_untracked, name=stage.flow_name, description=stage.describe())
    from orchestration.tracking import Tracker

    def run_tracked(params: Params, tracker: Tracker) -> Any:
        return execute(stage, params, tracker)

    return Flow(run_tracked, name=stage.flow_name, description=stage.describe())


def execute(stage: Stage, params: Params, tracker: "Tracker | None") -> Any:
    """Run the stage in this flow run, record its outcome, remove its scratch folders."""
    with Bars() as bars:
        outcome = stage.run(params, replace(_context(tracker), progress=bars))
    if tracker is not None:
        record(tracker, stage.name, outcome)
    for path in outcome.scratch:
        shutil.rmtree(path, ignore_errors=True)
    return outcome.value


def record(tracker: "Tracker", stage: str, outcome: Outcome) -> None:
    """Every run of the outcome, then the parent run's files and figures; last, the champion
    alias, once every version of this execution is described."""
    for entry in outcome.runs:
        _record_run(tracker, stage, entry)
    if outcome.reports:
        tracker.log_reports(*outcome.reports)
    if outcome.parent_metrics:
        tracker.log_metrics(tracker.parent_run_id, dict(outcome.parent_metrics))
    for artifact_file, content in outcome.parent_dicts.items():
        tracker.log_dict(tracker.parent_run_id, content, artifact_file)
    if outcome.champion_pool is not None:
        tracker.promote_champion(outcome.champion_pool)


def _record_run(tracker: "Tracker", stage: str, entry: RunLog) -> None:
    tags = dict(entry.tags)
    if entry.run_name is None:  # the run that made the model
        assert entry.model_dir is not None, "a RunLog names a run or a model"
        run_id = tracker.model_run(entry.model_dir, stage)
        if tags:
            tracker.set_tags(run_id, tags)
    elif entry.model_dir is None:
        run_id = tracker.stage_run(entry.run_name, tags)
    else:
        run_id = tracker.own_model_run(entry.model_dir, entry.run_name, tags)
    for step, metrics in entry.steps:
        tracker.log_metrics(run_id, dict(metrics), step)
    if entry.metrics:
        tracker.log_metrics(run_id, dict(entry.metrics))
    for artifact_file, content in entry.dicts.items():
        tracker.log_dict(run_id, content, artifact_file)
    if entry.artifacts:
        tracker.log_artifacts(run_id, entry.artifacts, entry.folder)
    if entry.register:
        assert entry.model_dir is not None, "only a model registers"
        tracker.register(run_id, entry.model_dir, continual=entry.continual)
    if entry.alias is not None:
        tracker.set_alias(run_id, entry.alias, continual=entry.continual)
    if entry.version is not None:
        tracker.describe_versions(run_id, dict(entry.version.tags), entry.version.description)
