"""The continual-learning goals of issue 6, measured: per method and step, average test
accuracy over the classes seen so far, mean forgetting and update wall time; after the last
step, each method's gap to full retraining and its time as a share of full retraining's.

It reads the pipeline's reports/continual.json (the default `dvc repro` run, seed
`continual.seed`); --seeds reruns the whole sequence here (no MLflow) for each further seed
(model initialisation, data order, random exemplars) and reports mean and spread. Run with nothing else busy on the CPU: times are goals.

    dvc repro continual && python benchmarks/continual_updates.py
    python benchmarks/continual_updates.py --seeds 14 15
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from frugal.config import load_params  # noqa: E402
from frugal.continual import run_continual  # noqa: E402
from frugal.domains import domain_steps  # noqa: E402

DEFAULT_OUTPUT = ROOT / "benchmarks" / "results" / "continual_updates.json"


def goals(steps: pd.DataFrame) -> pd.DataFrame:
    """After the last step, per method (and seed): final average accuracy, its gap to full
    retraining in points, summed update seconds and their share of full retraining's."""
    updates = steps[steps["method"] != "initial"]
    rows = []
    for seed, runs in updates.groupby("seed"):
        last = runs[runs["step"] == runs["step"].max()].set_index("method")
        seconds = runs.groupby("method")["seconds"].sum()
        for method in last.index:
            rows.append(
                {
                    "seed": seed,
                    "method": method,
                    "final_average_accuracy": last.loc[method, "average_accuracy"],
                    "gap_to_full_retrain_pt": 100
                    * (
                        last.loc["full_retrain", "average_accuracy"]
                        - last.loc[method, "average_accuracy"]
                    ),
                    "final_mean_forgetting": last.loc[method, "mean_forgetting"],
                    "update_seconds": seconds[method],
                    "time_vs_full_retrain": seconds[method] / seconds["full_retrain"],
                }
            )
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--seeds", type=int, nargs="*", help="rerun here with these seeds")
    args = parser.parse_args()
    params = load_params(args.params)
    cfg = params.continual
    report = json.loads((ROOT / cfg.report).read_text())
    frames = [
        pd.DataFrame(report["records"])
        .assign(seed=cfg.seed)
        .drop(columns=["per_class", "forgetting"])
    ]
    pool = pd.read_parquet(ROOT / cfg.pool_data)
    test = pd.read_parquet(ROOT / cfg.test_data)
    dev = pd.read_parquet(ROOT / cfg.dev_data)
    for seed in args.seeds or []:
        run_cfg = cfg.model_copy(update={"seed": seed})
        records = run_continual(domain_steps(pool, cfg.steps), dev, test, run_cfg, log=print)
        frames.append(pd.DataFrame([r.row() for r in records]).assign(seed=seed))
    steps = pd.concat(frames, ignore_index=True)
    summary = goals(steps)
    mean = summary.groupby("method", sort=False).agg(["mean", "std"]).drop(columns="seed")
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(steps.round(4).to_string(index=False))
        print(summary.round(4).to_string(index=False))
        if len(summary["seed"].unique()) > 1:
            print(mean.round(4).to_string())
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(
            {
                "steps": cfg.steps,
                "memory_fraction": cfg.memory_fraction,
                "seeds": sorted(int(s) for s in summary["seed"].unique()),
                "per_step": steps.round(5).to_dict("records"),
                "final": summary.round(5).to_dict("records"),
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
