"""The split-conformal band of the library-chosen forecast: method names, horizon bins and the
finite-sample quantiles that give the band its coverage."""

from __future__ import annotations

import numpy as np
import pytest

from frugal.forecast.conformal import (
    HORIZON_BINS,
    conformal_quantiles,
    horizon_bin,
    load_calibration,
    parse_method,
)


def test_method_names_parse_to_a_base_and_a_shrinkage():
    assert parse_method("ipl") == ("ipl", 1.0)
    assert parse_method("shrink:paper:0.5") == ("paper", 0.5)
    for bad in ("nope", "shrink:ipl:3", "shrink:ipl:x", "shrink:nope:0.5"):
        with pytest.raises(ValueError, match="unknown forecast method"):
            parse_method(bad)


def test_every_ratio_falls_in_one_horizon_bin_in_order():
    ratios = [0.5, 1.0, 1.5, 2.5, 4.0, 8.0, 16.0, 1e9]
    bins = [horizon_bin(r) for r in ratios]
    assert bins == sorted(bins) and bins[-1] == len(HORIZON_BINS) - 1
    assert all(0 <= b < len(HORIZON_BINS) for b in bins)


def test_the_band_covers_the_nominal_share_of_new_residuals():
    # given residuals of many curves like these (exchangeable), in every horizon bin
    rng = np.random.default_rng(0)
    high_edges = [min(high, 100.0) for _, high in HORIZON_BINS]
    ratios = rng.choice(high_edges, size=4000)
    residuals = rng.normal(0.0, 0.02, size=4000)
    band = conformal_quantiles(ratios, residuals, nominal=0.9)
    # then a fresh draw lands inside about 90% of the time, in each bin
    fresh = rng.normal(0.0, 0.02, size=20000)
    for low, high, size in band:
        assert size >= 30
        inside = np.mean((fresh >= low) & (fresh <= high))
        assert 0.88 <= inside <= 0.95


def test_the_band_never_narrows_further_out():
    rng = np.random.default_rng(1)
    ratios = np.repeat([min(h, 100.0) for _, h in HORIZON_BINS], 50)
    scale = np.repeat(np.linspace(0.05, 0.01, len(HORIZON_BINS)), 50)  # narrower far out
    band = conformal_quantiles(ratios, rng.normal(0.0, 1.0, ratios.size) * scale)
    lows, highs = [b[0] for b in band], [b[1] for b in band]
    assert lows == sorted(lows, reverse=True) and highs == sorted(highs)


def test_the_packaged_calibration_names_a_method_that_parses():
    calibration = load_calibration()
    parse_method(calibration["method"])
    assert calibration["nominal"] == 0.9 and calibration["bins"]
