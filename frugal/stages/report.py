"""The report stage: every figure and number of the run on one HTML page,
reports/report.html (it reads every stage's reports: all params)."""

from __future__ import annotations

from frugal import catalog
from frugal.config import Params
from frugal.files import write_text_atomic
from frugal.forecast.planning import PlanError, plan_from_reports
from frugal.hashing import data_md5
from frugal.report.page import ReportInputs, render
from frugal.stages import Context, Outcome


def run(params: Params, ctx: Context) -> Outcome:
    """The page, and `frugal plan`'s answer for forecast.target, kept on the parent run."""
    ev = params.evaluate
    metrics = catalog.METRICS.read(params)
    best = metrics.champion() or params.train.output_dir.name
    base = params.train.output_dir.name
    continual = params.continual.report
    forecast = catalog.FORECAST.read(params)
    plan = _plan(params, metrics, forecast)
    inputs = ReportInputs(
        metrics=metrics,
        forecast=forecast,
        sample=catalog.SAMPLE.read(params),
        continual=catalog.CONTINUAL.read(params) if continual.is_file() else None,
        plan=plan,
        champion_rule=f"the lowest modeled energy on the {ev.champion_profile} profile among "
        f"models within {100 * ev.accuracy_budget:g} pt of the base model's accuracy on the "
        "selection split",
        profile=ev.champion_profile,
        plots={
            "Annotation curves": params.sample.plot,
            "Learning-curve forecast": params.forecast.plot,
            "Pareto front": ev.pareto_plot,
            "Energy: base model": params.profile.plots_dir / f"{base}.png",
            "Energy: champion": params.profile.plots_dir / f"{best}.png",
            "Confusion: base model": ev.plots_dir / f"confusion_{base}.png",
            "Confusion: champion": ev.plots_dir / f"confusion_{best}.png",
            "Continual updates": params.continual.plot,
        },
        provenance={
            "MLflow parent run": ctx.parent_run or "(not tracked)",
            "raw data md5": data_md5(params.ingest.output),
            "git commit": ctx.commit or "(unknown)",
        },
    )
    out = params.report.output
    write_text_atomic(out, render(inputs))
    return Outcome(
        value=out, reports=(out,), parent_dicts={} if plan is None else {"reports/plan.json": plan}
    )


def _plan(
    params: Params, metrics: catalog.Metrics, forecast: catalog.ForecastReport
) -> dict | None:
    """`frugal plan` for forecast.target on this run (None without a target); a refusal is
    kept as its sentence, as the CLI would print it."""
    target = params.forecast.target
    if target is None:
        return None
    request = {
        "target": target,
        "energy_budget_uj": params.report.plan_energy_budget_uj,
        "profile": params.evaluate.champion_profile,
        "workload": params.profile.workloads[0],
    }
    try:
        return plan_from_reports(
            forecast,
            metrics,
            catalog.PROFILE.read(params),
            target,
            request["energy_budget_uj"],
            request["profile"],
            request["workload"],
        )
    except PlanError as refusal:
        return request | {"refused": str(refusal)}
