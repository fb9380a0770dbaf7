"""What the default run's full-pool forecast should have said: fine-tune on every pool label.

The `forecast` stage forecasts the fine-tuned model's accuracy if the whole pool were labelled,
from the points the `learning_curve` stage measures on a share of it (scored on dev:
params.yaml `learning_curve.eval_data`). This benchmark buys the truth a team never has: it
fine-tunes with the train stage's recipe (params.yaml `train`) on the whole pool with its
gold labels, and scores the model on dev (the same split and the same early-stopping optimism
as the points; the forecast's target) and on test (reported only). Then it reads the committed
`reports/forecast.json` and states the forecast's error and whether its band holds.

    python benchmarks/full_pool_truth.py [--seeds 13] [--threads 2]
    python benchmarks/full_pool_truth.py --reuse-truth   # a new forecast, the same truth

`--reuse-truth` keeps the fine-tunes already in the results file (the truth depends on the
data and the train recipe, not on the forecaster) and compares the current forecast with them.

Needs data/splits and reports/forecast.json (`dvc repro forecast`). About 5 minutes per seed
on 2 cores; run it alone. Writes benchmarks/results/full_pool_truth.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stamp import provenance  # noqa: E402  (benchmarks/ is sys.path[0])

from frugal.config import load_params  # noqa: E402
from frugal.model.training import classifier_accuracy, fine_tune  # noqa: E402

OUTPUT = ROOT / "benchmarks" / "results" / "full_pool_truth.json"
GOAL_ERROR_PT, GOAL_WIDTH_PT = 1.5, 8.0  # issue 29


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[13])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--forecast", type=Path, default=None, help="default: params' forecast")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--reuse-truth", action="store_true", help="keep the stored fine-tunes")
    args = parser.parse_args()

    params = load_params(ROOT / "params.yaml")
    pool = pd.read_parquet(ROOT / params.forecast.pool_data)
    early_stop = pd.read_parquet(ROOT / params.train.dev_data)  # as the train stage does
    dev = pd.read_parquet(ROOT / params.learning_curve.eval_data)  # where the points are scored
    test = pd.read_parquet(ROOT / params.evaluate.test_data)
    forecast_path = args.forecast or ROOT / params.forecast.output
    forecast = json.loads(forecast_path.read_text())
    full = next(f for f in forecast["forecasts"] if f["n_labels"] == len(pool))

    stored = json.loads(args.output.read_text()) if args.reuse_truth else {}
    runs = stored.get("runs", [])
    truth_provenance = stored.get("truth_provenance", stored.get("provenance")) or provenance()
    for seed in [] if args.reuse_truth else args.seeds:
        started = time.perf_counter()
        cfg = params.train.model_copy(update={"seed": seed, "threads": args.threads})
        result = fine_tune(pool, early_stop, cfg)
        runs.append(
            {
                "seed": seed,
                "dev": round(classifier_accuracy(result.classifier, dev), 6),
                "test": round(classifier_accuracy(result.classifier, test), 6),
                "steps": result.steps,
                "seconds": round(time.perf_counter() - started, 1),
            }
        )
        print(" ".join(f"{k}={v}" for k, v in runs[-1].items()), flush=True)

    truth = float(np.mean([r["dev"] for r in runs]))
    error = 100 * (full["score"] - truth)
    width = 100 * (full["high"] - full["low"])
    holds = full["low"] <= truth <= full["high"]
    results = {
        "pool_size": len(pool),
        "runs": runs,
        "truth_dev": round(truth, 6),
        "truth_test": round(float(np.mean([r["test"] for r in runs])), 6),
        "forecast_file": str(forecast_path.relative_to(ROOT)),
        "forecast": full,
        "method": forecast.get("method"),
        "error_pt": round(error, 2),
        "band_width_pt": round(width, 2),
        "band_holds": bool(holds),
        "goals": {
            f"|error| <= {GOAL_ERROR_PT} pt": bool(abs(error) <= GOAL_ERROR_PT),
            f"band width <= {GOAL_WIDTH_PT} pt": bool(width <= GOAL_WIDTH_PT),
        },
        "truth_provenance": truth_provenance,  # where the fine-tunes ran
        "provenance": provenance(),
    }
    print(
        f"full pool ({len(pool)} labels): measured dev {100 * truth:.2f}% "
        f"(test {100 * results['truth_test']:.2f}%); forecast {100 * full['score']:.2f}% "
        f"[{100 * full['low']:.1f}, {100 * full['high']:.1f}]: error {error:+.2f} pt, band "
        f"{width:.1f} pt wide, {'holds' if holds else 'misses'}"
    )
    args.output.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
