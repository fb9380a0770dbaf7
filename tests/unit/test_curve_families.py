"""The learning-curve families: each fit recovers a curve of its own shape from noiseless
points, and `labels_reaching` inverts a curve on its label grid."""

from __future__ import annotations

import numpy as np
import pytest

from frugal.forecast.curve_families import (
    FAMILIES,
    FAMILY_NAMES,
    evaluate,
    fit_family,
    labels_reaching,
)

X = np.array([0.05, 0.1, 0.2, 0.4, 0.8, 1.0])  # n / n_scale, as the forecasters scale it
TRUE = {
    "power_law": (0.8, 0.05),
    "inverse_power_law": (0.93, 0.05, 0.6),
    "pow4": (0.94, 3.0, 0.5, 0.7),
    "exp_saturation": (0.92, 0.3, 4.0),
    "log_power": (0.93, -3.0, -0.8),
    "mmf": (0.3, 0.2, 0.95, 0.9),
    "weibull": (0.93, 0.4, 3.0, 0.8),
    "janoschek": (0.93, 0.4, 3.0, 0.8),
}


def test_every_family_has_a_case():
    assert set(TRUE) == set(FAMILY_NAMES)


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_a_fit_recovers_a_curve_of_its_own_family(name):
    family = FAMILIES[name]
    y = evaluate(name, TRUE[name], X)
    params = fit_family(family, X, y)
    assert params is not None
    # the fitted curve matches where measured and a little beyond (parameters may trade off)
    grid = np.linspace(0.05, 2.0, 40)
    assert np.max(np.abs(evaluate(name, params, grid) - evaluate(name, TRUE[name], grid))) < 2e-3
    assert np.all(params >= np.array(family.lower) - 1e-12)
    assert np.all(params <= np.array(family.upper) + 1e-12)


def test_a_family_with_more_parameters_than_distinct_points_is_not_fitted():
    x = np.array([0.1, 0.1, 0.5])  # two distinct points, three parameters
    assert fit_family(FAMILIES["inverse_power_law"], x, np.array([0.7, 0.7, 0.8])) is None


def test_labels_reaching_is_the_first_grid_count_at_the_target():
    def predict(n):  # score rises with n; the band is ±0.02
        score = 0.95 - 0.5 * n**-0.5
        return score, score - 0.02, score + 0.02

    point, optimistic, pessimistic = labels_reaching(predict, 0.90)
    exact = (0.5 / 0.05) ** 2  # 0.95 - 0.5 / sqrt(n) = 0.90 at n = 100
    assert exact <= point <= exact * 1.01
    assert optimistic < point < pessimistic  # the high edge reaches it first
    assert labels_reaching(predict, 0.99) == (None, None, None)  # above the curve's limit
