"""Learning-curve forecasts on the peer curves of arXiv 2307.00374 and on our own TREC curve.

For each data set: fit on the points at 1-10% of the training data, forecast the mean score
at each of 55-100%, and report the mean absolute error in accuracy points, for every curve
family alone and for the ensemble `frugal.forecast.curves.fit_curve` builds, plus how often the mean
score falls inside the ensemble's 90% interval. Prints a table and writes JSON.

Our curve is the fine-tuned model's test accuracy on nested random subsets of the TREC-6 pool
(`benchmarks/trec_learning_curve.py`, params.yaml's training recipe), skipped if not measured.

    python benchmarks/forecast_curves.py
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

from frugal.forecast.curve_families import FAMILY_NAMES  # noqa: E402
from frugal.forecast.curves import fit_curve  # noqa: E402

DEFAULT_DATA = Path("/work/shared/benchmarks/peer_learning_curves.csv")
DEFAULT_OWN = ROOT / "benchmarks" / "results" / "trec_learning_curve.csv"
OWN_NAME = "TREC6_ours"
DEFAULT_OUTPUT = ROOT / "benchmarks" / "results" / "forecast_curves.json"
FIT_PCT = (1, 10)
FORECAST_PCT = (55, 100)
# MAE in accuracy points, from /work/shared/benchmarks/README.md.
PAPER_ENSEMBLE_MAE = {"IMDB": 0.96, "SST2": 1.85, "AG_NEWS": 2.61, "DBpedia": 3.81}
BEST_CONSTANT_MAE = {"IMDB": 0.56, "SST2": 0.94, "AG_NEWS": 0.44, "DBpedia": 0.37}


def evaluate_dataset(curve: pd.DataFrame, seed: int, n_bootstrap: int) -> dict[str, object]:
    """MAE (accuracy points) per family and for the ensemble, and 90% interval coverage."""
    fit_points = curve[curve["pct"].between(*FIT_PCT)]
    truth = curve[curve["pct"].between(*FORECAST_PCT)].groupby("n_labels")["score"].mean()
    n_labels = truth.index.to_numpy(dtype=float)
    actual = truth.to_numpy()

    def mae(predicted: np.ndarray) -> float:
        return float(100.0 * np.mean(np.abs(predicted - actual)))

    per_family: dict[str, float | None] = {}
    for family in FAMILY_NAMES:
        try:
            alone = fit_curve(fit_points, families=[family], seed=seed, n_bootstrap=0)
        except Exception:  # a family that cannot fit this curve at all
            per_family[family] = None
            continue
        per_family[family] = mae(alone.predict(n_labels)[0])

    started = time.perf_counter()
    forecast = fit_curve(fit_points, seed=seed, n_bootstrap=n_bootstrap)
    fit_seconds = time.perf_counter() - started
    score, low, high = forecast.predict(n_labels)
    return {
        "n_fit_points": len(fit_points),
        "n_forecast_points": len(actual),
        "families": per_family,
        "ensemble": mae(score),
        "ensemble_members": {m.family: round(m.weight, 3) for m in forecast.members},
        "coverage_90": float(np.mean((actual >= low) & (actual <= high))),
        "interval_width_pt": float(100.0 * np.mean(high - low)),
        "fit_seconds": fit_seconds,
        "paper_ensemble": PAPER_ENSEMBLE_MAE.get(str(curve["dataset"].iloc[0])),
        "best_constant": BEST_CONSTANT_MAE.get(str(curve["dataset"].iloc[0])),
    }


def format_table(results: dict[str, dict[str, object]]) -> str:
    datasets = list(results)
    rows = [["method", *datasets]]
    for family in FAMILY_NAMES:
        values = [results[d]["families"][family] for d in datasets]  # type: ignore[index]
        rows.append([family, *("fail" if v is None else f"{v:.2f}" for v in values)])
    rows.append(["ENSEMBLE (frugal)", *(f"{results[d]['ensemble']:.2f}" for d in datasets)])
    rows.append(["paper ensemble", *(_optional(results[d]["paper_ensemble"]) for d in datasets)])
    rows.append(["best constant", *(_optional(results[d]["best_constant"]) for d in datasets)])
    rows.append(["90% coverage", *(f"{results[d]['coverage_90']:.0%}" for d in datasets)])
    rows.append(["interval width", *(f"{results[d]['interval_width_pt']:.1f}" for d in datasets)])
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            str(c).rjust(w) if i else str(c).ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    lines.insert(1, "-" * len(lines[0]))
    return "MAE in accuracy points (fit on 1-10%, forecast 55-100%)\n" + "\n".join(lines)


def _optional(value: object) -> str:
    return "-" if value is None else f"{value:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--own", type=Path, default=DEFAULT_OWN, help="our measured curve")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-bootstrap", type=int, default=200)
    args = parser.parse_args()

    curves = pd.read_csv(args.data)
    if args.own.is_file():
        own = pd.read_csv(args.own)
        own = own.assign(dataset=OWN_NAME, pct=(100 * own["fraction"]).round().astype(int))
        curves = pd.concat([curves, own[["dataset", "pct", "n_labels", "score"]]])
    results = {
        str(name): evaluate_dataset(curve, args.seed, args.n_bootstrap)
        for name, curve in curves.groupby("dataset", sort=False)
    }
    print(format_table(results))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    results["provenance"] = provenance()
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
