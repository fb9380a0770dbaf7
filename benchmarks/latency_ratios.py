"""Batch-1 CPU latency of every pipeline model, interleaved: all models loaded in one process
(as they serve: compressed layers on int8 kernels), then `--rounds` rounds in each of which
every model answers the same `--requests` test questions one at a time. A model's figure is
the median over rounds of its per-round median, so drift of this shared VM's speed hits every
model alike, and the FP32 ÷ model ratio is taken within each round before the median.

    dvc repro && python benchmarks/latency_ratios.py      (nothing else busy on the CPU)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from frugal.compressed import load_executable  # noqa: E402
from frugal.config import load_params  # noqa: E402
from frugal.modeling import predict_proba  # noqa: E402

DEFAULT_OUTPUT = ROOT / "benchmarks" / "results" / "latency_ratios.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=100)
    args = parser.parse_args()
    params = load_params(args.params)
    torch.set_num_threads(params.energy.threads)
    texts = pd.read_parquet(ROOT / params.energy.workload_data)["text"].tolist()[: args.requests]
    models = {path.name: load_executable(ROOT / path) for path in params.models()}
    for clf in models.values():  # warm-up: first calls allocate and pick kernels
        predict_proba(clf, texts[:10], batch_size=1)
    per_round: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(args.rounds):
        for name, clf in models.items():
            times = []
            for text in texts:
                started = time.perf_counter()
                predict_proba(clf, [text], batch_size=1)
                times.append(time.perf_counter() - started)
            per_round[name].append(1000 * float(np.median(times)))
    base = next(iter(models))
    rows = []
    for name, medians in per_round.items():
        ratios = np.array(per_round[base]) / np.array(medians)
        rows.append(
            {
                "model": name,
                "latency_ms_p50": round(float(np.median(medians)), 3),
                "min_round_ms": round(min(medians), 3),
                "max_round_ms": round(max(medians), 3),
                "fp32_ratio": round(float(np.median(ratios)), 3),
                "fp32_ratio_min": round(float(ratios.min()), 3),
                "fp32_ratio_max": round(float(ratios.max()), 3),
            }
        )
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(
            {
                "threads": params.energy.threads,
                "rounds": args.rounds,
                "requests": len(texts),
                "models": rows,
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
