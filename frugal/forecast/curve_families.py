"""Learning-curve shapes: eight parametric families of score(n), and the weighted
least-squares fit both forecasters use (`frugal.forecast.curves`' `select` rule and the library-chosen
method of `frugal.forecast.conformal`).

Each family is fitted in the scaled variable ``x = n / n_scale`` (``n_scale`` = largest observed
n_labels), which makes the initial guesses and bounds independent of the data-set size. Scores
are fractions, so every asymptote is bounded to [0, 1]. ``curve_fit`` gets ``sigma ∝ 1/sqrt(n)``
(squared residuals weighted ∝ n): the run-to-run noise of a score shrinks as the training set
grows, and the later points sit closest to the regime we extrapolate into.

Pure: numpy and scipy only.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit

# Largest training-set size (labels) we forecast to: "out of reach" means not reached by here,
# and families without an asymptote report their score here as their maximum.
LABELS_HORIZON = 1e7
_GRID_POINTS = 4000

CurveFunction = Callable[..., np.ndarray]


@dataclass(frozen=True)
class CurveFamily:
    """A parametric learning-curve shape in the scaled variable x = n / n_scale."""

    name: str
    function: CurveFunction
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    # Starting points for the fit, from the observed curve (x, y); the best fit among them wins.
    initial_guesses: Callable[[np.ndarray, np.ndarray], list[tuple[float, ...]]]
    # Index of the parameter that is the limit for n -> infinity; None if the curve has no limit.
    asymptote_index: int | None

    @property
    def n_params(self) -> int:
        return len(self.lower)


def _power_law(x: np.ndarray, a: float, b: float) -> np.ndarray:
    return a * np.power(x, b)


def _inverse_power_law(x: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    return a - b * np.power(x, -c)


def _pow4(x: np.ndarray, a: float, b: float, c: float, d: float) -> np.ndarray:
    return a - np.power(b * x + c, -d)


def _exp_saturation(x: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    return a - b * np.exp(-c * x)


def _log_power(x: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    return a / (1.0 + np.power(x / np.exp(b), c))


def _mmf(x: np.ndarray, a: float, b: float, c: float, d: float) -> np.ndarray:
    xd = np.power(x, d)
    return (a * b + c * xd) / (b + xd)


def _weibull(x: np.ndarray, a: float, b: float, c: float, d: float) -> np.ndarray:
    return a - b * np.exp(-c * np.power(x, d))


def _janoschek(x: np.ndarray, a: float, b: float, c: float, d: float) -> np.ndarray:
    return a - (a - b) * np.exp(-c * np.power(x, d))


def _curve_summary(y: np.ndarray) -> tuple[float, float]:
    """Score at the largest n (x = 1) and the rise seen over the observed range."""
    last = float(y[-1])
    return last, max(last - float(y[0]), 0.01)


def _guess_power_law(x: np.ndarray, y: np.ndarray) -> list[tuple[float, ...]]:
    last, _ = _curve_summary(y)
    return [(last, 0.1), (last, 0.3)]


def _guess_inverse_power_law(x: np.ndarray, y: np.ndarray) -> list[tuple[float, ...]]:
    last, _ = _curve_summary(y)
    return [(last + gap, gap, c) for gap, c in ((0.02, 1.0), (0.1, 0.5), (0.3, 0.2))]


def _guess_pow4(x: np.ndarray, y: np.ndarray) -> list[tuple[float, ...]]:
    last, _ = _curve_summary(y)
    # With c = 1 the curve passes near `last` at x = 1 when (b + 1)^(-d) = gap.
    return [(last + gap, gap ** (-1.0 / d) - 1.0, 1.0, d) for gap, d in ((0.03, 1.0), (0.1, 0.5))]


def _guess_exp_saturation(x: np.ndarray, y: np.ndarray) -> list[tuple[float, ...]]:
    last, rise = _curve_summary(y)
    return [(last + 0.01, 2.0 * rise, 3.0), (last + 0.05, rise, 1.0)]


def _guess_log_power(x: np.ndarray, y: np.ndarray) -> list[tuple[float, ...]]:
    last, _ = _curve_summary(y)
    guesses = []
    for gap in (0.02, 0.1):
        a = last + gap
        # At x = 1 with c = -1: a / (1 + e^b) = last.
        guesses.append((a, math.log(max(a / max(last, 1e-3) - 1.0, 1e-6)), -1.0))
    return guesses


def _guess_mmf(x: np.ndarray, y: np.ndarray) -> list[tuple[float, ...]]:
    last, _ = _curve_summary(y)
    guesses = []
    for gap, d in ((0.03, 1.0), (0.1, 0.5)):
        start, limit = 0.5 * float(y[0]), last + gap
        # At x = 1: (start * b + limit) / (b + 1) = last.
        guesses.append((start, (limit - last) / max(last - start, 1e-3), limit, d))
    return guesses


def _guess_weibull(x: np.ndarray, y: np.ndarray) -> list[tuple[float, ...]]:
    last, rise = _curve_summary(y)
    return [(last + 0.02, 2.0 * rise, 3.0, 1.0), (last + 0.1, rise, 1.0, 0.5)]


def _guess_janoschek(x: np.ndarray, y: np.ndarray) -> list[tuple[float, ...]]:
    last, _ = _curve_summary(y)
    return [(last + 0.02, 0.0, 3.0, 1.0), (last + 0.1, 0.5 * float(y[0]), 1.0, 0.5)]


FAMILIES: dict[str, CurveFamily] = {
    family.name: family
    for family in (
        CurveFamily("power_law", _power_law, (1e-6, 0.0), (1.0, 3.0), _guess_power_law, None),
        CurveFamily(
            "inverse_power_law",
            _inverse_power_law,
            (0.0, 0.0, 0.0),
            (1.0, 10.0, 5.0),
            _guess_inverse_power_law,
            0,
        ),
        CurveFamily("pow4", _pow4, (0.0, 0.0, 1e-8, 0.0), (1.0, 1e6, 1e4, 5.0), _guess_pow4, 0),
        CurveFamily(
            "exp_saturation",
            _exp_saturation,
            (0.0, 0.0, 0.0),
            (1.0, 5.0, 50.0),
            _guess_exp_saturation,
            0,
        ),
        CurveFamily(
            "log_power",
            _log_power,
            (0.0, -30.0, -10.0),
            (1.0, 30.0, 0.0),
            _guess_log_power,
            0,
        ),
        CurveFamily("mmf", _mmf, (0.0, 1e-8, 0.0, 0.0), (1.0, 1e6, 1.0, 10.0), _guess_mmf, 2),
        CurveFamily(
            "weibull",
            _weibull,
            (0.0, 0.0, 0.0, 0.0),
            (1.0, 5.0, 100.0, 10.0),
            _guess_weibull,
            0,
        ),
        CurveFamily(
            "janoschek",
            _janoschek,
            (0.0, 0.0, 0.0, 0.0),
            (1.0, 1.0, 100.0, 10.0),
            _guess_janoschek,
            0,
        ),
    )
}
FAMILY_NAMES: tuple[str, ...] = tuple(FAMILIES)


def evaluate(family_name: str, params: Sequence[float], x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        values = FAMILIES[family_name].function(x, *params)
    return np.nan_to_num(np.asarray(values, dtype=float), nan=0.0, posinf=1.0, neginf=0.0)


def fit_family(
    family: CurveFamily,
    x: np.ndarray,
    y: np.ndarray,
    starts: list[tuple[float, ...]] | None = None,
) -> np.ndarray | None:
    """Weighted least-squares fit from several starts; the lowest cost wins. None on failure.

    A family needs at least as many distinct x as it has parameters, or it would interpolate.
    """
    if np.unique(x).size < family.n_params:
        return None
    lower, upper = np.array(family.lower), np.array(family.upper)
    span = upper - lower
    sigma = 1.0 / np.sqrt(x)
    best, best_cost = None, np.inf
    for start in starts if starts is not None else family.initial_guesses(x, y):
        p0 = np.clip(
            np.nan_to_num(np.array(start, dtype=float)), lower + 1e-6 * span, upper - 1e-6 * span
        )
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore", OptimizeWarning)
                params, _ = curve_fit(
                    family.function, x, y, p0=p0, sigma=sigma, bounds=(lower, upper), maxfev=2000
                )
        except (RuntimeError, ValueError, FloatingPointError):
            continue
        residual = (evaluate(family.name, params, x) - y) / sigma
        cost = float(residual @ residual)
        if np.isfinite(cost) and cost < best_cost:
            best, best_cost = params, cost
    return best


def labels_reaching(
    predict: Callable[[np.ndarray], tuple[np.ndarray, ...]], target: float
) -> tuple[int | None, int | None, int | None]:
    grid = np.geomspace(1.0, LABELS_HORIZON, _GRID_POINTS)
    score, low, high = predict(grid)

    def first_reaching(curve: np.ndarray) -> int | None:
        reached = np.flatnonzero(curve >= target)
        return int(math.ceil(grid[reached[0]])) if reached.size else None

    return first_reaching(score), first_reaching(high), first_reaching(low)
