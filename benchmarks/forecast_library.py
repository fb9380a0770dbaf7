"""Learning-curve forecasters on a library of real curves, chosen on development halves, scored
on held-out ones.

Curves (score = accuracy, a fraction; one curve = one learner on one data set), in two groups
that are chosen on and reported apart:
  * `lcdb`: LCDB 0.1.0 (Mohr et al. 2022): `lcdb/database-accuracy.csv` from the PyPI source
    archive `lcdb-0.1.0.tar.gz`, read as a file (never installed, not a runtime dependency):
    sample-wise curves of ~20 classical learners on ~200 OpenML tabular data sets, averaged
    over its seeds per anchor. At most `--learners-per-dataset` learners per data set (seeded).
  * `nlp`: the product's own kind of curve on eight packaged text data sets
    (`benchmarks/nlp_curves.py`: the frozen-encoder proxy the `sample` stage trains,
    `benchmarks/results/nlp_curves.csv`), three seeds each.
Scored only, never in a choice: the four published curves of arXiv 2307.00374
(`../shared/benchmarks/peer_learning_curves.csv`) and our fine-tuned TREC curve
(`benchmarks/results/trec_learning_curve.csv`).

Protocol, written down before any figure was read:
  * Splits by data set, made once and committed before any fit: LCDB in
    `benchmarks/results/forecast_library_split.json` (seeded permutation of the data-set names),
    NLP in `benchmarks/results/nlp_curves_split.json` (`nlp_curves.py draw`).
  * Task (the paper's): fit on the points with n <= 10% of the curve's largest n (at least 3
    distinct n), forecast every point at 55-100% of it. Error = mean |forecast - truth| over
    those points, in accuracy points, per curve. A data set counts once: its curves' errors
    are averaged, so a data set with 20 learners weighs no more than one with 2.
  * Methods, every family fitted the same way (`frugal.forecast.conformal.fit_bases`: weighted least
    squares, several starts, bounds): `last` (the score at the largest fitted n), `ipl` (inverse
    power law), `paper` (mean of exponential, inverse power and pow4: the paper's ensemble),
    `mean` / `median` of the families, every family alone, and every
    `shrink:<base>:<alpha>` = last + alpha * (base - last), the target correction in the spirit
    of Mahmood et al. (CVPR 2022: fitted curves over-shoot, so correct them by a factor learned
    on curves with known outcome).
  * Chosen on the development halves: the method with the lowest mean of the two groups'
    median errors (each group weighs half, however many data sets it has; mean as tie-break).
    Its 90% band is calibrated by split-conformal prediction per horizon ratio (forecast n /
    largest fitted n, log2 bins) from fits at the 5, 10, 20 and 40% cut-offs, on each group's
    development half; each bin takes the wider of the two groups' offsets, so the band is meant
    to hold on both kinds of curve. Written to `frugal/forecast/calibration.json`, which
    `frugal.forecast.curves` reads.
  * Reported on the held-out halves only, per group: median, mean and 90th percentile of the
    error per method, and the coverage and median width of the chosen method's band; then on
    the published curves and our own.

    python benchmarks/forecast_library.py [--lcdb lcdb-0.1.0.tar.gz] [--learners-per-dataset 3]

Without --lcdb it uses (and on first use fills) a cache: `pip download lcdb==0.1.0 --no-deps`.
Prints tables and writes benchmarks/results/forecast_library.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stamp import provenance  # noqa: E402  (benchmarks/ is sys.path[0])

from frugal.forecast.conformal import (  # noqa: E402
    CALIBRATION_PATH,
    HORIZON_BINS,
    conformal_quantiles,
    fit_bases,
    horizon_bin,
    load_calibration,
)
from frugal.forecast.curve_families import FAMILY_NAMES  # noqa: E402
from frugal.forecast.curves import fit_curve, validate_points  # noqa: E402

LCDB_PIN = "lcdb==0.1.0"
LCDB_MEMBER = "lcdb-0.1.0/lcdb/database-accuracy.csv"
CACHE = Path.home() / ".cache" / "frugal"
PEER = Path("/work/shared/benchmarks/peer_learning_curves.csv")
OWN = ROOT / "benchmarks" / "results" / "trec_learning_curve.csv"
NLP = ROOT / "benchmarks" / "results" / "nlp_curves.csv"
NLP_SPLIT = ROOT / "benchmarks" / "results" / "nlp_curves_split.json"
SPLIT = ROOT / "benchmarks" / "results" / "forecast_library_split.json"
OUTPUT = ROOT / "benchmarks" / "results" / "forecast_library.json"
FIT_SHARE, TARGET_SHARES = 0.10, (0.55, 1.0)
CALIBRATION_CUTS = (0.05, 0.10, 0.20, 0.40)
ALPHAS = (0.5, 0.75, 1.25)  # < 1: toward the last point; > 1: away from it
# `select` (the old rule) costs ~7x the others per curve (rolling-origin refits of 8 families):
# it is scored on a seeded sample of held-out data sets only, as the "before" reference.
BASES = ("ipl", "paper", "mean", "median", *(f for f in FAMILY_NAMES if f != "inverse_power_law"))
METHODS = ("last", *BASES) + tuple(f"shrink:{base}:{alpha}" for base in BASES for alpha in ALPHAS)
SELECT_DATASETS = 40
WORKERS = 2
NOMINAL = 0.90
SPLIT_SEED = 2026


# ---------------------------------------------------------------- curves
def lcdb_archive(path: Path | None) -> Path:
    if path is not None:
        return path
    found = sorted(CACHE.glob("lcdb-0.1.0*.tar.gz"))
    if not found:
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", LCDB_PIN, "--no-deps",
             "--no-binary", ":all:", "-d", str(CACHE)],
            check=True,
        )  # fmt: skip
        found = sorted(CACHE.glob("lcdb-0.1.0*.tar.gz"))
    return found[0]


def lcdb_table(archive: Path) -> pd.DataFrame:
    """Every LCDB curve: openmlid, learner, size_train, score_test (mean over its seeds)."""
    with tarfile.open(archive) as tar:
        raw = pd.read_csv(
            tar.extractfile(LCDB_MEMBER),
            usecols=["openmlid", "learner", "size_train", "score_test"],
        )
    raw = raw.dropna()
    return raw.groupby(["openmlid", "learner", "size_train"], as_index=False)["score_test"].mean()


def lcdb_curves(table: pd.DataFrame, learners_per_dataset: int, seed: int) -> pd.DataFrame:
    """Columns: dataset, curve, n, score (mean test accuracy over LCDB's seeds): at most
    `learners_per_dataset` seeded learners per data set of `lcdb_table`'s `table`."""
    curves = table
    rng = np.random.default_rng(seed)
    keep = []
    for openmlid, learners in curves.groupby("openmlid")["learner"].unique().items():
        chosen = sorted(learners)
        if len(chosen) > learners_per_dataset:
            chosen = sorted(rng.choice(chosen, size=learners_per_dataset, replace=False))
        keep += [(openmlid, learner) for learner in chosen]
    keep_index = pd.MultiIndex.from_tuples(keep, names=["openmlid", "learner"])
    curves = curves.set_index(["openmlid", "learner"]).loc[keep_index].reset_index()
    dataset = "openml-" + curves["openmlid"].astype(str)
    return _curves(dataset, curves["learner"], curves["size_train"], curves["score_test"])


def peer_curves(path: Path) -> pd.DataFrame:
    peer = pd.read_csv(path)
    return _curves(peer["dataset"], "transformer", peer["n_labels"], peer["score"])


def nlp_curves(path: Path) -> pd.DataFrame:
    nlp = pd.read_csv(path)
    return _curves(nlp["dataset"], nlp["curve"], nlp["n"], nlp["score"])


def own_curves(path: Path) -> pd.DataFrame:
    own = pd.read_csv(path)
    name = "minilm_seed" + own["seed"].astype(str)
    return _curves("TREC6_finetuned", name, own["n_labels"], own["score"])


def _curves(dataset, curve, n: pd.Series, score: pd.Series) -> pd.DataFrame:
    """The library's one table shape: dataset, curve, n, score."""
    frame = pd.DataFrame({"n": n.astype(float), "score": score.astype(float)})
    return frame.assign(dataset=dataset, curve=curve)[["dataset", "curve", "n", "score"]]


def data_set_split(datasets: list[str], seed: int) -> dict[str, list[str]]:
    """Half the data sets for development, half held out: by a seeded permutation, once."""
    if SPLIT.is_file():
        split = json.loads(SPLIT.read_text())
        missing = sorted(set(datasets) - set(split["development"]) - set(split["held_out"]))
        if missing:
            raise SystemExit(f"{SPLIT}: data sets not in the stored split: {missing[:5]}")
        return split
    order = sorted(datasets, key=lambda d: hashlib.sha256(f"{seed}:{d}".encode()).hexdigest())
    half = len(order) // 2
    split = {
        "rule": f"sha256('{seed}:<data set>') order, first half development, rest held out",
        "development": sorted(order[:half]),
        "held_out": sorted(order[half:]),
    }
    SPLIT.parent.mkdir(parents=True, exist_ok=True)
    split["provenance"] = provenance()
    SPLIT.write_text(json.dumps(split, indent=1) + "\n")
    return split


# ---------------------------------------------------------------- methods
def _mean_points(curve: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    means = curve.groupby("n")["score"].mean()
    return means.index.to_numpy(dtype=float), means.to_numpy()


def base_forecasts(
    n_fit: np.ndarray, y_fit: np.ndarray, n_at: np.ndarray
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Point forecasts of every method at n_at, and the scaled band's unit there, from one
    `fit_bases` per curve: exactly what `fit_curve` computes for the chosen method (a base that
    cannot be fitted falls back to `last`, as it does there)."""
    bases = fit_bases(validate_points(pd.DataFrame({"n_labels": n_fit, "score": y_fit})))
    return {method: bases.point(method, n_at) for method in METHODS}, bases.scale(n_at)


def cut(
    curve: pd.DataFrame, share: float, far: bool | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """(n_fit, y_fit, n_target, y_target) for a fit at n <= share * max n, targets at 55-100%
    (`far`; by default for the 10% task) or every later point (calibration cuts); None if too
    few points."""
    n, y = _mean_points(curve)
    top = n.max()
    fit = n <= share * top
    if np.unique(n[fit]).size < 3:
        return None
    far = share == FIT_SHARE if far is None else far
    target = (n >= TARGET_SHARES[0] * top) if far else ~fit
    if not target.any():
        return None
    return n[fit], y[fit], n[target], y[target]


def _score_one(job: tuple) -> list[tuple]:
    (dataset, name), curve, share, far = job
    parts = cut(curve, share, far)
    if parts is None:
        return []
    n_fit, y_fit, n_at, y_at = parts
    rows = []
    forecasts, scale = base_forecasts(n_fit, y_fit, n_at)
    for method, forecast in forecasts.items():
        for n, truth, value, unit in zip(n_at, y_at, forecast, scale, strict=True):
            rows.append((dataset, name, method, n, n / n_fit.max(), truth, float(value), unit))
    return rows


def score_curves(
    curves: pd.DataFrame, share: float, log: Callable[[str], None], far: bool | None = None
) -> pd.DataFrame:
    """One row per (curve, target point, method): dataset, curve, n, ratio, truth, forecast
    (targets as `cut`'s `far`). Curves are fitted on WORKERS processes (one CPU-heavy job: the
    whole machine)."""
    jobs = [(key, curve, share, far) for key, curve in curves.groupby(["dataset", "curve"])]
    started = time.perf_counter()
    rows: list[tuple] = []
    with ProcessPoolExecutor(WORKERS) as pool:
        for done, result in enumerate(pool.map(_score_one, jobs, chunksize=8), start=1):
            rows += result
            if done % 250 == 0:
                log(f"  {done}/{len(jobs)} curves ({time.perf_counter() - started:.0f} s)")
    log(f"  {len(jobs)} curves at the {share:.0%} cut in {time.perf_counter() - started:.0f} s")
    columns = ["dataset", "curve", "method", "n", "ratio", "truth", "forecast", "scale"]
    return pd.DataFrame(rows, columns=columns)


def per_dataset_error(scored: pd.DataFrame) -> pd.DataFrame:
    """MAE in points per (dataset, method): per curve, then averaged over a data set's curves."""
    scored = scored.assign(error=100 * (scored["forecast"] - scored["truth"]).abs())
    per_curve = scored.groupby(["dataset", "curve", "method"])["error"].mean().unstack("method")
    return per_curve.groupby("dataset").mean()


def summarise(errors: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "median": errors.median(),
            "mean": errors.mean(),
            "p90": errors.quantile(0.9),
        }
    ).sort_values(["median", "mean"])


# ---------------------------------------------------------------- main
def library_groups(args: argparse.Namespace) -> dict[str, dict[str, pd.DataFrame]]:
    """{group: {"development": curves, "held_out": curves}} from each group's stored split."""
    lcdb = lcdb_curves(lcdb_table(lcdb_archive(args.lcdb)), args.learners_per_dataset, SPLIT_SEED)
    nlp = nlp_curves(args.nlp)
    splits = {
        "lcdb": data_set_split(sorted(lcdb["dataset"].unique()), SPLIT_SEED),
        "nlp": json.loads(NLP_SPLIT.read_text()),
    }
    groups = {}
    for name, curves in (("lcdb", lcdb), ("nlp", nlp)):
        split = splits[name]
        unknown = sorted(
            set(curves["dataset"]) - set(split["development"]) - set(split["held_out"])
        )
        if unknown:
            raise SystemExit(f"{name}: data sets in no stored split: {unknown[:5]}")
        groups[name] = {half: curves[curves["dataset"].isin(split[half])]
                        for half in ("development", "held_out")}  # fmt: skip
    return groups


def calibrate(dev: dict[str, pd.DataFrame], dev_scored: dict[str, pd.DataFrame], chosen: str,
              log: Callable[[str], None]) -> dict:  # fmt: skip
    """The chosen method's conformal band from each group's development residuals at every
    cut-off: per bin the wider of the groups' offsets; scaled or plain, whichever is narrower
    on the development fits at the 10% cut."""
    per_group: dict[bool, list[list]] = {False: [], True: []}
    for group, curves in dev.items():
        parts = [dev_scored[group][dev_scored[group]["method"] == chosen]]
        for share in CALIBRATION_CUTS:
            if share != FIT_SHARE:
                extra = score_curves(curves, share, log)
                parts.append(extra[extra["method"] == chosen])
        calib = pd.concat(parts)
        residual = (calib["truth"] - calib["forecast"]).to_numpy()
        for scaled in (False, True):
            unit = calib["scale"].to_numpy() if scaled else 1.0
            per_group[scaled].append(
                conformal_quantiles(calib["ratio"].to_numpy(), residual / unit, NOMINAL)
            )
    kinds = {
        scaled: [
            (min(q[0] for q in bins), max(q[1] for q in bins), sum(q[2] for q in bins))
            for bins in zip(*groups, strict=True)
        ]
        for scaled, groups in per_group.items()
    }
    dev_chosen = pd.concat(d[d["method"] == chosen] for d in dev_scored.values())
    widths = {
        scaled: float(np.median(np.subtract(*band_of(dev_chosen, q, scaled)[::-1])))
        for scaled, q in kinds.items()
    }
    scaled = widths[True] < widths[False]
    log(f"dev median width: plain {100 * widths[False]:.1f} pt, scaled {100 * widths[True]:.1f} pt")
    return {
        "method": chosen,
        "nominal": NOMINAL,
        "chosen_on": "development halves of LCDB (forecast_library_split.json) and of the NLP "
        "proxy curves (nlp_curves_split.json); the published curves are in no choice",
        "task": "fit n <= 10% of the largest n, forecast 55-100%; lowest mean of the two groups' "
        "median MAE per data set",
        "conformal": "split-conformal on signed residuals truth - forecast, per horizon bin and "
        "group, each bin the wider of the groups' offsets"
        + (", in units of the families' disagreement + 1 pt (narrower on dev)" if scaled else ""),
        "scaled": scaled,
        "dev_median_width_pt": {
            "plain": round(100 * widths[False], 2),
            "scaled": round(100 * widths[True], 2),
        },  # fmt: skip
        "cuts": list(CALIBRATION_CUTS),
        "bins": [
            {
                "ratio_low": lo,
                "ratio_high": hi if math.isfinite(hi) else None,  # JSON: no inf
                "low": q[0],
                "high": q[1],
                "n": q[2],
            }
            for (lo, hi), q in zip(HORIZON_BINS, kinds[scaled], strict=True)
        ],
    }


def band_figures(scored: pd.DataFrame, chosen: str) -> dict:
    """Coverage and median width of the chosen method's calibrated band on scored curves."""
    mine = scored[scored["method"] == chosen]
    low, high = band(chosen, mine)
    return {
        "coverage_90": round(float(((mine["truth"] >= low) & (mine["truth"] <= high)).mean()), 4),
        "median_width_pt": round(float(100 * np.median(high - low)), 2),
        "points": len(mine),
    }


def held_out_figures(scored: pd.DataFrame, chosen: str) -> dict:
    """Per-method MAE table and the chosen method's band on scored curves (10% task)."""
    return {
        "datasets": int(scored["dataset"].nunique()),
        "curves": int(scored.groupby(["dataset", "curve"]).ngroups),
        "mae": summarise(per_dataset_error(scored)).round(3).to_dict(orient="index"),
        **band_figures(scored, chosen),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lcdb", type=Path, default=None, help="lcdb-0.1.0.tar.gz")
    parser.add_argument("--nlp", type=Path, default=NLP)
    parser.add_argument("--peer", type=Path, default=PEER)
    parser.add_argument("--own", type=Path, default=OWN)
    parser.add_argument("--learners-per-dataset", type=int, default=3)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    log = lambda message: print(message, flush=True)  # noqa: E731

    started = time.perf_counter()
    groups = library_groups(args)
    for name, halves in groups.items():
        log(f"{name}: " + ", ".join(
            f"{half} {h['dataset'].nunique()} data sets ({h.groupby(['dataset', 'curve']).ngroups}"
            " curves)" for half, h in halves.items()))  # fmt: skip

    # 1. choose the method on the development halves (10% cut-off task), each group half
    dev = {name: halves["development"] for name, halves in groups.items()}
    dev_scored = {name: score_curves(curves, FIT_SHARE, log) for name, curves in dev.items()}
    dev_tables = {name: summarise(per_dataset_error(scored)) for name, scored in dev_scored.items()}
    criterion = (
        pd.DataFrame(
            {
                "median": sum(t["median"] for t in dev_tables.values()) / len(dev_tables),
                "mean": sum(t["mean"] for t in dev_tables.values()) / len(dev_tables),
                **{f"{name}_median": t["median"] for name, t in dev_tables.items()},
            }
        )
        .dropna()
        .sort_values(["median", "mean"])
    )
    chosen = str(criterion.index[0])
    log(f"\ndevelopment, MAE in points at the 10% cut-off (chosen: {chosen})")
    log(criterion.head(15).round(2).to_string())

    # 2. calibrate its band on the development halves, per horizon ratio
    calibration = calibrate(dev, dev_scored, chosen, log)
    CALIBRATION_PATH.write_text(json.dumps(calibration, indent=1) + "\n")
    log(f"wrote {CALIBRATION_PATH}")

    # 3. report on the held-out halves, the published curves and our own curve
    results: dict[str, object] = {
        "splits": {"lcdb": str(SPLIT.relative_to(ROOT)), "nlp": str(NLP_SPLIT.relative_to(ROOT))},
        "chosen": chosen,
        "calibration": calibration,
        "development": criterion.round(3).to_dict(orient="index"),
    }
    held_scored = {}
    for name, halves in groups.items():
        held_scored[name] = score_curves(halves["held_out"], FIT_SHARE, log)
        results[f"held_out_{name}"] = held_out_figures(held_scored[name], chosen)
    for name, curves in (("published", peer_curves(args.peer)), ("own", own_curves(args.own))):
        scored = score_curves(curves, FIT_SHARE, log)
        results[name] = held_out_figures(scored, chosen)
        errors = per_dataset_error(scored)
        results[name]["per_dataset"] = (
            errors[[chosen, "paper", "ipl", "last"]].round(3).to_dict(orient="index")
        )
    for name in ("held_out_lcdb", "held_out_nlp", "published", "own"):
        figures = results[name]
        mae = figures["mae"]
        log(
            f"\n{name}: {figures['datasets']} data sets, {figures['curves']} curves; median MAE "
            + ", ".join(f"{m} {mae[m]['median']:.2f}" for m in (chosen, "paper", "ipl", "last"))
            + f"; {chosen} band coverage {figures['coverage_90']:.1%} of {figures['points']} "
            f"points, median width {figures['median_width_pt']:.1f} pt"
        )
    results["before"] = select_reference(groups["lcdb"]["held_out"], held_scored["lcdb"], chosen)
    results["seconds"] = round(time.perf_counter() - started, 1)
    results["provenance"] = provenance()
    args.output.write_text(json.dumps(results, indent=1) + "\n")
    log(f"wrote {args.output} ({results['seconds']:.0f} s)")


def band_of(scored: pd.DataFrame, quantiles: list, scaled: bool) -> tuple[np.ndarray, ...]:
    """(low, high) of the band given by per-bin `quantiles` around `scored`'s forecasts."""
    bins = [horizon_bin(r) for r in scored["ratio"]]
    unit = scored["scale"].to_numpy() if scaled else 1.0
    low = np.array([quantiles[b][0] for b in bins]) * unit
    high = np.array([quantiles[b][1] for b in bins]) * unit
    forecast = scored["forecast"].to_numpy()
    return np.clip(forecast + low, 0, 1), np.clip(forecast + high, 0, 1)


def band(method: str, scored: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The calibrated band around `scored`'s forecasts (frugal.forecast.curves reads the same file)."""
    calibration = load_calibration()
    assert calibration["method"] == method
    quantiles = [(b["low"], b["high"]) for b in calibration["bins"]]
    return band_of(scored, quantiles, calibration["scaled"])


def _select_one(job: tuple) -> list[tuple]:
    """The old rule with its bootstrap band (200 refits) on one curve."""
    (dataset, name), curve = job
    parts = cut(curve, FIT_SHARE)
    if parts is None:
        return []
    n_fit, y_fit, n_at, y_at = parts
    try:
        score, low, high = fit_curve((n_fit, y_fit), method="select").predict(n_at)
    except Exception:  # noqa: BLE001 - a curve the old rule cannot fit: counted as missing
        return []
    return [(dataset, t, s, lo, hi) for t, s, lo, hi in zip(y_at, score, low, high, strict=True)]


def select_reference(held_out: pd.DataFrame, held_scored: pd.DataFrame, chosen: str) -> dict:
    """The rule (and bootstrap band) `fit_curve` used before, on one curve of each of a
    seeded sample of held-out data sets, next to the chosen method on the same curves (its
    rows in `held_scored`, the held-out half already scored)."""
    rng = np.random.default_rng(SPLIT_SEED)
    datasets = sorted(held_out["dataset"].unique())
    sample = sorted(rng.choice(datasets, min(SELECT_DATASETS, len(datasets)), replace=False))
    jobs = []
    for dataset in sample:
        frame = held_out[held_out["dataset"] == dataset]
        curve = sorted(frame["curve"].unique())[0]
        jobs.append(((dataset, curve), frame[frame["curve"] == curve]))
    started = time.perf_counter()
    with ProcessPoolExecutor(WORKERS) as pool:
        rows = [row for result in pool.map(_select_one, jobs) for row in result]
    old = pd.DataFrame(rows, columns=["dataset", "truth", "score", "low", "high"])
    keys = pd.MultiIndex.from_tuples([key for key, _ in jobs if key[0] in set(old["dataset"])])
    same = held_scored[held_scored.set_index(["dataset", "curve"]).index.isin(keys)]
    mine = same[same["method"] == chosen]
    low, high = band(chosen, mine)
    per_dataset = old.assign(error=100 * (old["score"] - old["truth"]).abs()).groupby("dataset")
    result = {
        "datasets": int(old["dataset"].nunique()),
        "select_mae_median": round(float(per_dataset["error"].mean().median()), 3),
        "chosen_mae_median": round(float(per_dataset_error(same)[chosen].median()), 3),
        "select_coverage_90": round(float(old["truth"].between(old["low"], old["high"]).mean()), 4),
        "select_median_width_pt": round(float(100 * (old["high"] - old["low"]).median()), 2),
        "chosen_coverage_90": round(
            float(((mine["truth"] >= low) & (mine["truth"] <= high)).mean()), 4
        ),
        "chosen_median_width_pt": round(float(100 * np.median(high - low)), 2),
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(f"\nbefore (select + bootstrap band) vs {chosen}, held out: {result}", flush=True)
    return result


if __name__ == "__main__":
    main()
