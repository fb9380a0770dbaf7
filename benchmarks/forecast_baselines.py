"""The published forecasters beside ours on the same held-out curves, and a fresh split for a
clean coverage figure (issue 29, items 2 and 3).

1. Baselines. On each held-out set apart (LCDB: the learners the library benchmark draws on
   its held-out data sets, `forecast_library_split.json`; NLP: the held-out proxy curves,
   `nlp_curves_split.json`; the four published curves, which are in no choice), every curve
   that can be cut at all three cut-offs (at least 3 distinct n at ≤ 5% of its largest n) is fitted
   at n ≤ 5%, 10% and 20% of its largest n and scored on its points at 55-100%, as the library
   benchmark scores the 10% task. Rows: the shipped forecaster (the method in
   `frugal/forecast/calibration.json`, with its band), POW4 and MMF4 (the two parametric
   models that beat LC-PFN overall on LCDB 1.1 in the 2025 study; fitted by the same weighted
   least squares, several starts and bounds as every family here: `frugal.forecast.curve_families`), the
   paper's ensemble (arXiv 2307.00374: mean of exponential, inverse power law and pow4) and
   `last` (the score at the largest fitted n). LC-PFN is left out: see `LCPFN_LEFT_OUT`.
2. Fresh split. The library's coverage figure was read before the band's design was settled,
   so it is in-sample in spirit. `draw` picks, before any figure is computed, new curves for
   every held-out LCDB data set: up to 3 learners the library never drew there (seeded,
   `FRESH_SEED`), written to `benchmarks/results/forecast_fresh_split.json` and committed
   before `run` reads them. `run` scores the shipped forecaster and its 90% band on them at the
   10% cut-off: the out-of-sample coverage and width.

    python benchmarks/forecast_baselines.py draw   # once: the fresh curves, before any fit
    python benchmarks/forecast_baselines.py run    # table + benchmarks/results/forecast_baselines.json

Run alone (it fits on 2 processes: the whole machine).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import forecast_library as library  # benchmarks/ is sys.path[0]
import numpy as np
import pandas as pd
from stamp import provenance

ROOT = library.ROOT
FRESH = ROOT / "benchmarks" / "results" / "forecast_fresh_split.json"
OUTPUT = ROOT / "benchmarks" / "results" / "forecast_baselines.json"
CUTS = (0.05, 0.10, 0.20)
FRESH_SEED = 2027
FRESH_LEARNERS = 3
ROWS = {"pow4": "POW4", "mmf": "MMF4", "paper": "paper ensemble", "last": "last"}
LCPFN_LEFT_OUT = (
    "LC-PFN is not a row: the `lcpfn` 0.1.3 wheel holds no weights (it downloads them at first "
    "use, which fails offline) and pins torch <= 1.11 and numpy < 2. Training one from its "
    "prior ourselves means hours of CPU on this 2-core machine for the paper's size; a small "
    "one is future work (it would be labelled as ours)."
)


def draw(args: argparse.Namespace) -> None:
    if FRESH.is_file():
        raise SystemExit(f"{FRESH} exists: the fresh curves are drawn once (delete it to redraw)")
    split = json.loads(library.SPLIT.read_text())
    held = set(split["held_out"])
    curves = library.lcdb_table(library.lcdb_archive(args.lcdb))
    drawn = library.lcdb_curves(curves, args.learners_per_dataset, library.SPLIT_SEED)
    used = set(map(tuple, drawn[["dataset", "curve"]].drop_duplicates().to_numpy()))
    rng = np.random.default_rng(FRESH_SEED)
    fresh: dict[str, list[str]] = {}
    for openmlid, learners in curves.groupby("openmlid")["learner"].unique().items():
        dataset = f"openml-{openmlid}"
        if dataset not in held:
            continue
        unused = sorted(str(x) for x in learners if (dataset, x) not in used)
        if len(unused) > FRESH_LEARNERS:
            unused = sorted(rng.choice(unused, size=FRESH_LEARNERS, replace=False).tolist())
        if unused:
            fresh[dataset] = unused
    FRESH.write_text(
        json.dumps(
            {
                "rule": (
                    f"held-out LCDB data sets; up to {FRESH_LEARNERS} learners the library "
                    f"benchmark never drew there (numpy default_rng({FRESH_SEED}).choice over "
                    "the sorted unused learners); drawn before any fit"
                ),
                "curves": fresh,
                "provenance": provenance(),
            },
            indent=1,
        )
        + "\n"
    )
    print(f"wrote {FRESH}: {sum(map(len, fresh.values()))} curves on {len(fresh)} data sets")


def score(curves: pd.DataFrame, share: float) -> pd.DataFrame:
    """Fit at n <= share × largest n, score at 55-100% of it: the library's 10% task at any
    cut-off."""
    return library.score_curves(curves, share, lambda _: None, far=True)


def by_cuts(curves: pd.DataFrame, methods: list[str], chosen: str, name: str) -> dict:
    """Every method on the curves that can be cut at every cut-off, at each of CUTS."""
    by_cut = {share: score(curves, share) for share in CUTS}
    keys = [set(map(tuple, s[["dataset", "curve"]].drop_duplicates().to_numpy()))
            for s in by_cut.values()]  # fmt: skip
    common = set.intersection(*keys)  # the same curves at every cut-off
    cuts = {}
    for share, scored in by_cut.items():
        index = scored.set_index(["dataset", "curve"]).index
        same = scored[index.isin(list(common))]
        errors = library.per_dataset_error(same)[methods]
        table = library.summarise(errors)
        cuts[f"{share:.0%}"] = {
            "mae": table.round(3).to_dict(orient="index"),
            "per_dataset": errors.round(3).to_dict(orient="index"),
            "band": library.band_figures(same, chosen),
        }
        print(f"\n{name}, held out, fit at <= {share:.0%}: MAE in points per data set")
        print(table.rename(index=ROWS).round(2).to_string())
    return {"datasets": len({d for d, _ in common}), "curves": len(common), "cuts": cuts}


def run(args: argparse.Namespace) -> None:
    if not FRESH.is_file():
        raise SystemExit(f"{FRESH}: missing; run `draw` first and commit it before `run`")
    started = time.perf_counter()
    chosen = library.load_calibration()["method"]
    methods = [chosen, *ROWS]
    everything = library.lcdb_table(library.lcdb_archive(args.lcdb))
    lcdb = library.lcdb_curves(everything, args.learners_per_dataset, library.SPLIT_SEED)
    nlp = library.nlp_curves(args.nlp)
    held = {
        "lcdb": lcdb[lcdb["dataset"].isin(json.loads(library.SPLIT.read_text())["held_out"])],
        "nlp": nlp[nlp["dataset"].isin(json.loads(library.NLP_SPLIT.read_text())["held_out"])],
        "published": library.peer_curves(args.peer),
    }
    results: dict[str, object] = {"chosen": chosen, "methods": {m: ROWS.get(m, m) for m in methods}}
    results["held_out"] = {
        name: by_cuts(curves, methods, chosen, name) for name, curves in held.items()
    }
    fresh_list = json.loads(FRESH.read_text())["curves"]
    everything["dataset"] = "openml-" + everything["openmlid"].astype(str)
    wanted = {(d, c) for d, learners in fresh_list.items() for c in learners}
    pairs = list(zip(everything["dataset"], everything["learner"].astype(str), strict=True))
    picked = everything[[p in wanted for p in pairs]]
    fresh = library._curves(
        picked["dataset"], picked["learner"].astype(str), picked["size_train"], picked["score_test"]
    )
    scored = score(fresh, library.FIT_SHARE)
    table = library.summarise(library.per_dataset_error(scored)[methods])
    results["fresh"] = {
        "datasets": int(scored["dataset"].nunique()),
        "curves": int(scored.groupby(["dataset", "curve"]).ngroups),
        "mae": table.round(3).to_dict(orient="index"),
        "band": library.band_figures(scored, chosen),
    }
    print("\nfresh curves (drawn before any fit), fit at <= 10%: MAE in points per data set")
    print(table.rename(index=ROWS).round(2).to_string())
    print(f"{chosen} 90% band on the fresh curves: {results['fresh']['band']}")
    results["lcpfn"] = LCPFN_LEFT_OUT
    results["seconds"] = round(time.perf_counter() - started, 1)
    results["provenance"] = provenance()
    OUTPUT.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {OUTPUT} ({results['seconds']:.0f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["draw", "run"])
    parser.add_argument("--lcdb", type=Path, default=None, help="lcdb-0.1.0.tar.gz")
    parser.add_argument("--peer", type=Path, default=library.PEER)
    parser.add_argument("--nlp", type=Path, default=library.NLP)
    parser.add_argument("--learners-per-dataset", type=int, default=3)
    args = parser.parse_args()
    {"draw": draw, "run": run}[args.command](args)


if __name__ == "__main__":
    main()
