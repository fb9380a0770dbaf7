"""Shared entry-point plumbing for `python -m flows.<stage>` (what each DVC stage runs)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from tasks.env import configure_environment

configure_environment()

from frugal.errors import FrugalError  # noqa: E402


def run_stage(flow: Callable[..., object]) -> None:
    """Run a stage flow from the command line; a user error exits 2 with its message only."""
    parser = argparse.ArgumentParser(description=flow.__doc__)
    parser.add_argument("--params", default="params.yaml", help="parameters file")
    args = parser.parse_args()
    try:
        flow(params_path=args.params)
    except FrugalError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
