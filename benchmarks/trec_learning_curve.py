"""The real learning curve of the fine-tuned model on the default data (TREC-6).

Fine-tunes with the train stage's recipe (params.yaml `train`) on nested random subsets of the
pool (seeded permutation; each subset is a prefix of the next) and measures test accuracy.
Points at 1-10% and 55-100% of the pool are what `forecast_trec_curve.py` needs: fit on the
first, forecast the second. Appends one row per (seed, fraction) to a CSV as it goes, so an
interrupted run resumes where it stopped.

    python benchmarks/trec_learning_curve.py [--seeds 13 14] [--threads 2]

Needs data/splits (run `dvc repro prepare` first). About 50 minutes per seed on 2 cores.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from frugal.config import load_params  # noqa: E402
from frugal.model.modeling import predict_proba  # noqa: E402
from frugal.model.training import fine_tune  # noqa: E402

DEFAULT_OUTPUT = ROOT / "benchmarks" / "results" / "trec_learning_curve.csv"
FRACTIONS = (0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.10, 0.55, 0.70, 0.85, 1.0)
COLUMNS = ["seed", "fraction", "n_labels", "score", "dev_accuracy", "steps", "train_seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[13])
    parser.add_argument("--fractions", type=float, nargs="+", default=list(FRACTIONS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args()

    params = load_params(ROOT / "params.yaml")
    splits = params.prepare.output_dir
    pool = pd.read_parquet(ROOT / splits / "pool.parquet")
    dev = pd.read_parquet(ROOT / splits / "dev.parquet")
    test = pd.read_parquet(ROOT / splits / "test.parquet")

    done = pd.read_csv(args.output) if args.output.is_file() else pd.DataFrame(columns=COLUMNS)
    finished = {
        (int(s), round(float(f), 4)) for s, f in zip(done["seed"], done["fraction"], strict=True)
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    for seed in args.seeds:
        order = np.random.default_rng(seed).permutation(len(pool))
        cfg = params.train.model_copy(update={"seed": seed, "threads": args.threads})
        for fraction in sorted(args.fractions):
            if (seed, round(fraction, 4)) in finished:
                continue
            n = max(1, round(fraction * len(pool)))
            started = time.perf_counter()
            result = fine_tune(pool.iloc[order[:n]], dev, cfg)
            proba = predict_proba(result.classifier, test["text"].tolist())
            predicted = np.array(result.classifier.labels)[proba.argmax(1)]
            score = float((predicted == test["label"].astype(str).to_numpy()).mean())
            row = {
                "seed": seed,
                "fraction": fraction,
                "n_labels": n,
                "score": round(score, 6),
                "dev_accuracy": round(result.best_dev_accuracy, 6),
                "steps": result.steps,
                "train_seconds": round(time.perf_counter() - started, 1),
            }
            pd.DataFrame([row], columns=COLUMNS).to_csv(
                args.output, mode="a", header=not args.output.is_file(), index=False
            )
            print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)


if __name__ == "__main__":
    main()
