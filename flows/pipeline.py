import contextlib
from pathlib import Path

from prefect import flow
from prefect.runtime import flow_run

from frugal.config import parse_params, read_params
from frugal.data.source import write_fingerprint
from frugal.errors import ParamsError
from frugal.stages.table import NAMES, SOURCE_OUT, STAGES
from orchestration.adapter import stage_flow
from orchestration.repo_lock import repo_lock
from orchestration.runner import task_runner
from orchestration.tracking import pipeline_run

# Each row of the stage table is a flow (`orchestration.adapter.stage_flow`); `source`, which
# only fingerprints the input, runs here as a plain call.
FLOWS = {row.name: stage_flow(row) for row in STAGES}


@flow(name="frugal-pipeline")
def frugal_pipeline(
    params_path: str = "params.yaml", overrides: dict | None = None, until: str = "report"
) -> object:
    """Every stage of dvc.yaml, in its order: source (fingerprint) → ingest → prepare → embed
    → sample → train → learning_curve → forecast → compress → profile → evaluate, then
    continual (domain updates) and the HTML report, under one MLflow parent run; `until`
    stops after that stage (as `dvc repro <stage>` does). Returns the last stage's result.
    Holds the repository's DVC lock: one pipeline run at a time.

    `overrides` is a nested mapping merged over params.yaml, e.g. {"train": {"epochs": 3}}.
    The parameters are read and validated here, once, and every stage's flow gets them.
    """
    if until not in NAMES:
        raise ParamsError(f"until: unknown stage {until!r}; choose one of {', '.join(NAMES)}")
    raw = read_params(params_path, overrides)
    params = parse_params(raw, params_path, overrides)
    runner = task_runner(params.orchestration)
    result = None
    # refused while `dvc repro` or another pipeline run holds the repo
    with repo_lock(), contextlib.ExitStack() as stack:
        write_fingerprint(
            raw["ingest"], Path(SOURCE_OUT)
        )  # as the `source` stage: the file's values
        tracker = None
        for row in STAGES[: NAMES.index(until)]:
            stage_flow_ = FLOWS[row.name].with_options(task_runner=runner)  # as `flows <stage>`
            if not row.tracked:
                result = stage_flow_(params)
                continue
            if tracker is None:  # opened once the raw data (part of its key) exists
                tracker = stack.enter_context(pipeline_run(params, flow_run.get_id()))
            result = stage_flow_(params, tracker)
    return result


if __name__ == "__main__":
    from flows.common import run_pipeline

    run_pipeline(frugal_pipeline)
