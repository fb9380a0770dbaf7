"""The embed stage: encoder embeddings of every split, cached for the sampling rounds."""

from __future__ import annotations

import pandas as pd

from frugal.config import Params
from frugal.data.dataset import SPLITS
from frugal.files import write_embeddings_atomic
from frugal.model.modeling import embed_texts
from frugal.stages import Context, Outcome


def run(params: Params, ctx: Context) -> Outcome:
    """Embed every split's text once; write one file per split."""
    cfg = params.embed
    frames = {split: pd.read_parquet(cfg.splits_dir / f"{split}.parquet") for split in SPLITS}
    texts = [text for frame in frames.values() for text in frame["text"].tolist()]
    matrix = embed_texts(texts, cfg.max_length, cfg.batch_size, threads=cfg.threads)
    written, start = {}, 0
    for split, frame in frames.items():
        path = cfg.output_dir / f"{split}.npz"
        ids = frame["id"].astype(str).tolist()
        written[split] = write_embeddings_atomic(ids, matrix[start : start + len(ids)], path)
        start += len(ids)
    return Outcome(value=written)
