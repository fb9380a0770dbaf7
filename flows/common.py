"""Shared entry-point plumbing for `python -m flows <stage>` (what each DVC stage runs) and
`python -m flows.pipeline`."""

import argparse
import logging
import sys
from collections.abc import Callable

from prefect.settings import PREFECT_API_URL, temporary_settings

from frugal.config import load_params
from frugal.errors import FrugalError
from frugal.stages.table import NAMES, Stage, stage
from orchestration.adapter import stage_flow
from orchestration.prefect_server import ensure_api
from orchestration.runner import task_runner


class _UserErrorsWithoutTraceback(logging.Filter):
    """Prefect logs a failing task's traceback; for a user error the message is enough."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], FrugalError):
            record.exc_info, record.exc_text = None, None
        return True


def _run_command(description: str | None, start: Callable[[str], object], stage_arg: bool) -> None:
    """Read the command line and call `start` with `--params`, the Prefect API reachable; a
    user error exits 2 with its message only."""
    parser = argparse.ArgumentParser(description=description)
    if stage_arg:
        parser.add_argument("stage", choices=NAMES[1:], help="the stage to run (dvc.yaml's)")
    parser.add_argument("--params", default="params.yaml", help="parameters file")
    args = parser.parse_args()
    for name in ("prefect.task_runs", "prefect.flow_runs", "prefect.engine"):
        logging.getLogger(name).addFilter(_UserErrorsWithoutTraceback())
    try:
        start(args)
    except FrugalError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


def run_stage_command() -> None:
    """`python -m flows <stage>`: the parameters file is parsed here, once (a bad value stops
    the stage before Prefect starts), and the stage's flow runs on the parsed `Params`. A
    tracked stage logs under the execution's parent run (found or made by
    `tracking.pipeline_run`: untracked stages never import MLflow), which dvc.yaml's last
    stage finishes."""

    def start(args: argparse.Namespace) -> None:
        row: Stage = stage(args.stage)
        params = load_params(args.params)
        runnable = stage_flow(row).with_options(task_runner=task_runner(params.orchestration))
        with temporary_settings(updates={PREFECT_API_URL: ensure_api()}):
            if not row.tracked:
                runnable(params)
                return
            from orchestration.tracking import pipeline_run

            with pipeline_run(params, last=row.name == NAMES[-1]) as tracker:
                runnable(params, tracker)

    _run_command("Run one stage of the pipeline (what its DVC stage runs).", start, True)


def run_pipeline(flow) -> None:  # noqa: ANN001 (a Prefect Flow)
    """Run the `frugal-pipeline` flow from the command line as a deployment run starts it: with
    the parameters file's path, which the flow parses once and hands to every stage."""

    def start(args: argparse.Namespace) -> None:
        with temporary_settings(updates={PREFECT_API_URL: ensure_api()}):
            flow(params_path=args.params)

    _run_command(flow.description, start, False)
