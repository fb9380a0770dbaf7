"""Learning-curve forecasting: recovers a known curve, honest intervals, clear input errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from frugal.curves import FAMILY_NAMES, CurveForecast, fit_curve, validate_points
from frugal.errors import DataError

TRUE_A, TRUE_B, TRUE_C = 0.9, 0.5, 0.4


def true_score(n_labels: np.ndarray | float) -> np.ndarray:
    return TRUE_A - TRUE_B * np.power(n_labels, -TRUE_C)


@pytest.fixture(scope="module")
def noisy_points() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    n_labels = np.linspace(50, 1000, 20)
    return pd.DataFrame(
        {"n_labels": n_labels, "score": true_score(n_labels) + rng.normal(0, 0.003, 20)}
    )


@pytest.fixture(scope="module")
def forecast(noisy_points: pd.DataFrame) -> CurveForecast:
    return fit_curve(noisy_points, seed=0, n_bootstrap=100)


def test_forecast_far_beyond_the_data_recovers_the_true_curve(forecast: CurveForecast) -> None:
    score, low, high = forecast.predict([20000])
    truth = true_score(20000)
    assert abs(score[0] - truth) < 0.015
    assert low[0] <= truth <= high[0]


def test_max_score_is_near_the_true_asymptote(forecast: CurveForecast) -> None:
    score, low, high = forecast.max_score()
    assert abs(score - TRUE_A) < 0.02
    assert low <= score <= high <= 1.0


def test_intervals_are_ordered(forecast: CurveForecast) -> None:
    score, low, high = forecast.predict(np.geomspace(10, 1e6, 30))
    assert np.all(low <= score) and np.all(score <= high)
    assert np.all((low >= 0) & (high <= 1))


def test_labels_for_target_is_plausible_and_none_above_the_asymptote(
    forecast: CurveForecast,
) -> None:
    # Truth: 0.9 - 0.5 n^-0.4 = 0.85 at n = 316.
    n_labels, fewest, most = forecast.labels_for_target(0.85)
    assert n_labels is not None and 200 <= n_labels <= 500
    assert fewest is not None and fewest <= n_labels
    assert most is None or most >= n_labels
    assert forecast.labels_for_target(0.99)[0] is None


def test_seeded_fits_are_deterministic(noisy_points: pd.DataFrame) -> None:
    first = fit_curve(noisy_points, seed=3, n_bootstrap=30)
    second = fit_curve(noisy_points, seed=3, n_bootstrap=30)
    assert first == second
    np.testing.assert_array_equal(first.predict([5000]), second.predict([5000]))


def test_array_input_and_every_family_alone_can_fit(noisy_points: pd.DataFrame) -> None:
    arrays = (noisy_points["n_labels"].to_numpy(), noisy_points["score"].to_numpy())
    for family in FAMILY_NAMES:
        alone = fit_curve(arrays, families=[family], n_bootstrap=0)
        assert [member.family for member in alone.members] == [family]
        assert 0.0 <= alone.predict([2000])[0][0] <= 1.0


def test_repeated_runs_per_size_and_unknown_family() -> None:
    n_labels = np.repeat([100, 200, 400, 800], 3)
    points = pd.DataFrame({"n_labels": n_labels, "score": true_score(n_labels)})
    assert fit_curve(points, n_bootstrap=10).predict([1600])[0][0] == pytest.approx(
        true_score(1600), abs=0.01
    )
    with pytest.raises(ValueError, match="unknown curve families"):
        fit_curve(points, families=["cubic"])


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"n_labels": [1, 2, 3]}, "missing column.*'score'"),
        ({"n_labels": [1, 2, "many"], "score": [0.1, 0.2, 0.3]}, "non-numeric.*'many'"),
        ({"n_labels": [1, 2, 3], "score": [0.1, None, 0.3]}, "non-numeric or missing"),
        ({"n_labels": [1, 2, 3], "score": [0.1, 1.5, 0.3]}, r"1\.5.*outside \[0, 1\]"),
        ({"n_labels": [1, 2, 3], "score": [0.1, -0.2, 0.3]}, "outside"),
        ({"n_labels": [0, 2, 3], "score": [0.1, 0.2, 0.3]}, "must be positive"),
        ({"n_labels": [10, 10, 20], "score": [0.1, 0.2, 0.3]}, "at least 3 distinct.*got 2"),
    ],
)
def test_validate_points_rejects_bad_input(table: dict, message: str) -> None:
    with pytest.raises(DataError, match=message):
        validate_points(pd.DataFrame(table))


def test_validate_points_sorts_and_keeps_floats() -> None:
    clean = validate_points(pd.DataFrame({"n_labels": ["30", 10, 20], "score": [0.3, 0.1, 0.2]}))
    assert list(clean.columns) == ["n_labels", "score"]
    assert clean["n_labels"].tolist() == [10.0, 20.0, 30.0]


def test_interval_widens_with_each_doubling_past_the_data(forecast: CurveForecast) -> None:
    # the held-out extrapolation error is measured on the curve itself, and is small here
    assert 0 < forecast.extrapolation_error < 0.01
    _, low, high = forecast.predict([1000, 4000, 64000])
    widths = high - low
    assert widths[0] < widths[1] < widths[2]
