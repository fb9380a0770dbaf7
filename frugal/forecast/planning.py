"""The budget planner: how many labels to buy for a target accuracy, and which model variant
to ship within an energy budget.

Pure functions of data -> data (no I/O). Inputs are what the pipeline already measured:

* the learning curve (`frugal.forecast.curves`, fitted on the `learning_curve` stage's points) gives
  the base model's accuracy at n labels, with its 90% band;
* each variant's accuracy difference to the base model on the *selection* split
  (`reports/metrics.json`; where the champion is chosen) moves that curve for the variant: a
  variant that cost 0.4 pt there is expected to cost 0.4 pt at any label count;
* each variant's modeled energy per utterance for the device profile and workload
  (`reports/profile.json`: the served ONNX graph, priced).

The plan: among the variants within the energy budget (all, without one), the lowest-energy
one whose target is reachable within the band's optimistic edge; the labels it needs (point
forecast, with the 90% interval), and its expected accuracy at that label count.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from frugal.catalog import ForecastReport, Metrics, Profile
from frugal.errors import FrugalError
from frugal.forecast.conformal import CalibratedForecast
from frugal.forecast.curves import CurveForecast


class PlanError(FrugalError):
    """The target or the budget cannot be met: one sentence that says why."""


@dataclass(frozen=True)
class Variant:
    name: str
    energy_uj: float  # modeled µJ per utterance (profile, workload)
    selection_delta: float  # selection accuracy minus the base model's (fraction)
    test_accuracy: float  # reported only


def variants_from_reports(
    metrics: Metrics, profile_report: Profile, profile: str, workload: str
) -> list[Variant]:
    """Variants with energy for (profile, workload) and a selection difference, from the evaluate and
    profile stages' JSON reports."""
    out = []
    for name, entry in metrics.items():
        modeled = profile_report[name].modeled.uj_per_utterance if name in profile_report else {}
        if profile not in modeled or workload not in modeled[profile]:
            raise PlanError(
                f"no modeled energy for model {name!r} on profile {profile!r}, workload "
                f"{workload!r} in the profile report; profiles there: {', '.join(modeled)}"
            )
        delta = entry.selection_accuracy_vs_baseline.difference
        out.append(Variant(name, modeled[profile][workload], delta, entry.accuracy))
    return out


def plan(
    curve: CurveForecast | CalibratedForecast,
    variants: list[Variant],
    target: float,
    energy_budget_uj: float | None = None,
) -> dict[str, Any]:
    """The plan as JSON data; raises `PlanError` when the target is above what the forecast's
    band can reach, or when no variant meets the energy budget (or reaches the target)."""
    _, _, reachable = curve.max_score()
    if target > reachable:
        raise PlanError(
            f"target {target:.2%} is above the most the forecast says any label budget can "
            f"reach ({reachable:.2%}, the upper edge of its 90% band): lower the target"
        )
    within = [v for v in variants if energy_budget_uj is None or v.energy_uj <= energy_budget_uj]
    if not within:
        cheapest = min(variants, key=lambda v: v.energy_uj)
        raise PlanError(
            f"no model variant meets the energy budget of {energy_budget_uj:,.1f} µJ per "
            f"utterance: the lowest is {cheapest.name} at {cheapest.energy_uj:,.1f} µJ"
        )
    candidates = []
    for variant in sorted(within, key=lambda v: (v.energy_uj, -v.selection_delta)):
        n_labels, fewest, most = curve.labels_for_target(target - variant.selection_delta)
        if fewest is None:  # even the optimistic edge never reaches it
            continue
        candidates.append((variant, n_labels, fewest, most))
    if not candidates:
        raise PlanError(
            f"no model variant within the energy budget is forecast to reach {target:.2%}, "
            "even at the optimistic edge of the 90% band: lower the target or raise the budget"
        )
    variant, n_labels, fewest, most = candidates[0]
    expected = None
    if n_labels is not None:
        expected = float(curve.predict([n_labels])[0][0]) + variant.selection_delta
    return {
        "target": target,
        "energy_budget_uj": energy_budget_uj,
        "model": variant.name,
        "energy_uj": round(variant.energy_uj, 3),
        "selection_accuracy_vs_base": round(variant.selection_delta, 6),
        "labels": {"n_labels": n_labels, "low": fewest, "high": most},
        "expected_accuracy": None if expected is None else round(expected, 6),
        "measured_test_accuracy_now": round(variant.test_accuracy, 6),
        "considered": [
            {"model": v.name, "energy_uj": round(v.energy_uj, 3), "n_labels": n}
            for v, n, _, _ in candidates
        ],
    }


def plan_from_reports(
    forecast: ForecastReport,
    metrics: Metrics,
    profile_report: Profile,
    target: float,
    energy_budget_uj: float | None,
    profile: str,
    workload: str,
) -> dict[str, Any]:
    """`plan` on the forecast, evaluate and profile stages' reports (as read): the curve the
    forecast stage fitted, not fitted again."""
    if forecast.curve is None:
        raise PlanError("the forecast holds no fitted curve: rerun `dvc repro forecast`")
    variants = variants_from_reports(metrics, profile_report, profile, workload)
    curve = CalibratedForecast.from_fitted(forecast.curve.model_dump())
    return {"profile": profile, "workload": workload} | plan(
        curve, variants, target, energy_budget_uj
    )
