from pathlib import Path

from prefect import flow, unmapped

from flows.common import run_stage
from frugal.config import Params
from orchestration.progress import tracked
from orchestration.tracking import Tracker, pipeline_run
from tasks.compress import candidate_task, publish_task, sensitivity_task, variant_task


@flow(name="compress")
def compress_flow(params: Params, tracker: Tracker) -> list[Path]:
    """Sensitivity per tensor, then the candidate plans and the compressed variants in
    parallel on the task runner (quantization-aware distillation included); save, log and
    register every variant."""
    analysis = sensitivity_task(params)
    futures = candidate_task.map(unmapped(params), unmapped(analysis), analysis.budgets)
    planned = [f.result() for f in tracked(futures, "candidate plans", len(futures))]
    candidates = [c for c in planned if c is not None]  # None: no plan meets the budgets
    names = params.compress.variants
    futures = variant_task.map(unmapped(params), unmapped(analysis), unmapped(candidates), names)
    saved = [f.result() for f in tracked(futures, "variants", len(futures))]
    return publish_task(params, analysis, candidates, saved, tracker)


if __name__ == "__main__":
    run_stage(compress_flow, pipeline_run)
