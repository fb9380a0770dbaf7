"""`reports/report.html`: one self-contained page per pipeline run (plots embedded) with the
annotation curves, the forecast and its band, the models against the base model, the Pareto
front, the champion and why, per-layer energy, the confusion matrices and continual updates.

Pure: figures and numbers in, an HTML string out; no Prefect, MLflow or files."""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from frugal.catalog import ContinualReport, ForecastReport, MethodSummary, Metrics, SampleReport


@dataclass
class ReportInputs:
    metrics: Metrics
    forecast: ForecastReport
    sample: SampleReport
    continual: ContinualReport | None  # when the stage has run
    plan: dict | None  # frugal.forecast.planning's answer for forecast.target (or its refusal)
    champion_rule: str  # in words, from params
    profile: str  # the device profile the champion is chosen on
    plots: Mapping[str, Path] = field(default_factory=dict)  # title → PNG (missing ones skipped)
    title: str = "Frugal pipeline report"
    provenance: Mapping[str, str] = field(default_factory=dict)  # git commit, data hash, ...


def models_table(metrics: Metrics, profile: str) -> pd.DataFrame:
    rows = []
    for name, m in metrics.items():
        diff, chosen = m.accuracy_vs_baseline, m.selection_accuracy_vs_baseline
        uj = m.modeled_uj_per_utterance[profile]
        rows.append(
            {
                "model": name + (" ★ champion" if m.champion else ""),
                "test accuracy": f"{m.accuracy:.2%}",
                "Δ vs base, pt [95% CI]": f"{100 * diff.difference:+.2f} "
                f"[{100 * diff.ci95_low:+.2f}, {100 * diff.ci95_high:+.2f}]",
                "selection Δ vs base, pt [90% CI] (chooses)": f"{100 * chosen.difference:+.2f} "
                f"[{100 * chosen.ci90_low:+.2f}, {100 * chosen.ci90_high:+.2f}]",
                "macro-F1": f"{m.macro_f1:.4f}",
                "ECE": f"{m.ece:.4f}",
                **{f"µJ {w} ({profile})": f"{v:,.0f}" for w, v in uj.items()},
                "Pareto front": ", ".join(w for w, on in m.pareto_front.items() if on) or "–",
                "latency p50 / p95 ms": f"{m.measured_latency_ms_p50:.1f} / "
                f"{m.measured_latency_ms_p95:.1f}",
                "model.onnx MB": f"{m.measured_weights_bytes / 1e6:.2f}",
            }
        )
    return pd.DataFrame(rows)


def why_champion(metrics: Metrics, rule: str, profile: str) -> str:
    name = metrics.champion()
    if name is None:
        return f"No model meets the rule ({rule}); the alias is not moved."
    m, base = metrics[name], next(iter(metrics.values()))
    energy = sum(m.modeled_uj_per_utterance[profile].values())
    base_energy = sum(base.modeled_uj_per_utterance[profile].values())
    return (
        f"{name}: {rule}. On the selection split (where it was chosen, apart from the dev texts "
        f"that scored its plan) it is "
        f"{100 * m.selection_accuracy_vs_baseline.difference:+.2f} pt against the base "
        f"model; "
        f"on test (reported only) {m.accuracy:.2%} "
        f"({100 * m.accuracy_vs_baseline.difference:+.2f} pt), at "
        f"{energy / base_energy:.1%} of the base model's modeled energy at executed widths, "
        f"{m.measured_weights_bytes / 1e6:.1f} MB of model.onnx."
    )


def forecast_provenance(forecast: ForecastReport) -> str:
    """Which points the forecast was fitted on and which method made it."""
    points = forecast.points
    fitted = (
        f"Fitted on fine-tunes at {', '.join(f'{f:.4g}' for f in points.fractions)} of the "
        f"{forecast.labels_measured:,} bought labels "
        f"({'a seeded random share' if points.order == 'random' else 'the first rounds'}; "
        f"seeds {', '.join(str(s) for s in points.seeds)})"
    )
    return f"{fitted}; method {forecast.method}, 90% intervals."


