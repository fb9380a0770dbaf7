"""Shared entry-point plumbing for `python -m flows.<stage>` (what each DVC stage runs)."""

from __future__ import annotations

import argparse
import logging
import sys

from prefect import Flow
from prefect.settings import PREFECT_API_URL, temporary_settings

from frugal.config import load_params
from frugal.errors import FrugalError
from orchestration.prefect_server import ensure_api
from orchestration.runner import task_runner


class _UserErrorsWithoutTraceback(logging.Filter):
    """Prefect logs a failing task's traceback; for a user error the message is enough."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], FrugalError):
            record.exc_info, record.exc_text = None, None
        return True


def run_stage(flow: Flow[..., object]) -> None:
    """Run a stage flow from the command line; a user error exits 2 with its message only."""
    parser = argparse.ArgumentParser(description=flow.__doc__)
    parser.add_argument("--params", default="params.yaml", help="parameters file")
    args = parser.parse_args()
    for name in ("prefect.task_runs", "prefect.flow_runs", "prefect.engine"):
        logging.getLogger(name).addFilter(_UserErrorsWithoutTraceback())
    try:
        params = load_params(args.params)  # fail fast on bad parameters, before Prefect starts
        with temporary_settings(updates={PREFECT_API_URL: ensure_api()}):
            flow.with_options(task_runner=task_runner(params.orchestration))(
                params_path=args.params
            )
    except FrugalError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
