"""Where the base model's energy goes: share by component and by memory level, for both workloads
and every device profile (modeled), plus measured CPU latency and throughput.

Modeled figures come from `frugal.energy.modeled` (invocation counts measured with hooks over the first
`modeled.max_requests` test questions, SRAM placement solved per profile). Measured figures come
from `frugal.energy.measure` in a fresh process (batch-1 latency, batch-32 throughput, 2 threads).
Prints a table and writes JSON. Run with nothing else busy on the CPU.

    dvc repro train && python benchmarks/energy_breakdown.py [--model models/base]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stamp import provenance  # noqa: E402  (benchmarks/ is sys.path[0])

from frugal.compress.packed import model_energy_of  # noqa: E402
from frugal.config import load_params  # noqa: E402
from frugal.energy import modeled  # noqa: E402
from frugal.energy.measure import measure_in_fresh_process  # noqa: E402

DEFAULT_OUTPUT = ROOT / "benchmarks" / "results" / "energy_breakdown.json"
COMPONENTS = ["embeddings", "attention", "feed_forward", "norm", "head"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "base")
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args()
    cfg = load_params(args.params).profile
    workload_path = ROOT / cfg.workload_data
    texts = pd.read_parquet(workload_path)["text"].astype(str).tolist()[: cfg.max_requests]
    profiles = [modeled.device_profile(name, p) for name, p in cfg.profiles.items()]
    results = model_energy_of(args.model, texts, profiles)

    rows = []
    for result in results:
        for name, report in result.reports.items():
            total = report.total_pj
            components = report.by_component()["total_pj"]
            memory = report.by_memory()
            table = report.table()
            rows.append(
                {
                    "workload": result.workload,
                    "profile": name,
                    "requests_per_utterance": round(result.requests / result.texts, 2),
                    "uj_per_utterance": round(total / 1e6, 3),
                    **{f"{c}_share": round(components.get(c, 0.0) / total, 4) for c in COMPONENTS},
                    **{f"{k}_share": round(v / total, 4) for k, v in memory.items()},
                    "sram_resident_mb": round(
                        table.loc[table["memory"] == "sram", "size_bytes"].sum() / 2**20, 2
                    ),
                }
            )
    frame = pd.DataFrame(rows)
    measured = measure_in_fresh_process(
        args.model, workload_path, cfg.threads, cfg.latency_requests, cfg.throughput_batch
    )
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(f"modeled, {len(texts)} test questions, model {args.model.name}:")
        print(frame.to_string(index=False))
    print(
        f"measured ({measured.threads} threads): batch-1 latency p50 "
        f"{measured.latency_ms_p50:.1f} ms, p95 {measured.latency_ms_p95:.1f} ms; "
        f"throughput at batch {measured.throughput_batch}: {measured.throughput_per_s:.0f} "
        f"texts/s; peak RSS {measured.peak_rss_mb:.0f} MB (runtime alone "
        f"{measured.runtime_rss_mb:.0f} MB); weights {measured.weights_bytes / 1e6:.1f} MB; "
        f"RAPL {measured.rapl}"
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(
            {
                "model": args.model.name,
                "texts": len(texts),
                "modeled": rows,
                "measured": measured.as_dict(),
                "profiles": {p.name: p.source for p in profiles},
                "provenance": provenance(),
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
