from pathlib import Path

from prefect import flow

from flows.common import run_stage
from frugal.config import Params
from tasks.embed import embed_task


@flow(name="embed")
def embed_flow(params: Params) -> dict[str, Path]:
    """Embed every split once with the pretrained encoder (the sampling proxy's features)."""
    return embed_task(params.embed)


if __name__ == "__main__":
    run_stage(embed_flow)
