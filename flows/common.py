"""Shared entry-point plumbing for `python -m flows.<stage>` (what each DVC stage runs) and
`python -m flows.pipeline`."""

import argparse
import inspect
import logging
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import yaml
from prefect import Flow
from prefect.settings import PREFECT_API_URL, temporary_settings

from frugal.config import load_params
from frugal.errors import FrugalError
from orchestration.prefect_server import ensure_api
from orchestration.runner import task_runner

DVC_YAML = Path(__file__).resolve().parent.parent / "dvc.yaml"
_DVC = yaml.safe_load(DVC_YAML.read_text(encoding="utf-8"))
STAGES = tuple(_DVC["stages"])  # the one stage list: dvc.yaml's, in its order
SOURCE_OUT = Path(_DVC["vars"][0]["source_fingerprint"])  # the `source` stage's out


def is_tracked(flow: Flow[..., object]) -> bool:
    """Whether a stage flow logs to MLflow (it takes the execution's `tracker`)."""
    return "tracker" in inspect.signature(flow.fn).parameters


class _UserErrorsWithoutTraceback(logging.Filter):
    """Prefect logs a failing task's traceback; for a user error the message is enough."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], FrugalError):
            record.exc_info, record.exc_text = None, None
        return True


def _run_command(flow: Flow[..., object], start: Callable[[str], object]) -> None:
    """Read `--params` from the command line and call `start` with it, the Prefect API
    reachable; a user error exits 2 with its message only."""
    parser = argparse.ArgumentParser(description=flow.__doc__)
    parser.add_argument("--params", default="params.yaml", help="parameters file")
    args = parser.parse_args()
    for name in ("prefect.task_runs", "prefect.flow_runs", "prefect.engine"):
        logging.getLogger(name).addFilter(_UserErrorsWithoutTraceback())
    try:
        start(args.params)
    except FrugalError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


def run_stage(
    flow: Flow[..., object], parent_run: Callable[..., AbstractContextManager] | None = None
) -> None:
    """Run a stage flow from the command line (what its DVC stage runs): the parameters file is
    parsed here, once (a bad value stops the stage before Prefect starts), and the flow runs on
    the parsed `Params`. A tracked stage passes `parent_run` (`orchestration.tracking.
    pipeline_run`: untracked stages never import MLflow) and logs under the execution's parent
    run, which dvc.yaml's last stage finishes."""
    stage = flow.name.replace("-", "_")
    assert stage in STAGES, f"flow {flow.name!r} is no stage of dvc.yaml"
    assert (parent_run is not None) == is_tracked(flow), (
        f"{stage}: a tracked stage passes parent_run"
    )

    def start(params_path: str) -> None:
        params = load_params(params_path)
        runnable = flow.with_options(task_runner=task_runner(params.orchestration))
        with temporary_settings(updates={PREFECT_API_URL: ensure_api()}):
            if parent_run is None:
                runnable(params)
                return
            with parent_run(params, last=stage == STAGES[-1]) as tracker:
                runnable(params, tracker)

    _run_command(flow, start)


def run_pipeline(flow: Flow[..., object]) -> None:
    """Run the `frugal-pipeline` flow from the command line as a deployment run starts it: with
    the parameters file's path, which the flow parses once and hands to every stage."""

    def start(params_path: str) -> None:
        with temporary_settings(updates={PREFECT_API_URL: ensure_api()}):
            flow(params_path=params_path)

    _run_command(flow, start)
