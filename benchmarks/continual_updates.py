"""Continual updates, measured (issue 19): every method, three seeds, several domain orders.

`run` trains each configuration × seed once with `frugal.continual.run_continual` (no MLflow)
and appends to two CSVs, so an interrupted run resumes where it stopped, and a method added
later runs alone on the units that lack it (step 0 retrained, not written again):

* `continual_updates.csv`: one row per method × step (`StepRecord.row()`): test and dev
  average accuracy over the classes seen so far (class-balanced: every class counts the
  same), mean forgetting, update seconds, training and memory examples;
* `continual_updates_predictions.csv`: after the last step, each method's correctness on
  every test row, for the bootstrap.

`table` prints, per configuration and method (mean ± std over seeds, after the last step):
test average accuracy, its gap to full retraining, forgetting, time as a share of full
retraining's, memory as a share of all the data seen, and a 95% bootstrap CI of the seed-mean
class-balanced accuracy (test rows resampled, the same rows for every seed); then which
method the pipeline's dev rule (`frugal.continual.choose_shipped`) ships per seed, and the
issue's goals for it (mean over seeds), per configuration and over both domain orders
(`both_orders`: default and hum_last, every seed). Results go to `continual_updates.json`.

Configurations (TREC; `--root` is a repository whose `dvc repro prepare` has run):
`default` (`continual.steps`: [DESC, ENTY, HUM, NUM], [LOC], [ABBR]), `hum_last` (a large
class arrives last: [DESC, ENTY, LOC, NUM], [ABBR], [HUM]) and `fine` (TREC's 50 fine labels,
new fine classes within known coarse ones: the second-largest fine class of each of the two
largest coarse classes arrives later, one per step — ENTY:cremat, then HUM:gr; all the
others, every coarse class among them, come first).

    python benchmarks/continual_updates.py run --root CLONE --configs default hum_last --seeds 13 14 15
    python benchmarks/continual_updates.py table --root CLONE

Run with nothing else busy on the CPU: times are goals.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stamp import provenance  # noqa: E402  (benchmarks/ is sys.path[0])

from frugal.config import load_params  # noqa: E402
from frugal.continual import (  # noqa: E402
    METHODS,
    choose_shipped,
    predict_labels,
    run_continual,
    summarize_methods,
)
from frugal.data import load_trec  # noqa: E402
from frugal.domains import domain_steps  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
STEPS, PREDICTIONS, OUTPUT = (
    "continual_updates.csv",
    "continual_updates_predictions.csv",
    "continual_updates.json",
)
CONFIGS: dict[str, Callable[[pd.DataFrame], list[list[str]] | str]] = {
    "default": lambda _pool: "auto",  # continual.steps' default
    "hum_last": lambda _pool: [["DESC", "ENTY", "LOC", "NUM"], ["ABBR"], ["HUM"]],
    "fine": lambda pool: fine_steps(pool),
}
ALL_METHODS = [m for m in METHODS if m != "ewc"]  # ewc: a fixed-λ baseline, out of budget
BOOTSTRAP = 2000
# Issue 19's goals for the shipped method (mean over seeds): (bound, "max" or "min"); the
# memory and time bounds are params.yaml's budgets (continual.memory_fraction, .max_time_share)
GOALS = {
    "memory_share": (None, "max"),  # exemplars kept after the last step ÷ all the data seen
    "gap_to_full_retrain_pt": (1.0, "max"),
    "minus_random_replay_pt": (0.0, "min"),  # test average accuracy above random replay's
    "time_vs_full_retrain": (None, "max"),
    "forgetting_pt": (3.0, "max"),
}


def fine_labels(frame: pd.DataFrame) -> pd.DataFrame:
    """The same rows with TREC's fine label (`DESC:manner`), which is also the domain, and the
    coarse class in `coarse`."""
    fine = load_trec("fine").drop_duplicates("text").set_index("text")["label"]
    out = frame.assign(coarse=frame["label"].astype(str), label=frame["text"].map(fine))
    missing = out["label"].isna().sum()
    if missing:
        raise SystemExit(f"{missing} rows have no fine TREC label: is --root a TREC run?")
    return out.assign(domain=out["label"])


def fine_steps(pool: pd.DataFrame) -> list[list[str]]:
    """New fine classes within known coarse ones: the second-largest fine class of each of the
    two largest coarse classes arrives later, one per step; every other fine class first."""
    late = []
    for coarse in pool["coarse"].value_counts().index[:2]:
        late.append(pool[pool["coarse"] == coarse]["label"].value_counts().index[1])
    first = sorted(set(pool["label"]) - set(late))
    return [first] + [[label] for label in late]


def run(args: argparse.Namespace) -> None:
    steps_csv, predictions_csv = args.results / STEPS, args.results / PREDICTIONS
    params = load_params(args.root / "params.yaml")
    cfg = params.continual
    splits = {
        name: pd.read_parquet(args.root / path)
        for name, path in (("pool", cfg.pool_data), ("dev", cfg.dev_data), ("test", cfg.test_data))
    }
    done = (  # (config, seed, method) already written: a unit runs only its missing methods
        set(map(tuple, pd.read_csv(steps_csv)[["config", "seed", "method"]].values.tolist()))
        if steps_csv.exists()
        else set()
    )
    for config in args.configs:
        data = {k: fine_labels(v) for k, v in splits.items()} if config == "fine" else splits
        steps = domain_steps(data["pool"], CONFIGS[config](data["pool"]))
        for seed in args.seeds:
            todo = [m for m in args.methods if (config, seed, m) not in done]
            if not todo:
                print(f"{config} seed {seed}: done, skipped")
                continue
            run_cfg = cfg.model_copy(update={"seed": seed, "methods": todo})
            last = len(steps) - 1
            finals: dict[str, np.ndarray] = {}
            test = data["test"]

            def keep(method: str, step: int, clf, test=test, finals=finals, last=last) -> None:
                if step == last:
                    finals[method] = predict_labels(clf, test["text"].tolist())

            records = run_continual(steps, data["dev"], test, run_cfg, on_model=keep, log=print)
            rows = pd.DataFrame([r.row() for r in records]).assign(config=config, seed=seed)
            if (config, seed, "initial") in done:  # step 0 is shared: written once per unit
                rows = rows[rows["method"] != "initial"]
            rows["memory_share"] = rows["memory_examples"] / len(data["pool"])
            predictions = pd.concat(
                pd.DataFrame(
                    {
                        "config": config,
                        "seed": seed,
                        "method": method,
                        "row": np.arange(len(test)),
                        "label": test["label"].astype(str).to_numpy(),
                        "correct": (labels == test["label"].astype(str).to_numpy()).astype(int),
                    }
                )
                for method, labels in finals.items()
            )
            # predictions first: a unit counts as done once its steps are written
            predictions.to_csv(
                predictions_csv, mode="a", header=not predictions_csv.exists(), index=False
            )
            rows.to_csv(steps_csv, mode="a", header=not steps_csv.exists(), index=False)
            print(f"{config} seed {seed}: written")


def bootstrap_ci(predictions: pd.DataFrame, seed: int = 0) -> tuple[float, float]:
    """95% CI of the seed-mean class-balanced accuracy: test rows resampled with replacement
    (the same draw for every seed of a method), class accuracies averaged, seeds averaged."""
    rng = np.random.default_rng(seed)
    table = predictions.pivot_table(index="row", columns="seed", values="correct")
    labels = predictions.drop_duplicates("row").set_index("row").loc[table.index, "label"]
    codes, names = pd.factorize(labels)
    correct = table.to_numpy()
    estimates = []
    for _ in range(BOOTSTRAP):
        draw = rng.integers(0, len(correct), len(correct))
        counts = np.bincount(codes[draw], minlength=len(names))
        present = counts > 0
        per_class = (
            np.stack(
                [
                    np.bincount(codes[draw], weights=correct[draw, s], minlength=len(names))
                    for s in range(correct.shape[1])
                ]
            )[:, present]
            / counts[present]
        )
        estimates.append(per_class.mean(1).mean())
    low, high = np.percentile(estimates, [2.5, 97.5])
    return float(low), float(high)


def table(args: argparse.Namespace) -> None:
    steps = pd.read_csv(args.results / STEPS)
    predictions = pd.read_csv(args.results / PREDICTIONS)
    budgets = load_params(args.root / "params.yaml").continual  # the budgets `run` ran under
    max_time_share = budgets.max_time_share
    bounds = {"memory_share": budgets.memory_fraction, "time_vs_full_retrain": max_time_share}
    out: dict[str, dict] = {}
    all_seeds, all_shipped = [], {}
    for config, runs in steps.groupby("config", sort=False):
        per_seed, shipped = [], {}
        for seed, seed_runs in runs.groupby("seed"):
            summary = summarize_methods(seed_runs)
            memory = seed_runs[seed_runs["step"] == seed_runs["step"].max()].set_index("method")
            for method, entry in summary.items():
                per_seed.append(
                    {"seed": seed, "method": method, **entry}
                    | {"memory_share": float(memory.loc[method, "memory_share"])}
                )
            shipped[int(seed)] = choose_shipped(summary, max_time_share)[0]
        frame = pd.DataFrame(per_seed)
        columns = [
            "final_average_accuracy",
            "final_dev_average_accuracy",
            "gap_to_full_retrain_pt",
            "final_mean_forgetting",
            "time_vs_full_retrain",
            "memory_share",
        ]
        stats = frame.groupby("method", sort=False)[columns].agg(["mean", "std"])
        methods = {}
        for method in sorted(stats.index, key=METHODS.index):  # the recipes' order
            low, high = bootstrap_ci(
                predictions[(predictions["config"] == config) & (predictions["method"] == method)]
            )
            methods[method] = {
                f"{c}_{s}": round(float(stats.loc[method, (c, s)]), 5)
                for c in columns
                for s in ("mean", "std")
            } | {
                "test_ci95": [round(low, 5), round(high, 5)],
                "seeds": int((frame["method"] == method).sum()),
            }
        out[config] = {
            "methods": methods,
            "shipped_per_seed": shipped,
            "goals": goals(frame, shipped, bounds),
        }
        all_seeds.append(frame.assign(config=config))
        all_shipped |= {(config, s): m for s, m in shipped.items()}
        print(f"\n## {config}: mean ± std over seeds {sorted(shipped)}; shipped per seed {shipped}")
        print(
            "| method | test avg acc % | 95% CI | gap to full retrain pt | forgetting pt | "
            "time vs full | memory | dev avg acc % |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for method, m in methods.items():
            print(
                f"| {method} | {100 * m['final_average_accuracy_mean']:.2f} ± "
                f"{100 * np.nan_to_num(m['final_average_accuracy_std']):.2f} | "
                f"{100 * m['test_ci95'][0]:.1f}–{100 * m['test_ci95'][1]:.1f} | "
                f"{m['gap_to_full_retrain_pt_mean']:+.2f} ± "
                f"{np.nan_to_num(m['gap_to_full_retrain_pt_std']):.2f} | "
                f"{100 * m['final_mean_forgetting_mean']:.2f} | "
                f"{m['time_vs_full_retrain_mean']:.2f} | {m['memory_share_mean']:.3f} | "
                f"{100 * m['final_dev_average_accuracy_mean']:.2f} |"
            )
    orders = [c for c in ("default", "hum_last") if c in out]
    if len(orders) == 2:  # the verdict: both domain orders, every seed
        frame = pd.concat(all_seeds)
        frame = frame[frame["config"].isin(orders)]
        frame["seed"] = list(zip(frame["config"], frame["seed"], strict=True))
        out["both_orders"] = {
            "goals": goals(frame, {k: all_shipped[k] for k in set(frame["seed"])}, bounds),
            "choice": dev_rule_choice(out, orders),
        }
    print("\n## goals for the shipped method (mean over seeds)")
    print("| configuration | " + " | ".join(GOALS) + " |")
    print("|---|" + "---|" * len(GOALS))
    for config, entry in out.items():
        cells = (
            f"{g['value']:.3f} {'met' if g['met'] else 'missed'}" for g in entry["goals"].values()
        )
        print(f"| {config} | " + " | ".join(cells) + " |")
    out["provenance"] = provenance()
    (args.results / OUTPUT).write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.results / OUTPUT}")


def dev_rule_choice(out: dict, orders: list[str]) -> str:
    """The method the default run ships (params.yaml continual.methods): the one the dev rule
    shipped most often over both domain orders' seeds; a tie goes to the higher mean dev
    accuracy over the orders. Read from the results alone: test plays no part."""
    shipped = [m for config in orders for m in out[config]["shipped_per_seed"].values()]

    def dev(method: str) -> float:
        return float(
            np.mean([out[c]["methods"][method]["final_dev_average_accuracy_mean"] for c in orders])
        )

    return max(dict.fromkeys(shipped), key=lambda m: (shipped.count(m), dev(m)))


def goals(frame: pd.DataFrame, shipped: dict, bounds: dict[str, float]) -> dict[str, dict]:
    """Issue 19's goals, for the method the dev rule shipped with each seed (`shipped`: seed
    -> method), averaged over seeds: its figures, and its accuracy minus random replay's.
    `bounds` fills the goals GOALS leaves to params.yaml's budgets."""
    rows = frame.set_index(["seed", "method"])
    picked = rows.loc[list(shipped.items())]
    random = rows.xs("random_replay", level="method").loc[list(shipped)]
    values = {
        "memory_share": picked["memory_share"].mean(),
        "gap_to_full_retrain_pt": picked["gap_to_full_retrain_pt"].mean(),
        "minus_random_replay_pt": 100
        * (
            picked["final_average_accuracy"].to_numpy()
            - random["final_average_accuracy"].to_numpy()
        ).mean(),
        "time_vs_full_retrain": picked["time_vs_full_retrain"].mean(),
        "forgetting_pt": 100 * picked["final_mean_forgetting"].mean(),
    }
    out = {}
    for name, (bound, kind) in GOALS.items():
        bound = bounds.get(name, bound)
        met = values[name] <= bound if kind == "max" else values[name] >= bound
        out[name] = {"value": round(float(values[name]), 4), "bound": bound, "met": bool(met)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["run", "table"])
    parser.add_argument(
        "--root", type=Path, default=ROOT, help="its params.yaml and (for run) its prepared splits"
    )
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=["default"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[13, 14, 15])
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=ALL_METHODS)
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the CSVs and JSON go")
    args = parser.parse_args()
    args.results.mkdir(parents=True, exist_ok=True)
    run(args) if args.command == "run" else table(args)


if __name__ == "__main__":
    main()
