"""The library-chosen forecast and its split-conformal 90% band.

`benchmarks/forecast_library.py` chooses a forecast method on the development halves of a library
of real learning curves (LCDB's classical learners, and the frozen-encoder proxy curves of eight
packaged text data sets) and calibrates a split-conformal band per horizon ratio (forecast n /
largest fitted n) on those halves' residuals; it writes both to
`CALIBRATION_PATH`. `CalibratedForecast` applies them to a new curve: the method's point
forecast, plus the calibrated offsets of its horizon bin (optionally in units of the families'
disagreement at n).

Pure: numpy and pandas only; the calibration file is read, never written, here.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from frugal.forecast.curve_families import (
    FAMILIES,
    FAMILY_NAMES,
    LABELS_HORIZON,
    evaluate,
    fit_family,
    labels_reaching,
)

# The method `fit_curve` uses and its conformal band: chosen and calibrated on the development
# half of a library of real curves by benchmarks/forecast_library.py, which writes this file.
CALIBRATION_PATH = Path(__file__).with_name("calibration.json")
# Horizon ratio bins (forecast n / largest fitted n) of the conformal band, log2-spaced.
HORIZON_BINS: tuple[tuple[float, float], ...] = (
    (0.0, 2.0), (2.0, 4.0), (4.0, 8.0), (8.0, 16.0), (16.0, math.inf),
)  # fmt: skip
_MIN_BIN_RESIDUALS = 30
# A scaled band's unit: the families' disagreement at n plus this floor (one accuracy point).
SCALE_FLOOR = 0.01
_PAPER_FAMILIES = ("exp_saturation", "inverse_power_law", "pow4")

_BASES = ("last", "ipl", "paper", "mean", "median", *FAMILY_NAMES)


def parse_method(method: str) -> tuple[str, float]:
    """A forecast method -> (base, alpha). Bases: `last` (the score at the largest n), `ipl`
    (the inverse power law), `paper` (mean of exponential, inverse power and pow4: the ensemble
    of arXiv 2307.00374), `mean` / `median` of every family that fits, or one family by name. `shrink:<base>:<alpha>` is last + alpha *
    (base - last), a correction of the base's gain beyond the last measured point (alpha < 1
    trusts the extrapolation less, > 1 more)."""
    base, alpha = method, 1.0
    if method.startswith("shrink:") and method.count(":") == 2:
        _, base, share = method.split(":")
        try:
            alpha = float(share)
        except ValueError:
            alpha = math.nan
    if base not in _BASES or not 0.0 <= alpha <= 2.0:
        raise ValueError(
            f"unknown forecast method {method!r}: use one of {', '.join(_BASES)}, or "
            "shrink:<one of those>:<alpha in [0, 2]>"
        )
    return base, alpha


@dataclass(frozen=True)
class BaseFits:
    """The fits every forecast method is made of, done once per curve: the last point's score
    and every family fitted alone."""

    n_scale: float
    last: float
    params: dict[str, tuple[float, ...]]
    n_first: float = 0.0  # the smallest measured n

    def scale(self, n_at: Sequence[float] | np.ndarray) -> np.ndarray:
        """How uncertain a forecast at n_at is, in score units: the standard deviation of the
        fitted families' forecasts there (they agree near the data and part further out),
        plus SCALE_FLOOR. The unit of a scaled conformal band. Below the smallest measured n it
        is held at its value there: the families part again going backward, a direction no
        calibration measured."""
        x = np.maximum(np.asarray(n_at, dtype=float), self.n_first) / self.n_scale
        curves = [np.clip(evaluate(f, p, x), 0.0, 1.0) for f, p in self.params.items()]
        spread = np.std(curves, axis=0) if len(curves) > 1 else np.zeros(x.shape)
        return spread + SCALE_FLOOR

    def point(self, method: str, n_at: Sequence[float] | np.ndarray) -> np.ndarray:
        """Point forecast of `method` at n_at. Ensembles use the families that could be
        fitted; a base that cannot be fitted at all falls back to `last`."""
        base, alpha = parse_method(method)
        n_at = np.asarray(n_at, dtype=float)
        x = n_at / self.n_scale
        members = {
            "ipl": ("inverse_power_law",),
            "paper": _PAPER_FAMILIES,
            "mean": FAMILY_NAMES,
            "median": FAMILY_NAMES,
        }.get(base, (base,))
        curves = [
            np.clip(evaluate(f, self.params[f], x), 0.0, 1.0) for f in members if f in self.params
        ]
        if not curves:
            return np.full(n_at.shape, self.last)
        values = np.median(curves, axis=0) if base == "median" else np.mean(curves, axis=0)
        # The correction is of the gain beyond the data: within it, the fitted curve itself
        # (shrinking there would pull every point toward the last one).
        beyond = n_at > self.n_scale
        values = np.where(beyond, self.last + alpha * (values - self.last), values)
        return np.clip(values, 0.0, 1.0)


def fit_bases(table: pd.DataFrame) -> BaseFits:
    """`BaseFits` of validated points (columns n_labels, score)."""
    n = table["n_labels"].to_numpy(dtype=float)
    y = table["score"].to_numpy(dtype=float)
    n_scale = float(n.max())
    params = {}
    for name in FAMILY_NAMES:
        fitted = fit_family(FAMILIES[name], n / n_scale, y)
        if fitted is not None:
            params[name] = tuple(float(p) for p in fitted)
    return BaseFits(n_scale, float(y[n == n_scale].mean()), params, float(n.min()))


def horizon_bin(ratio: float) -> int:
    """Index into HORIZON_BINS of a horizon ratio (forecast n / largest fitted n)."""
    for index, (_, high) in enumerate(HORIZON_BINS):
        if ratio <= high:
            return index
    return len(HORIZON_BINS) - 1


def conformal_quantiles(
    ratios: np.ndarray, residuals: np.ndarray, nominal: float = 0.9
) -> list[tuple[float, float, int]]:
    """Split-conformal band offsets per horizon bin: (low, high, n) with
    P(low <= truth - forecast <= high) >= nominal for a new curve like these (exchangeable).

    Each tail gets (1 - nominal) / 2, with the finite-sample rank ceil((n + 1)(1 - tail)).
    A bin with fewer than 30 residuals borrows its nearer neighbour's. Bands never narrow as
    the horizon grows (cumulative widest), since a forecast further out is never safer.
    """
    tail = (1.0 - nominal) / 2
    bins = np.array([horizon_bin(r) for r in ratios])
    out: list[tuple[float, float, int]] = []
    for index in range(len(HORIZON_BINS)):
        chosen = residuals[bins == index]
        reach = 1  # bins borrowed on each side
        while chosen.size < _MIN_BIN_RESIDUALS and reach < len(HORIZON_BINS):
            chosen, reach = residuals[np.abs(bins - index) <= reach], reach + 1
        ordered = np.sort(chosen)
        size = ordered.size
        high_rank = min(math.ceil((size + 1) * (1 - tail)), size) - 1
        low_rank = max(math.floor((size + 1) * tail), 1) - 1
        out.append((float(ordered[low_rank]), float(ordered[high_rank]), int(size)))
    widest = []
    low, high = 0.0, 0.0
    for lo, hi, size in out:
        low, high = min(low, lo), max(high, hi)
        widest.append((round(low, 6), round(high, 6), size))
    return widest


def load_calibration(path: Path = CALIBRATION_PATH) -> dict[str, Any]:
    """The chosen method and its conformal band (see CALIBRATION_PATH)."""
    calibration = json.loads(path.read_text(encoding="utf-8"))
    parse_method(calibration["method"])
    if len(calibration["bins"]) != len(HORIZON_BINS):
        raise ValueError(f"{path}: {len(calibration['bins'])} bins, expected {len(HORIZON_BINS)}")
    return calibration


@dataclass(frozen=True)
class CalibratedForecast:
    """A forecast by the library-chosen method with its split-conformal 90% band."""

    method: str
    bases: BaseFits
    calibration: Mapping[str, Any]  # `load_calibration()`: per-bin offsets, scaled or not

    @property
    def n_scale(self) -> float:
        return self.bases.n_scale

    def fitted(self) -> dict[str, Any]:
        """The fitted curve as JSON data, exactly (`from_fitted` rebuilds the same forecast):
        what the forecast stage writes, so that later readers need not fit it again."""
        b = self.bases
        params = {family: list(values) for family, values in b.params.items()}
        return {"method": self.method, "n_scale": b.n_scale, "last": b.last, "n_first": b.n_first,
                "params": params}  # fmt: skip

    @classmethod
    def from_fitted(cls, fitted: Mapping[str, Any]) -> CalibratedForecast:
        """The forecast `fitted()` wrote, with the packaged calibration of its method."""
        calibration = load_calibration()
        if fitted["method"] != calibration["method"]:
            raise ValueError(
                f"the curve was fitted with {fitted['method']!r}, but {CALIBRATION_PATH.name} "
                f"calibrates {calibration['method']!r}: rerun the forecast stage"
            )
        params = {family: tuple(values) for family, values in fitted["params"].items()}
        bases = BaseFits(fitted["n_scale"], fitted["last"], params, fitted["n_first"])
        return cls(fitted["method"], bases, calibration)

    def predict(self, n_labels: Sequence[float] | np.ndarray) -> tuple[np.ndarray, ...]:
        """Forecast (score, low, high) arrays at the given numbers of labels."""
        n_at = np.asarray(n_labels, dtype=float)
        if np.any(n_at <= 0):
            raise ValueError("n_labels must be positive")
        score = self.bases.point(self.method, n_at)
        bins = self.calibration["bins"]
        offsets = np.array(
            [(bins[b]["low"], bins[b]["high"]) for b in map(horizon_bin, n_at / self.n_scale)]
        )
        if self.calibration.get("scaled", False):  # in units of the families' disagreement
            offsets = offsets * self.bases.scale(n_at)[:, None]
        low = np.clip(score + offsets[:, 0], 0.0, 1.0)
        high = np.clip(score + offsets[:, 1], 0.0, 1.0)
        return score, np.minimum(low, score), np.maximum(high, score)

    def max_score(self) -> tuple[float, float, float]:
        """The score at LABELS_HORIZON labels (the curve's level), with its band."""
        score, low, high = self.predict([LABELS_HORIZON])
        return float(score[0]), float(low[0]), float(high[0])

    def labels_for_target(self, target: float) -> tuple[int | None, int | None, int | None]:
        """As `frugal.forecast.curves.CurveForecast.labels_for_target`."""
        return labels_reaching(self.predict, target)
