"""Fine-tuned learning curves of the default run's own shape on the NLP development data sets:
the development set a forecaster of the shipped model is chosen on (issue 29, item 5).

The default run measures two curves on the labels it bought: the frozen-encoder proxy's
accuracy after every annotation round (`sample`, `reports/annotation_curve.csv`) and the
fine-tuned model's at a few shares of the budget (`learning_curve`,
`reports/forecast_points.csv`; params.yaml `learning_curve.fractions`), both on dev. It forecasts
the fine-tuned model at the full pool, 3766 / 500 = 7.5 times the budget. This benchmark makes
the same pair of curves, plus the truth at that horizon, on each development data set of
`benchmarks/results/nlp_curves_split.json` (the held-out ones never: TREC-6's truth is
`full_pool_truth.py`'s):

* pool and scoring split: `nlp_curves.pool_and_test` (75 / 25%, stratified, seeded); dev = a
  seeded sample of DEV_TEXTS texts of the 25%, where the model early-stops and is scored, as
  the pipeline's dev is;
* one seeded random order of the pool; budget = BUDGET labels (smaller than the default run's
  500, to fit the CPU: HORIZON x BUDGET labels is the truth's fine-tune);
* `ft`: the train stage's recipe (params.yaml `train`) on the first n of the order, at every
  share of the budget in `learning_curve.fractions` and at HORIZON x BUDGET (the truth);
* `proxy`: the sample stage's proxy (MiniLM embeddings, standardized, logistic regression with
  `sample.inverse_l2`) on the first n, at every tenth of the budget (the run's rounds).

Appends one row per (data set, model, n) to benchmarks/results/finetuned_curves.csv as it goes,
so an interrupted run resumes where it stopped.

`choose` then forecasts each truth from what the run would have (the fine-tuned points up to
the budget, the proxy curve up to the budget) by every way in `frugal.forecast.curves.SHAPES`, and
chooses by the rule written here before any forecast was computed: the lowest mean absolute
error over the development data sets; a way within TIE_PT of it with no extra input (`points`)
wins the tie. (Added when the first `choose` met it: a way that refuses a development curve,
as `linked` does when the two error rates do not fall together, would stop the run there, so
it cannot win; its error is averaged over the curves it fits.) It writes
benchmarks/results/finetuned_curves.json; the forecast stage fits the chosen way
(tests/unit/test_default_choices.py checks that they agree).

    python benchmarks/finetuned_curves.py run      # ~8 minutes per data set on 2 cores; alone
    python benchmarks/finetuned_curves.py choose   # seconds
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import nlp_curves  # benchmarks/ is sys.path[0]
import numpy as np
import pandas as pd
from stamp import provenance

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from frugal.config import load_params  # noqa: E402
from frugal.errors import DataError  # noqa: E402
from frugal.forecast.curves import SHAPES  # noqa: E402
from frugal.labels.sampling import fit_proxy, standardize  # noqa: E402
from frugal.model.training import classifier_accuracy, fine_tune  # noqa: E402

OUTPUT = ROOT / "benchmarks" / "results" / "finetuned_curves.csv"
CHOICE = ROOT / "benchmarks" / "results" / "finetuned_curves.json"
TIE_PT = 0.25
COLUMNS = ["dataset", "model", "n", "score", "steps", "seconds"]
BUDGET, HORIZON, DEV_TEXTS, SEED, PROXY_STEPS = 200, 7.5, 500, 13, 10


def run(args: argparse.Namespace) -> None:
    params = load_params(ROOT / "params.yaml")
    cfg = params.train.model_copy(update={"seed": SEED, "threads": args.threads})
    done = pd.read_csv(args.output) if args.output.is_file() else pd.DataFrame(columns=COLUMNS)
    finished = set(zip(done["dataset"], done["model"], done["n"].astype(int), strict=True))
    datasets = json.loads(nlp_curves.SPLIT.read_text())["development"]
    ft_sizes = sorted({max(1, round(f * BUDGET)) for f in params.learning_curve.fractions})
    ft_sizes.append(round(HORIZON * BUDGET))
    proxy_sizes = [round(BUDGET * (k + 1) / PROXY_STEPS) for k in range(PROXY_STEPS)]

    def record(row: dict) -> None:
        pd.DataFrame([row], columns=COLUMNS).to_csv(
            args.output, mode="a", header=not args.output.is_file(), index=False
        )
        print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)

    for name in datasets:
        pool, rest = nlp_curves.pool_and_test(nlp_curves.load_frame(name))
        dev = rest.sample(n=min(DEV_TEXTS, len(rest)), random_state=nlp_curves.SPLIT_SEED)
        order = pool.iloc[np.random.default_rng(SEED).permutation(len(pool))]
        if len(order) < ft_sizes[-1]:
            raise SystemExit(f"{name}: pool {len(order)} < {ft_sizes[-1]} labels")
        if any((name, "proxy", n) not in finished for n in proxy_sizes):
            vectors = nlp_curves.embeddings([*order["text"], *dev["text"]])  # cached
            train_x, dev_x = standardize(
                np.stack([vectors[t] for t in order["text"]]),
                np.stack([vectors[t] for t in dev["text"]]),
            )
            labels = order["label"].astype(str).to_numpy()
            for n in proxy_sizes:
                if (name, "proxy", n) in finished:
                    continue
                proxy = fit_proxy(train_x[:n], labels[:n], params.sample.inverse_l2)
                score = float((proxy.predict(dev_x) == dev["label"].astype(str).to_numpy()).mean())
                record({"dataset": name, "model": "proxy", "n": n, "score": round(score, 6),
                        "steps": 0, "seconds": 0.0})  # fmt: skip
        for n in ft_sizes:
            if (name, "ft", n) in finished:
                continue
            started = time.perf_counter()
            result = fine_tune(order.iloc[:n], dev, cfg)
            record(
                {
                    "dataset": name,
                    "model": "ft",
                    "n": n,
                    "score": round(classifier_accuracy(result.classifier, dev), 6),
                    "steps": result.steps,
                    "seconds": round(time.perf_counter() - started, 1),
                }
            )


def choose(args: argparse.Namespace) -> None:
    curves = pd.read_csv(args.output)
    per_dataset: dict[str, dict] = {}
    for name, rows in curves.groupby("dataset"):
        fine = rows[rows["model"] == "ft"].rename(columns={"n": "n_labels"})
        truth_n = int(fine["n_labels"].max())
        truth = float(fine.loc[fine["n_labels"] == truth_n, "score"].iloc[0])
        points = fine[fine["n_labels"] < truth_n][["n_labels", "score"]]
        proxy = rows[rows["model"] == "proxy"].rename(columns={"n": "n_labels"})
        entry = {"truth_n": truth_n, "truth": truth, "budget": int(points["n_labels"].max())}
        for shape, build in SHAPES.items():
            try:
                curve = build(points, proxy)
            except DataError as refusal:  # the run would stop here: no forecast
                entry[shape] = {"unfit": str(refusal)}
                continue
            score, low, high = (float(v[0]) for v in curve.predict([truth_n]))
            entry[shape] = {
                "forecast": round(score, 6),
                "low": round(low, 6),
                "high": round(high, 6),
                "error_pt": round(100 * (score - truth), 2),
                "width_pt": round(100 * (high - low), 2),
                "holds": bool(low <= truth <= high),
            }
        per_dataset[str(name)] = entry
        print(name, json.dumps(entry), flush=True)
    summary = {}
    for shape in SHAPES:
        fitted = [e[shape] for e in per_dataset.values() if "unfit" not in e[shape]]
        summary[shape] = {
            "fitted": len(fitted),
            "mae_pt": round(float(np.mean([abs(f["error_pt"]) for f in fitted])), 2),
            "mean_error_pt": round(float(np.mean([f["error_pt"] for f in fitted])), 2),
            "median_width_pt": round(float(np.median([f["width_pt"] for f in fitted])), 2),
            "holds": sum(f["holds"] for f in fitted),
        }
    # a way that cannot forecast every development curve (the run would stop) cannot win
    eligible = [s for s in SHAPES if summary[s]["fitted"] == len(per_dataset)]
    best = min(summary[s]["mae_pt"] for s in eligible)
    chosen = (
        "points"
        if summary["points"]["mae_pt"] <= best + TIE_PT
        else min(eligible, key=lambda s: summary[s]["mae_pt"])
    )
    results = {
        "rule": f"lowest mean |error| at the truth over the development data sets, among the "
        f"ways that forecast every one of them; `points` wins a tie within {TIE_PT} pt",
        "budget": BUDGET,
        "horizon": HORIZON,
        "datasets": per_dataset,
        "summary": summary,
        "chosen": chosen,
        "provenance": provenance(),
    }
    CHOICE.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    print(f"chosen: {chosen}; wrote {CHOICE}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["run", "choose"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    {"run": run, "choose": choose}[args.command](args)


if __name__ == "__main__":
    main()