def at_labels_bought(forecast: ForecastReport, metrics: Metrics) -> str:
    """The forecast where the labels were bought, beside what was measured there: on dev (the
    split the points are scored on) and on test (the base model, reported only)."""
    here = forecast.at_labels_bought
    base = next(iter(metrics.values()))
    return (
        f"At the {here.n_labels:,} labels bought the curve gives {here.forecast:.2%} "
        f"[{here.low:.2%}, {here.high:.2%}]; measured: {here.measured:.2%} on dev "
        f"(what the points are scored on; training early-stops on dev, so it reads high) and "
        f"{base.accuracy:.2%} on test (reported only, never used to choose)."
    )


def forecast_table(forecast: ForecastReport) -> pd.DataFrame:
    rows = [
        {"labels": f"{f.n_labels:,}", "forecast accuracy": f"{f.score:.2%}",
         "90% interval": f"[{f.low:.2%}, {f.high:.2%}]"}
        for f in forecast.forecasts
    ]  # fmt: skip
    top = forecast.max_score
    rows.append(
        {"labels": "maximum reachable", "forecast accuracy": f"{top.score:.2%}",
         "90% interval": f"[{top.low:.2%}, {top.high:.2%}]"}
    )  # fmt: skip
    target = forecast.labels_for_target
    if target is not None:
        n = target.n_labels
        rows.append(
            {
                "labels": f"for {target.target:.0%}",
                "forecast accuracy": f"{n:,} labels" if n else "not reached",
                "90% interval": f"[{_count(target.low)}, {_count(target.high)}]",
            }
        )
    return pd.DataFrame(rows)


def continual_table(continual: ContinualReport) -> pd.DataFrame:
    """Per method; the comparisons with full retraining only when it ran."""
    rows = []
    for method, s in continual.summary.items():
        gap, share = s.gap_to_full_retrain_pt, s.time_vs_full_retrain
        rows.append(
            {
                "method": method,
                "final average accuracy": f"{s.final_average_accuracy:.2%}",
                "dev": f"{s.final_dev_average_accuracy:.2%}",
                "gap to full retrain, pt": "–" if gap is None else f"{gap:+.2f}",
                "mean forgetting, pt": f"{100 * s.final_mean_forgetting:.1f}",
                "kept of the old data": _kept(s),
                "update time": f"{s.update_seconds:.0f} s"
                + ("" if share is None else f" ({share:.0%} of full retrain)"),
            }
        )
    return pd.DataFrame(rows)


def _kept(summary: MethodSummary) -> str:
    """What a method keeps of the old data: training texts, or statistics only (no text)."""
    texts, size = summary.memory_examples, summary.memory_bytes
    kib = "" if size is None else f", {size / 1024:,.0f} KiB"
    return f"{texts:,} texts{kib}" if texts else f"no text{kib}"


def ablation_table(continual: ContinualReport) -> pd.DataFrame:
    """What each part of the continual methods adds, dev (chosen on) and test."""
    return pd.DataFrame(
        [
            {
                "method": row.method,
                "adds": row.adds,
                "over": row.over,
                "dev, pt": f"{row.dev_pt:+.2f}",
                "test, pt": f"{row.test_pt:+.2f}",
            }
            for row in continual.ablation
        ]
    )


def _shipped(continual: ContinualReport) -> str:
    """Which method's model ships (models/continual, alias `current`) and why."""
    shipped = continual.shipped
    return (
        f"<p>Shipped: <b>{html.escape(shipped.method)}</b> (alias <code>current</code>). "
        f"Rule: {html.escape(shipped.rule)}. {html.escape(shipped.why)}.</p>"
    )


