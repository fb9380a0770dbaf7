"""The stages of the pipeline and the contract each one keeps (the table of stages, in order:
`frugal.stages.table`).

A stage is a core module `frugal.stages.<name>` with one function
`run(params, ctx) -> Outcome`: plain Python that reads the stage's inputs (JSON reports through
`frugal.catalog`), writes its outputs, and returns what MLflow should record of them. It
imports no Prefect and no MLflow: one generic adapter (`orchestration.adapter`) runs any row of
the table as a Prefect flow and records its `Outcome` through the `Tracker`. A new stage is a
module, its params section and a row of the table.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

T = TypeVar("T")
R = TypeVar("R")

_LOG = logging.getLogger("frugal")


class Progress(Protocol):
    def __call__(self, phase: str, done: int, total: int, **postfix: object) -> None: ...


def _no_progress(phase: str, done: int, total: int, **postfix: object) -> None:
    return None


def map_in_order(
    name: str, part: Callable[[T, Context], R], items: Sequence[T], ctx: Context
) -> list[R]:
    """`Context.map` without a task runner: each part in turn, in this process."""
    return [part(item, ctx) for item in items]


@dataclass(frozen=True)
class Context:
    """What the adapter hands a stage besides its params: where to log and show progress, how
    to fan independent parts out (`map(name, part, items)`: `part(item, ctx)` for each item,
    on the task runner, results in the items' order; a part and its bound arguments must
    pickle), and the execution it belongs to (None outside a tracked run)."""

    log: Callable[[str], None] = _LOG.info
    warn: Callable[[str], None] = _LOG.warning
    progress: Progress = _no_progress
    mapper: Callable[..., list[Any]] = map_in_order
    parent_run: str | None = None  # the MLflow parent run of this execution
    commit: str | None = None  # the git commit the execution runs

    def map(self, name: str, part: Callable[[T, Context], R], items: Sequence[T]) -> list[R]:
        return self.mapper(name, part, items, self)


@dataclass(frozen=True)
class Version:
    """What a registered version says about itself in the MLflow UI (`frugal.registry`)."""

    tags: Mapping[str, str]
    description: str


@dataclass(frozen=True)
class RunLog:
    """One MLflow run a stage records. With `run_name`, a run the stage makes: about the model
    in `model_dir` (its own run, found again by the model's bytes on a retry) or, without a
    model, the stage's own run. Without `run_name`, the run that made the model in `model_dir`
    (train's or compress's), which the stage adds to."""

    run_name: str | None = None
    model_dir: Path | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    steps: Sequence[tuple[int, Mapping[str, float]]] = ()  # (step, metrics): a metric's curve
    metrics: Mapping[str, float] = field(default_factory=dict)
    dicts: Mapping[str, Any] = field(default_factory=dict)  # artifact file -> JSON content
    artifacts: Sequence[Path] = ()
    folder: str = ""  # the artifacts' folder in the run
    register: bool = False  # a version of the pipeline's registered model
    continual: bool = False  # ... of the continual stage's registered model
    alias: str | None = None  # moved to the version this run registered
    version: Version | None = None  # tags and description of the versions this run registered


@dataclass(frozen=True)
class Outcome:
    """What a stage returns: the files it wrote that the parent run keeps (`reports`), the runs
    to record, figures for the parent run, the champion pool whose alias to settle once every
    version is described, and scratch folders to remove once recorded (models a run logs that
    the stage does not keep)."""

    value: Any = None  # what the stage's flow returns (its main output)
    reports: Sequence[Path] = ()
    runs: Sequence[RunLog] = ()
    parent_metrics: Mapping[str, float] = field(default_factory=dict)
    parent_dicts: Mapping[str, Any] = field(default_factory=dict)
    champion_pool: str | None = None
    scratch: Sequence[Path] = ()
