from __future__ import annotations

from pathlib import Path

from prefect import flow

from flows.common import run_stage
from frugal.config import load_params
from tasks.embed import embed_task


@flow(name="embed")
def embed_flow(params_path: str = "params.yaml", overrides: dict | None = None) -> dict[str, Path]:
    """Embed every split once with the pretrained encoder (the sampling proxy's features)."""
    params = load_params(params_path, overrides)
    return embed_task(params.embed)


if __name__ == "__main__":
    run_stage(embed_flow)
