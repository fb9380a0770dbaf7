"""Labels each sampling strategy needs to reach 98% of full-pool accuracy, ÷ random's.

Simulates every strategy in `frugal.labels.sampling.STRATEGIES` from the same cold start (k-means,
params.yaml `sample`) in rounds of `--batch` labels up to `--budget`, for several seeds, with
the pool's own labels as the annotator. The score is the proxy's (logistic regression on the
cached encoder embeddings) accuracy on the **test** split; "full" is the proxy trained on all
pool labels. Also reports the seconds per round (fit the proxy + choose the batch).
Prints a table and writes JSON.

    dvc repro embed && python benchmarks/sampling_strategies.py [--seeds 13 14 15]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stamp import provenance  # noqa: E402  (benchmarks/ is sys.path[0])

from frugal.config import load_params  # noqa: E402
from frugal.labels import sampling  # noqa: E402

DEFAULT_OUTPUT = ROOT / "benchmarks" / "results" / "sampling_strategies.json"
SHARE = 0.98


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[13, 14, 15])
    parser.add_argument("--budget", type=int, default=2500)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--strategies", nargs="+", default=list(sampling.STRATEGIES))
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args()

    params = load_params(ROOT / "params.yaml")
    cfg = params.sample.model_copy(
        update={
            "eval_data": params.evaluate.test_data,  # the test split
            "budget": args.budget,
            "batch_size": args.batch,
            "initial_size": args.batch,
        }
    )
    inputs = sampling.load_inputs(cfg)
    truth = inputs.pool["label"].astype(str).to_numpy()
    full = sampling.full_pool_accuracy(inputs, cfg.inverse_l2)
    curves = []
    started = time.perf_counter()
    for strategy in args.strategies:
        for seed in args.seeds:
            curve = sampling.curve_table(sampling.simulate(inputs, cfg, strategy, seed))
            curves.append(curve)
            print(
                f"{strategy:>16} seed {seed}: {curve['accuracy'].iloc[-1]:.4f} at "
                f"{curve['n_labels'].iloc[-1]} labels, {curve['seconds'].mean():.2f} s/round",
                flush=True,
            )
    rounds = pd.concat(curves, ignore_index=True)
    summary = sampling.summarize_curves(rounds, full, SHARE)
    # per-seed labels to the target, to show the spread
    target = SHARE * full
    for strategy, group in rounds.groupby("strategy", sort=False):
        per_seed = {}
        for seed, seed_curve in group.groupby("seed"):
            reached = seed_curve[seed_curve["accuracy"] >= target]["n_labels"]
            per_seed[int(seed)] = int(reached.min()) if len(reached) else None
        summary[str(strategy)]["labels_to_target_per_seed"] = per_seed

    print(
        f"\nfull-pool proxy accuracy {full:.4f} ({len(truth)} labels); target {SHARE:.0%} = "
        f"{target:.4f}; seeds {args.seeds}; rounds of {args.batch}\n"
    )
    print(f"{'strategy':>16} | labels to target | ÷ random | final acc (sd) | s/round")
    for strategy, entry in summary.items():
        needed = entry["labels_to_target_mean"]
        ratio = entry["labels_vs_random"]
        print(
            f"{strategy:>16} | {needed if needed is None else round(needed):>16} | "
            f"{'-' if ratio is None else f'{ratio:.2f}':>8} | "
            f"{entry['final_accuracy_mean']:.4f} ({entry['final_accuracy_sd']:.4f}) | "
            f"{entry['seconds_per_round']:.3f}"
        )
    result = {
        "share_of_full": SHARE,
        "full_pool_accuracy": full,
        "target_accuracy": target,
        "pool_size": len(truth),
        "eval_split": str(cfg.eval_data),
        "batch": args.batch,
        "budget": args.budget,
        "seeds": args.seeds,
        "strategies": summary,
        "curves": rounds.round(6).to_dict(orient="list"),
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    result["provenance"] = provenance()
    args.output.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
