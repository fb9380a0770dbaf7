"""Learning-curve forecasting: recovers a known curve, honest intervals, clear input errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from frugal.errors import DataError
from frugal.forecast.conformal import (
    HORIZON_BINS,
    CalibratedForecast,
    conformal_quantiles,
    fit_bases,
    horizon_bin,
    load_calibration,
    parse_method,
)
from frugal.forecast.curve_families import FAMILY_NAMES
from frugal.forecast.curves import (
    CurveForecast,
    fit_curve,
    fit_linked,
    forecast_report,
    validate_points,
)

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
    return fit_curve(noisy_points, seed=0, n_bootstrap=100, method="select")


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
    first = fit_curve(noisy_points, seed=3, n_bootstrap=30, method="select")
    second = fit_curve(noisy_points, seed=3, n_bootstrap=30, method="select")
    assert first == second
    np.testing.assert_array_equal(first.predict([5000]), second.predict([5000]))


def test_array_input_and_every_family_alone_can_fit(noisy_points: pd.DataFrame) -> None:
    arrays = (noisy_points["n_labels"].to_numpy(), noisy_points["score"].to_numpy())
    for family in FAMILY_NAMES:
        alone = fit_curve(arrays, families=[family], n_bootstrap=0, method="select")
        assert [member.family for member in alone.members] == [family]
        assert 0.0 <= alone.predict([2000])[0][0] <= 1.0


def test_repeated_runs_per_size_and_unknown_family() -> None:
    n_labels = np.repeat([100, 200, 400, 800], 3)
    points = pd.DataFrame({"n_labels": n_labels, "score": true_score(n_labels)})
    assert fit_curve(points, n_bootstrap=10, method="select").predict([1600])[0][
        0
    ] == pytest.approx(true_score(1600), abs=0.01)
    with pytest.raises(ValueError, match="unknown curve families"):
        fit_curve(points, families=["cubic"], method="select")


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


# ------------------------------------------------------------ the library-chosen method


def test_the_default_is_the_calibrated_method_and_the_report_says_so(noisy_points) -> None:
    calibration = load_calibration()
    curve = fit_curve(noisy_points)
    assert isinstance(curve, CalibratedForecast) and curve.method == calibration["method"]
    report = forecast_report(curve, [2000, 20000], target=0.85)
    assert report["method"] == calibration["method"]
    assert report["calibration"]["nominal"] == 0.9
    for entry in report["forecasts"]:
        assert entry["low"] <= entry["score"] <= entry["high"]
    with pytest.raises(ValueError, match="has no calibrated band"):
        fit_curve(
            noisy_points, method="shrink:ipl:0.01" if curve.method != "shrink:ipl:0.01" else "ipl"
        )


def test_calibrated_band_widens_with_the_horizon(noisy_points) -> None:
    curve = fit_curve(noisy_points)
    _, low, high = curve.predict([900, 3000, 7000, 14000, 100000])
    widths = high - low
    assert np.all(np.diff(widths) >= -1e-9) and widths[-1] > widths[0]


def test_shrink_moves_the_base_forecast_toward_the_last_point(noisy_points) -> None:
    bases = fit_bases(validate_points(noisy_points))
    far = np.array([5000.0, 50000.0])
    ipl, shrunk = bases.point("ipl", far), bases.point("shrink:ipl:0.25", far)
    np.testing.assert_allclose(shrunk, bases.last + 0.25 * (ipl - bases.last))
    assert np.all(bases.point("last", far) == bases.last)
    assert abs(ipl[0] - true_score(5000)) < 0.01  # the base itself recovers the true curve


def test_shrink_corrects_only_past_the_data_so_a_reachable_target_keeps_its_labels(
    noisy_points,
) -> None:
    bases = fit_bases(validate_points(noisy_points))
    inside = np.array([100.0, 300.0, bases.n_scale])
    np.testing.assert_allclose(bases.point("shrink:ipl:0.25", inside), bases.point("ipl", inside))
    # a target the data already passed is reached where the fitted curve reaches it, not at
    # the first point a curve pulled toward the last score would reach it
    target = float(true_score(300))
    reached, _, _ = CalibratedForecast(
        "shrink:ipl:0.25", bases, load_calibration()
    ).labels_for_target(target)
    assert reached is not None and 200 <= reached <= 450
    # and the band's optimistic edge does not reach it far below the data, where the families
    # part going backward (the band there is held at its width at the first point)
    _, early, _ = CalibratedForecast("ipl", bases, load_calibration()).labels_for_target(target)
    assert early is not None and early >= 50


@pytest.mark.parametrize("bad", ["cubic", "shrink:ipl", "shrink:ipl:2.5", "shrink:cubic:0.5"])
def test_unknown_methods_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="unknown forecast method"):
        parse_method(bad)


def test_conformal_offsets_cover_fresh_residuals_at_the_nominal_rate() -> None:
    rng = np.random.default_rng(0)

    def draw(size: int) -> tuple[np.ndarray, np.ndarray]:
        ratios = np.exp(rng.uniform(0, np.log(40), size))
        return ratios, rng.normal(-0.01, 0.01 * np.log2(ratios + 1), size)  # biased, wider far out

    bands = conformal_quantiles(*draw(4000), nominal=0.9)
    ratios, residuals = draw(40000)
    offsets = np.array([bands[horizon_bin(r)][:2] for r in ratios])
    inside = (residuals >= offsets[:, 0]) & (residuals <= offsets[:, 1])
    assert 0.88 <= inside.mean() <= 0.95  # >= nominal by construction; a little more where
    # a bin is widened to its nearer neighbour's width (never narrower further out)
    assert all(low < 0 < high for low, high, _ in bands)
    assert [b[1] - b[0] for b in bands] == sorted(b[1] - b[0] for b in bands)


def test_a_sparse_horizon_bin_borrows_its_neighbours() -> None:
    ratios = np.r_[np.full(200, 1.5), np.full(5, 3.0)]
    bands = conformal_quantiles(ratios, np.linspace(-0.1, 0.1, 205))
    assert bands[1][2] >= 30 and len(bands) == len(HORIZON_BINS)


def test_at_labels_bought_sets_the_fit_beside_the_mean_measured_there(noisy_points) -> None:
    from frugal.forecast.curves import at_labels_bought

    points = pd.concat(
        [noisy_points, pd.DataFrame({"n_labels": [1000.0], "score": [0.60]})]  # a 2nd seed
    )
    curve = fit_curve(points)
    here = at_labels_bought(curve, points)
    score, low, high = (float(v[0]) for v in curve.predict([1000]))
    assert here["n_labels"] == 1000
    assert here["forecast"] == pytest.approx(score, abs=1e-6)
    assert here["low"] <= here["forecast"] <= here["high"]
    last = noisy_points["score"].iloc[-1]
    assert here["measured"] == pytest.approx((last + 0.60) / 2, abs=1e-6)


# ------------------------------------------------------------ the shipped model through the proxy
LINK_ALPHA, LINK_BETA = -0.4, 2.0


def proxy_truth(n: np.ndarray | float) -> np.ndarray:
    return 0.8 - 0.6 * np.power(n, -0.35)


def fine_tuned_truth(n: np.ndarray | float) -> np.ndarray:
    return 1 - np.exp(LINK_ALPHA) * np.power(1 - proxy_truth(n), LINK_BETA)


def test_linked_forecast_recovers_the_link_and_carries_the_proxy_forecast_through_it() -> None:
    # given a run's proxy curve (every 50 labels) and fine-tuned points at 1/16, 1/2 and all of 500
    proxy_n = np.arange(50, 501, 50)
    proxy = pd.DataFrame({"n_labels": proxy_n, "score": proxy_truth(proxy_n)})
    fine_n = np.array([31, 250, 500])
    points = pd.DataFrame({"n_labels": fine_n, "score": fine_tuned_truth(fine_n)})
    # when they are linked (31 lies below the proxy curve: not used for the link)
    curve = fit_linked(points, proxy)
    # then the link is the true one, and the forecast is the proxy forecast carried through it
    assert curve.alpha == pytest.approx(LINK_ALPHA, abs=0.05)
    assert curve.beta == pytest.approx(LINK_BETA, abs=0.05)
    far = np.array([500.0, 3766.0])
    score, low, high = curve.predict(far)
    proxy_score, proxy_low, proxy_high = curve.proxy.predict(far)
    np.testing.assert_allclose(score, 1 - np.exp(curve.alpha) * (1 - proxy_score) ** curve.beta)
    assert np.all(low <= score) and np.all(score <= high)
    assert low[1] == pytest.approx(1 - np.exp(curve.alpha) * (1 - proxy_low[1]) ** curve.beta)
    assert score[0] == pytest.approx(fine_tuned_truth(500), abs=0.005)
    # the fine-tuned model's error falls by a larger factor than the proxy's (beta > 1)
    assert (1 - score[1]) / (1 - score[0]) < (1 - proxy_score[1]) / (1 - proxy_score[0])
    report = forecast_report(curve, [3766], target=0.9)
    assert report["method"].startswith("linked:") and report["link"]["beta"] == pytest.approx(
        curve.beta, abs=1e-6
    )


def test_linking_needs_two_points_inside_the_proxy_curve_and_a_rising_link() -> None:
    proxy = pd.DataFrame({"n_labels": [50, 100, 150, 200], "score": [0.5, 0.55, 0.58, 0.6]})
    few = pd.DataFrame({"n_labels": [20, 30, 200], "score": [0.5, 0.6, 0.8]})
    with pytest.raises(DataError, match="at least 2 fine-tuned points within"):
        fit_linked(few, proxy)
    falling = pd.DataFrame({"n_labels": [50, 100, 200], "score": [0.8, 0.75, 0.7]})
    with pytest.raises(DataError, match="do not fall together"):
        fit_linked(falling, proxy)