def _plan_section(plan: Mapping | None) -> list[str]:
    """The budget plan (`frugal plan`): labels for the target and the model to ship."""
    if plan is None:
        return []
    budget = plan["energy_budget_uj"]
    ask = (
        f"Target {plan['target']:.2%} on the {html.escape(plan['profile'])} profile, "
        f"{html.escape(plan['workload'])} workload, "
        + ("no energy budget" if budget is None else f"at most {budget:,.1f} µJ per utterance")
    )
    if "refused" in plan:
        return [
            "<h2>Budget plan</h2>",
            f"<p>{ask}: <b>refused</b>: {html.escape(plan['refused'])}</p>",
        ]
    labels = plan["labels"]
    n, low, high = labels["n_labels"], labels["low"], labels["high"]
    expected = plan["expected_accuracy"]
    return [
        "<h2>Budget plan</h2>",
        f"<p>{ask}. Buy <b>{'–' if n is None else f'{n:,}'}</b> labels (90% interval "
        f"{low:,} to {'beyond 10 M' if high is None else f'{high:,}'}) and ship "
        f"<b>{html.escape(plan['model'])}</b> at {plan['energy_uj']:,.1f} µJ per utterance; "
        f"expected accuracy there "
        f"{'–' if expected is None else f'{expected:.2%}'} (the forecast moved by its dev "
        f"difference to the base model, {100 * plan['selection_accuracy_vs_base']:+.2f} pt).</p>",
    ]


def render(inputs: ReportInputs) -> str:
    """The whole page."""
    profile = inputs.profile
    sample = inputs.sample
    parts = [
        f"<h1>{html.escape(inputs.title)}</h1>",
        _definition_list(inputs.provenance),
        "<h2>Annotation</h2>",
        f"<p>{sample.labels} labels bought by <b>{html.escape(sample.strategy)}</b> "
        f"({html.escape(sample.annotator)} annotator); proxy accuracy "
        f"{sample.proxy_accuracy:.2%} (the whole pool: {_percent(sample.full_pool_proxy_accuracy)}).</p>",
        _figure(inputs.plots, "Annotation curves"),
        "<h2>Forecast</h2>",
        f"<p>{html.escape(forecast_provenance(inputs.forecast))}</p>",
        _table(forecast_table(inputs.forecast)),
        f"<p>{html.escape(at_labels_bought(inputs.forecast, inputs.metrics))}</p>",
        _figure(inputs.plots, "Learning-curve forecast"),
        *_plan_section(inputs.plan),
        "<h2>Models</h2>",
        f"<p class='champion'><b>Champion.</b> "
        f"{html.escape(why_champion(inputs.metrics, inputs.champion_rule, profile))}</p>",
        _table(models_table(inputs.metrics, profile)),
        _figure(inputs.plots, "Pareto front"),
        "<h2>Energy per layer</h2>",
        _figure(inputs.plots, "Energy: base model"),
        _figure(inputs.plots, "Energy: champion"),
        "<h2>Confusion</h2>",
        _figure(inputs.plots, "Confusion: base model"),
        _figure(inputs.plots, "Confusion: champion"),
    ]
    if inputs.continual:
        parts += [
            "<h2>Continual updates</h2>",
            _shipped(inputs.continual),
            _table(continual_table(inputs.continual)),
            "<h3>Ablation: what each part adds</h3>" if inputs.continual.ablation else "",
            _table(ablation_table(inputs.continual)) if inputs.continual.ablation else "",
            _figure(inputs.plots, "Continual updates"),
        ]
    body = "\n".join(part for part in parts if part)
    return (
        "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(inputs.title)}</title><style>{_CSS}</style></head>"
        f"<body>\n{body}\n</body></html>\n"
    )


_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}"
    "table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #ccc;padding:.3em .6em}"
    "th{background:#f3f3f3}img{max-width:100%}.champion{background:#fff8e1;padding:.6em}"
    "dt{font-weight:bold;float:left;width:12em}dd{margin-left:12em}"
)


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.2%}"


def _count(value: int | None) -> str:
    return f"{value:,}" if value else "–"


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, escape=True, border=0)


def _figure(plots: Mapping[str, Path], title: str) -> str:
    path = plots.get(title)
    if path is None or not Path(path).is_file():
        return ""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return (
        f"<figure><img alt='{html.escape(title)}' src='data:image/png;base64,{data}'>"
        f"<figcaption>{html.escape(title)}</figcaption></figure>"
    )


def _definition_list(items: Mapping[str, str]) -> str:
    if not items:
        return ""
    rows = "".join(
        f"<dt>{html.escape(k)}</dt><dd>{html.escape(str(v))}</dd>" for k, v in items.items()
    )
    return f"<dl>{rows}</dl>"
