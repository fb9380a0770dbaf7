from pathlib import Path

from prefect import flow, unmapped

from flows.common import run_stage
from frugal.config import Params
from orchestration.progress import tracked
from tasks.compress import candidate_task, publish_task, sensitivity_task, variant_task
from tasks.tracking_tasks import open_pipeline_run


@flow(name="compress")
def compress_flow(params: Params, parent_run_id: str | None = None) -> list[Path]:
    """Sensitivity per tensor, then the candidate plans and the compressed variants in
    parallel on the task runner (quantization-aware distillation included); save, log and
    register every variant."""
    parent_run_id = parent_run_id or open_pipeline_run(params)
    analysis = sensitivity_task(params)
    futures = candidate_task.map(unmapped(params), unmapped(analysis), analysis.budgets)
    candidates = [f.result() for f in tracked(futures, "candidate plans", len(futures))]
    names = params.compress.variants
    futures = variant_task.map(unmapped(params), unmapped(analysis), unmapped(candidates), names)
    saved = [f.result() for f in tracked(futures, "variants", len(futures))]
    return publish_task(params, analysis, candidates, saved, parent_run_id)


if __name__ == "__main__":
    run_stage(compress_flow)
