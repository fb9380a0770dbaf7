"""Does the proxy's choice of labels help the fine-tuned model? Dev and test accuracy of the
real model fine-tuned (params.yaml `train` recipe) on the labels each strategy buys.

Each strategy buys `budget` labels exactly as the `sample` stage does (params.yaml `sample`:
cold start, rounds, proxy on cached embeddings scored on dev, the pool's labels answering),
once per sampling seed (the seed changes the cold start and random draws; the fine-tune seed
stays `train.seed`). The model is fine-tuned on them and scored on dev and test.

    python benchmarks/sampling_fine_tune.py run [--root CLONE] [--strategies ...]
        [--budgets 250 500 1000] [--seeds 13 14 15]     # appends to the CSV, resumes
    python benchmarks/sampling_fine_tune.py choose      # table + JSON

`choose` names the default **on dev** at the configured budget (`sample.budget`): the highest
mean dev accuracy over the seeds every strategy has. Test is reported, never used to choose.
`--root` is a repository whose `dvc repro embed` has run (its splits and embeddings are read).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stamp import provenance  # noqa: E402  (benchmarks/ is sys.path[0])

from frugal.config import load_params  # noqa: E402
from frugal.labels import sampling  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
ROWS = RESULTS / "sampling_fine_tune.csv"
SUMMARY = RESULTS / "sampling_fine_tune.json"
COLUMNS = ["strategy", "budget", "seed", "labels", "dev", "test", "proxy_dev", "steps", "seconds"]


def run(strategies: list[str], budgets: list[int], seeds: list[int], output: Path) -> None:
    from frugal.model.training import classifier_accuracy, fine_tune

    params = load_params(Path("params.yaml"))
    dev = pd.read_parquet(params.train.dev_data)
    test = pd.read_parquet(params.evaluate.test_data)
    inputs = sampling.load_inputs(params.sample)
    done = pd.read_csv(output) if output.is_file() else pd.DataFrame(columns=COLUMNS)
    finished = {(s, int(b), int(d)) for s, b, d in done[["strategy", "budget", "seed"]].values}
    for seed in seeds:  # seed-major: a partial run still compares every strategy
        for budget in budgets:
            cfg = params.sample.model_copy(update={"budget": budget, "seed": seed})
            for strategy in strategies:
                if (strategy, budget, seed) in finished:
                    continue
                bought = sampling.simulate(inputs, cfg, strategy, seed)
                labeled = inputs.pool.iloc[bought.positions]
                started = time.perf_counter()
                result = fine_tune(labeled, dev, params.train)
                row = {
                    "strategy": strategy,
                    "budget": budget,
                    "seed": seed,
                    "labels": len(labeled),
                    "dev": round(classifier_accuracy(result.classifier, dev), 6),
                    "test": round(classifier_accuracy(result.classifier, test), 6),
                    "proxy_dev": round(bought.curve[-1].accuracy, 6),
                    "steps": result.steps,
                    "seconds": round(time.perf_counter() - started, 1),
                }
                pd.DataFrame([row], columns=COLUMNS).to_csv(
                    output, mode="a", header=not output.is_file(), index=False
                )
                print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)


def choose(rows_path: Path, output: Path, budget: int) -> dict:
    rows = pd.read_csv(rows_path)
    summary: dict[str, dict] = {}
    for b, group in rows.groupby("budget"):
        n_strategies = group["strategy"].nunique()
        per_seed = group.groupby("seed")["strategy"].nunique()
        seeds = sorted(per_seed[per_seed == n_strategies].index)  # seeds every strategy has
        table = group[group["seed"].isin(seeds)].groupby("strategy")[["dev", "test"]]
        mean, sd = table.mean(), table.std(ddof=0)
        summary[str(b)] = {
            "seeds": [int(s) for s in seeds],
            "strategies": {
                s: {
                    "dev_mean": round(float(mean.loc[s, "dev"]), 4),
                    "dev_sd": round(float(sd.loc[s, "dev"]), 4),
                    "test_mean": round(float(mean.loc[s, "test"]), 4),
                    "test_sd": round(float(sd.loc[s, "test"]), 4),
                }
                for s in mean.sort_values("dev", ascending=False).index
            },
        }
    at_budget = summary.get(str(budget))
    best = next(iter(at_budget["strategies"])) if at_budget and at_budget["seeds"] else None
    payload = {
        "budget": budget,
        "rule": "highest mean fine-tuned dev accuracy at sample.budget, seeds every strategy has",
        "best_on_dev": best,
        "budgets": summary,
    }
    payload["provenance"] = provenance()
    output.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    for b, entry in summary.items():
        print(f"\n{b} labels, seeds {entry['seeds']} (sorted by dev):")
        print(f"{'strategy':>17} {'dev':>15} {'test':>15}")
        for s, v in entry["strategies"].items():
            print(
                f"{s:>17} {100 * v['dev_mean']:>8.2f} ± {100 * v['dev_sd']:.2f}"
                f" {100 * v['test_mean']:>8.2f} ± {100 * v['test_sd']:.2f}"
            )
    print(f"\nchosen on dev at {budget} labels: {best}")
    return payload


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["run", "choose"])
    parser.add_argument("--root", type=Path, default=ROOT)
    parser.add_argument("--strategies", nargs="+", default=list(sampling.STRATEGIES))
    parser.add_argument("--budgets", type=int, nargs="+", default=None)
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument("--rows", type=Path, default=ROWS)
    parser.add_argument("--output", type=Path, default=SUMMARY)
    args = parser.parse_args()
    rows, output = args.rows.resolve(), args.output.resolve()
    os.chdir(args.root)  # params.yaml's paths are relative to its repository
    params = load_params(Path("params.yaml"))
    if args.command == "run":
        budgets = args.budgets or [params.sample.budget]
        run(args.strategies, budgets, args.seeds or params.sample.seeds, rows)
    else:
        choose(rows, output, params.sample.budget)


if __name__ == "__main__":
    main()
