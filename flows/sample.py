from prefect import flow

from flows.common import run_stage
from frugal.config import Params
from orchestration.progress import tracked
from tasks.sample import buy_labels_task, sample_report_task, simulate_task
from tasks.tracking_tasks import open_pipeline_run


@flow(name="sample")
def sample_flow(params: Params, parent_run_id: str | None = None) -> dict:
    """Simulate every compared strategy × seed, then buy the training labels (resuming from
    imported ones) with the chosen strategy; write and log the annotation curves."""
    cfg = params.sample
    parent_run_id = parent_run_id or open_pipeline_run(params)
    curves = []
    if cfg.annotator == "simulated":
        futures = [simulate_task.submit(cfg, s, seed) for s in cfg.compare for seed in cfg.seeds]
        curves = [f.result() for f in tracked(futures, "annotation runs", len(futures))]
    bought, full_pool_accuracy = buy_labels_task(cfg)
    return sample_report_task(params, curves, bought, full_pool_accuracy, parent_run_id)


if __name__ == "__main__":
    run_stage(sample_flow)
