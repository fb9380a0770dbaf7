"""The budget planner: labels for a target and the model to ship within an energy budget, from
a fitted learning curve and each variant's dev difference and modeled energy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from frugal import catalog
from frugal.forecast.curves import fit_curve
from frugal.forecast.planning import PlanError, Variant, plan, variants_from_reports
from tests.reports import metrics_entry, profile_entry


@pytest.fixture(scope="module")
def curve():
    n = np.array([50, 100, 200, 400, 800], dtype=float)
    return fit_curve(pd.DataFrame({"n_labels": n, "score": 0.95 - 0.9 * n**-0.4}))


VARIANTS = [
    Variant("base", 7000.0, 0.0, 0.90),
    Variant("int8_ptq", 2000.0, -0.002, 0.898),
    Variant("size_target", 400.0, -0.30, 0.60),  # cheapest, but far too inaccurate
]


def test_the_cheapest_variant_that_can_reach_the_target_is_chosen(curve):
    result = plan(curve, VARIANTS, target=0.88)
    assert result["model"] == "int8_ptq"  # size_target can never reach 0.88 + 0.30
    assert [c["model"] for c in result["considered"]] == ["int8_ptq", "base"]
    base_labels = curve.labels_for_target(0.88)[0]
    labels = result["labels"]
    assert labels["n_labels"] >= base_labels  # a 0.2 pt worse model needs at least as many
    assert labels["low"] <= labels["n_labels"] <= (labels["high"] or np.inf)
    expected = curve.predict([labels["n_labels"]])[0][0] - 0.002
    assert result["expected_accuracy"] == pytest.approx(expected, abs=1e-6)
    assert result["expected_accuracy"] >= 0.88 - 1e-3


def test_an_energy_budget_excludes_the_variants_above_it(curve):
    result = plan(curve, VARIANTS, target=0.88, energy_budget_uj=5000.0)
    assert result["model"] == "int8_ptq" and result["energy_budget_uj"] == 5000.0
    with pytest.raises(PlanError, match="no model variant within the energy budget is forecast"):
        plan(curve, VARIANTS, target=0.88, energy_budget_uj=1000.0)  # only size_target fits


def test_the_two_refusals_say_why_in_one_sentence(curve):
    n = np.array([50, 100, 200, 400, 800], dtype=float)
    low_curve = fit_curve(pd.DataFrame({"n_labels": n, "score": 0.6 - 0.2 * n**-0.8}))  # flat
    reachable = low_curve.max_score()[2]
    assert reachable < 0.9
    with pytest.raises(PlanError, match=r"above the most the forecast says") as above:
        plan(low_curve, VARIANTS, target=reachable + 0.01)
    with pytest.raises(PlanError, match="no model variant meets the energy budget") as budget:
        plan(curve, VARIANTS, target=0.88, energy_budget_uj=10.0)
    assert "size_target at 400.0 µJ" in str(budget.value)
    for refusal in (above, budget):
        assert "\n" not in str(refusal.value)


def _reports(figures: list[tuple[str, float, float, float]]):
    """metrics.json and profile.json as the committed ones are shaped, with these figures:
    (model, test accuracy, selection difference, µJ per utterance on phone, batch)."""
    return catalog.METRICS.check(
        {name: metrics_entry(accuracy, d) for name, accuracy, d, _ in figures}
    ), catalog.PROFILE.check(
        {
            name: profile_entry({"phone": {"batch": uj, "streaming": 9 * uj}})
            for name, *_, uj in figures
        }
    )


def test_variants_are_read_from_the_evaluate_and_profile_reports():
    metrics, profile = _reports([("base", 0.9, 0.0, 7000.0), ("int8_ptq", 0.89, -0.01, 2100.0)])
    variants = variants_from_reports(metrics, profile, "phone", "streaming")
    assert variants == [
        Variant("base", 63000.0, 0.0, 0.9),
        Variant("int8_ptq", 18900.0, -0.01, 0.89),
    ]
    with pytest.raises(PlanError, match="no modeled energy for model 'base' on profile 'mcu'"):
        variants_from_reports(metrics, profile, "mcu", "batch")
