"""`python -m flows <stage> [--params FILE]`: one stage of the pipeline, what dvc.yaml runs."""

from flows.common import run_stage_command

run_stage_command()
