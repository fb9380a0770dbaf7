from prefect import flow

from flows.common import run_stage
from frugal.config import Params
from orchestration.progress import tracked
from orchestration.tracking import Tracker, pipeline_run
from tasks.sample import buy_labels_task, sample_report_task, simulate_task


@flow(name="sample")
def sample_flow(params: Params, tracker: Tracker) -> dict:
    """Simulate every compared strategy × seed, then buy the training labels (resuming from
    imported ones) with the chosen strategy; write and log the annotation curves."""
    cfg = params.sample
    curves = []
    if cfg.annotator == "simulated":
        futures = [simulate_task.submit(cfg, s, seed) for s in cfg.compare for seed in cfg.seeds]
        curves = [f.result() for f in tracked(futures, "annotation runs", len(futures))]
    bought, full_pool_accuracy = buy_labels_task(cfg)
    return sample_report_task(cfg, curves, bought, full_pool_accuracy, tracker)


if __name__ == "__main__":
    run_stage(sample_flow, pipeline_run)
