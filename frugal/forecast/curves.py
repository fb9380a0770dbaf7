"""Learning-curve forecasting: how good will the model get with more labels, and how many
labels does a target score need (in the style of arXiv 2307.00374).

Pure functions of data -> data: numpy, scipy and pandas only; no Prefect, no MLflow, no I/O.

Two forecasters, both over the curve families of `frugal.forecast.curve_families`:

* the default, chosen on a library of real curves, with a split-conformal band
  (`frugal.forecast.conformal`; `fit_curve(method=None)`);
* the `select` rule below (`fit_curve(method="select")`), used before that library existed.

How the `select` rule forecasts, and why:

* Selection (rolling origin). Each family is fitted on the points before a cut-off and scored
  by its RMSE on all points from the cut-off on, for up to four cut-offs in the upper half of
  the distinct n_labels; its error is the mean. This is a small version of the real task
  (extrapolate, up to 2x here), done on the data at hand instead of trusting one shape.
* Diminishing returns. A short curve cannot tell a saturating shape from one that keeps
  accelerating, and held-out points 2x away do not either. So families whose fit gains more
  per doubling of n_labels as n grows (beyond half the largest n) are dropped before ranking,
  unless none is left. Learning curves flatten in log n; this is a prior, not a fit.
* Parsimony. Families whose held-out error is within the noise floor (half an accuracy point)
  of the best are equally good as far as the data can tell; among them the one with the fewest
  parameters ranks first (then the lower error). A 4-parameter shape wins only by a real
  margin. (Added after our own TREC curve, where pow4 edged out the inverse power law by 0.12
  pt held out and then missed the far points by 3.2 pt; it changes no choice on the four
  published curves.)
* Ensemble. The point forecast is the mean of the ``n_members`` best-ranked families (default
  1) refitted on all points, weighted by 1 / (RMSE + floor)^2; the floor (half an accuracy
  point) stops one lucky fit from taking all the weight. One member is the default because on
  the paper's curves averaging in the runner-up made every forecast worse: the runner-up is
  usually a different shape, not an equally good one. The top ``n_interval_members`` (default
  3) feed the interval instead, where their disagreement belongs.
* Intervals (90%). Widened beyond the data by the model error the bootstrap below cannot see:
  ±1.645 × (held-out RMSE of the interval members, ~one doubling ahead) × sqrt(doublings past
  the largest observed n) — extrapolation errors that add up like a random walk. Without it the
  band covered 11% of IMDb's and 56% of AG News's far points (peer curves); with it, all.
  Residual bootstrap: each replicate draws one interval member (probability
  ∝ its weight), adds resampled standardized residuals of that family to its fitted values,
  refits it and predicts. Drawing the family per replicate puts the disagreement between
  shapes, not only the noise, into the interval. Percentiles 5 and 95, widened if needed to
  contain the point forecast; seeded, so a fit is deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from frugal.errors import DataError
from frugal.forecast.conformal import (
    CALIBRATION_PATH,
    CalibratedForecast,
    fit_bases,
    load_calibration,
)
from frugal.forecast.curve_families import (
    FAMILIES,
    FAMILY_NAMES,
    LABELS_HORIZON,
    evaluate,
    fit_family,
    labels_reaching,
)

REQUIRED_COLUMNS = ("n_labels", "score")
MIN_DISTINCT_LABELS = 3
# Noise floor (score units) added to each held-out RMSE before inverting it into a weight.
_ERROR_FLOOR = 0.005
# Most parameters of any family: the rolling-origin check leaves this many + 1 points to fit.
_MAX_PARAMS = 4
_MAX_CUTOFFS = 4
_INTERVAL = (5.0, 95.0)
_Z90 = 1.645  # two-sided 90% of a normal
_SHOWN = 5
_MIN_ERROR = 1e-4  # error rates are clipped here before a log (a perfect score)


@dataclass(frozen=True)
class FamilyFit:
    """One family fitted on all points, with its held-out error and ensemble weight."""

    family: str
    params: tuple[float, ...]
    holdout_rmse: float
    # Share in the point forecast, and chance of being drawn by a bootstrap replicate.
    weight: float
    interval_weight: float


@dataclass(frozen=True)
class CurveForecast:
    """An ensemble of fitted learning curves with bootstrap replicates for 90% intervals.

    ``members`` hold parameters in the scaled variable ``x = n / n_scale``; ``replicates`` are
    (member index, refitted parameters) pairs, one per successful bootstrap sample.
    """

    n_scale: float
    members: tuple[FamilyFit, ...]
    replicates: tuple[tuple[int, tuple[float, ...]], ...]

    def predict(self, n_labels: Sequence[float] | np.ndarray) -> tuple[np.ndarray, ...]:
        """Forecast (score, low, high) arrays at the given numbers of labels."""
        x = np.asarray(n_labels, dtype=float) / self.n_scale
        if np.any(x <= 0):
            raise ValueError("n_labels must be positive")
        score = np.clip(
            sum(m.weight * evaluate(m.family, m.params, x) for m in self.members), 0.0, 1.0
        )
        draws = [self._replicate_curve(index, params, x) for index, params in self.replicates]
        score, low, high = _band(score, draws)
        # Model error beyond the data, which the bootstrap cannot see (it refits the same
        # shapes): the held-out error of about one doubling, accumulated as a random walk over
        # the doublings past the largest observed n_labels.
        half = _Z90 * self.extrapolation_error * np.sqrt(np.log2(np.maximum(x, 1.0)))
        return (
            score,
            np.clip(np.minimum(low, score - half), 0.0, 1.0),
            np.clip(np.maximum(high, score + half), 0.0, 1.0),
        )

    @property
    def extrapolation_error(self) -> float:
        """Held-out RMSE of the interval members (weighted): how far a forecast one doubling
        past the data missed on this curve itself (0 when too few points to hold any out)."""
        errors = [(m.interval_weight, m.holdout_rmse) for m in self.members if m.interval_weight]
        return float(sum(w * (e if math.isfinite(e) else 0.0) for w, e in errors))

    def max_score(self) -> tuple[float, float, float]:
        """The score the curve levels off at: (score, low, high), each at most 1.0.

        Families with an asymptote give it; the plain power law gives its score at
        ``LABELS_HORIZON`` labels.
        """
        score = sum(m.weight * self._limit(m.family, m.params) for m in self.members)
        draws = [self._limit(self.members[i].family, params) for i, params in self.replicates]
        point, low, high = _band(np.array([min(score, 1.0)]), [np.array([d]) for d in draws])
        return float(point[0]), float(low[0]), float(high[0])

    def labels_for_target(self, target: float) -> tuple[int | None, int | None, int | None]:
        """Smallest n_labels at which the forecast reaches ``target``: (n, low, high).

        ``low`` is where the optimistic (upper) bound reaches it, ``high`` where the pessimistic
        (lower) bound does. Each is None when not reached within ``LABELS_HORIZON`` labels.
        """
        return labels_reaching(self.predict, target)

    def _replicate_curve(self, index: int, params: tuple[float, ...], x: np.ndarray) -> np.ndarray:
        return np.clip(evaluate(self.members[index].family, params, x), 0.0, 1.0)

    def _limit(self, family_name: str, params: tuple[float, ...]) -> float:
        family = FAMILIES[family_name]
        if family.asymptote_index is not None:
            return min(float(params[family.asymptote_index]), 1.0)
        horizon = np.array([LABELS_HORIZON / self.n_scale])
        return min(float(evaluate(family_name, params, horizon)[0]), 1.0)


def validate_points(points: pd.DataFrame) -> pd.DataFrame:
    """Check learning-curve points and return them as float columns ``n_labels, score``,
    sorted by n_labels. Raises `DataError` naming the problem and how to fix it."""
    if not isinstance(points, pd.DataFrame):
        raise DataError(f"learning-curve points must be a table, got {type(points).__name__}")
    missing = [column for column in REQUIRED_COLUMNS if column not in points.columns]
    if missing:
        raise DataError(
            f"missing column(s) {', '.join(repr(c) for c in missing)}: learning-curve points "
            f"need columns n_labels,score (found: {', '.join(map(str, points.columns)) or 'none'})"
        )
    clean = {}
    for column in REQUIRED_COLUMNS:
        values = pd.to_numeric(points[column], errors="coerce").astype(float)
        bad = ~np.isfinite(values.to_numpy())
        if bad.any():
            rows = np.flatnonzero(bad)
            shown = ", ".join(
                f"{points[column].iloc[i]!r} (row {i + 1})" for i in rows[:_SHOWN]
            ) + (", ..." if rows.size > _SHOWN else "")
            raise DataError(f"non-numeric or missing value(s) in column '{column}': {shown}")
        clean[column] = values.to_numpy()
    n_labels, score = clean["n_labels"], clean["score"]
    outside = np.flatnonzero((score < 0.0) | (score > 1.0))
    if outside.size:
        i = outside[0]
        raise DataError(
            f"score {score[i]:g} (row {i + 1}) is outside [0, 1]: scores are fractions "
            "(0.87, not 87)"
        )
    not_positive = np.flatnonzero(n_labels <= 0)
    if not_positive.size:
        i = not_positive[0]
        raise DataError(f"n_labels {n_labels[i]:g} (row {i + 1}) must be positive")
    distinct = np.unique(n_labels)
    if distinct.size < MIN_DISTINCT_LABELS:
        raise DataError(
            f"need at least {MIN_DISTINCT_LABELS} distinct n_labels to fit a learning curve, "
            f"got {distinct.size} ({', '.join(f'{n:g}' for n in distinct)}): "
            "add points measured at more training-set sizes"
        )
    order = np.argsort(n_labels, kind="stable")
    return pd.DataFrame({"n_labels": n_labels[order], "score": score[order]})


def fit_curve(
    points: pd.DataFrame | tuple[Sequence[float], Sequence[float]],
    families: Sequence[str] = FAMILY_NAMES,
    seed: int = 0,
    n_bootstrap: int = 200,
    n_members: int = 1,
    n_interval_members: int = 3,
    method: str | None = None,
) -> CurveForecast | CalibratedForecast:
    """Fit a learning curve to (n_labels, score) points and forecast it.

    ``points`` is a DataFrame with columns n_labels, score (several rows per n_labels allowed)
    or a pair of arrays (n_labels, score).

    ``method`` None (the default) is the one chosen on the development half of a library of
    real curves, with its split-conformal band (`CALIBRATION_PATH`). ``"select"`` is the rule
    used before that library existed: fit every family in ``families``, rank them by held-out
    error (see the module docstring), average the ``n_members`` best for the point forecast and
    mix the ``n_interval_members`` best in a bootstrap interval (``n_bootstrap`` replicates).
    """
    if isinstance(points, pd.DataFrame):
        table = validate_points(points)
    else:
        n_values, score_values = points
        table = validate_points(pd.DataFrame({"n_labels": n_values, "score": score_values}))
    if method == "select":
        return _fit_select(table, families, seed, n_bootstrap, n_members, n_interval_members)
    calibration = load_calibration()
    chosen = calibration["method"] if method is None else method
    if chosen != calibration["method"]:
        raise ValueError(
            f"method {chosen!r} has no calibrated band ({CALIBRATION_PATH.name} holds "
            f"{calibration['method']!r}); use method=None or 'select'"
        )
    return CalibratedForecast(chosen, fit_bases(table), calibration)


def _fit_select(
    table: pd.DataFrame,
    families: Sequence[str],
    seed: int,
    n_bootstrap: int,
    n_members: int,
    n_interval_members: int,
) -> CurveForecast:
    """The `select` rule on validated points (see `fit_curve`)."""
    unknown = [name for name in families if name not in FAMILIES]
    if unknown or not families:
        raise ValueError(f"unknown curve families {unknown}; choose from {', '.join(FAMILIES)}")
    if n_members < 1 or n_interval_members < 1 or n_bootstrap < 0:
        raise ValueError("n_members and n_interval_members must be >= 1, n_bootstrap >= 0")
    n = table["n_labels"].to_numpy()
    y = table["score"].to_numpy()
    n_scale = float(n.max())
    x = n / n_scale

    errors = _holdout_errors(x, y, families)
    fitted = {name: fit_family(FAMILIES[name], x, y) for name in families}
    fitted = {name: params for name, params in fitted.items() if params is not None}
    if not fitted:
        raise DataError("no learning-curve family could be fitted to these points")
    if not errors:
        # Too few points to hold any out: every family that fits is equally good.
        errors = dict.fromkeys(fitted, 0.0)
    candidates = [name for name in errors if name in fitted] or list(fitted)
    # Implausible shapes are used only when no family passes the check.
    plausible = [name for name in candidates if _diminishing_returns(name, fitted[name])]
    # Parsimony: held-out errors closer than the noise floor do not tell families apart, so
    # among those the one with the fewest parameters ranks first.
    best_error = min(errors.get(name, 0.0) for name in plausible or candidates)
    ranked = sorted(
        plausible or candidates,
        key=lambda name: (
            errors.get(name, 0.0) > best_error + _ERROR_FLOOR,
            FAMILIES[name].n_params,
            errors.get(name, 0.0),
        ),
    )
    chosen = ranked[: max(n_members, n_interval_members)]
    inverse = np.array([1.0 / (errors.get(name, 0.0) + _ERROR_FLOOR) ** 2 for name in chosen])
    point_weights = np.where(np.arange(len(chosen)) < n_members, inverse, 0.0)
    point_weights /= point_weights.sum()
    interval_weights = np.where(np.arange(len(chosen)) < n_interval_members, inverse, 0.0)
    interval_weights /= interval_weights.sum()
    members = tuple(
        FamilyFit(
            name,
            tuple(float(p) for p in fitted[name]),
            float(errors.get(name, math.nan)),
            float(weight),
            float(interval_weight),
        )
        for name, weight, interval_weight in zip(
            chosen, point_weights, interval_weights, strict=True
        )
    )
    replicates = _bootstrap(members, x, y, np.random.default_rng(seed), n_bootstrap)
    return CurveForecast(n_scale=n_scale, members=members, replicates=replicates)


def _diminishing_returns(family_name: str, params: Sequence[float]) -> bool:
    """True if the fitted curve gains less with each further doubling of n_labels.

    Learning curves flatten in log n: a fit whose gain per doubling grows beyond the data (a
    near-linear exponential, the plain power law, a sigmoid caught before its bend) is an
    artefact of a short curve, and extrapolating it overshoots. Checked from x = 1/2 (half the
    largest observed n) to 2048 times the largest observed n.
    """
    gains = np.diff(evaluate(family_name, params, np.exp2(np.arange(-1.0, 12.0))))
    return bool(np.all(np.diff(gains) <= 1e-4))


def _band(score: np.ndarray, draws: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Percentile interval of bootstrap draws, widened if needed so low <= score <= high."""
    if not draws:
        return score, score.copy(), score.copy()
    low, high = np.percentile(np.vstack(draws), _INTERVAL, axis=0)
    return score, np.minimum(low, score), np.maximum(high, score)


def _holdout_errors(x: np.ndarray, y: np.ndarray, families: Sequence[str]) -> dict[str, float]:
    """Rolling-origin extrapolation error (RMSE, score units) of each family.

    For up to four cut-offs spread from the middle of the distinct n_labels to the largest (and
    late enough that a 4-parameter family has 5 points to fit), fit on the points before the cut-off
    and score the forecast of all points from it on; a family's error is the mean over
    cut-offs. Families that cannot be fitted at any cut-off are left out of the result.
    """
    distinct = np.unique(x)
    start = max(math.ceil(distinct.size / 2), min(_MAX_PARAMS + 1, distinct.size - 1))
    errors = {}
    # At most _MAX_CUTOFFS cut-offs, spread evenly, to bound the cost on long curves.
    cutoffs = distinct[
        np.unique(np.linspace(start, distinct.size - 1, _MAX_CUTOFFS).round().astype(int))
    ]
    for name in families:
        per_cutoff = []
        for cutoff in cutoffs:
            fit_part = x < cutoff
            params = fit_family(FAMILIES[name], x[fit_part], y[fit_part])
            if params is None:
                continue
            residual = evaluate(name, params, x[~fit_part]) - y[~fit_part]
            per_cutoff.append(float(np.sqrt(np.mean(residual**2))))
        if per_cutoff:
            errors[name] = float(np.mean(per_cutoff))
    return errors


def _bootstrap(
    members: tuple[FamilyFit, ...],
    x: np.ndarray,
    y: np.ndarray,
    rng: np.random.Generator,
    n_bootstrap: int,
) -> tuple[tuple[int, tuple[float, ...]], ...]:
    """Residual-bootstrap replicates: (member index, parameters refitted to resampled data)."""
    # Residuals are standardized by sigma ∝ 1/sqrt(x) so they can move between n_labels, and
    # inflated for the degrees of freedom the fit used up (least-squares residuals are too small).
    scale = np.sqrt(x)
    standardized = []
    for member in members:
        fitted = evaluate(member.family, member.params, x)
        dof = max(x.size - FAMILIES[member.family].n_params, 1)
        standardized.append((fitted, (y - fitted) * scale * math.sqrt(x.size / dof)))
    interval_weights = np.array([member.interval_weight for member in members])
    replicates = []
    for _ in range(n_bootstrap):
        index = int(rng.choice(len(members), p=interval_weights))
        fitted, residuals = standardized[index]
        resampled = fitted + rng.choice(residuals, size=residuals.size, replace=True) / scale
        family = FAMILIES[members[index].family]
        params = fit_family(family, x, np.clip(resampled, 0.0, 1.0), [members[index].params])
        if params is not None:
            replicates.append((index, tuple(float(p) for p in params)))
    return tuple(replicates)


@dataclass(frozen=True)
class LinkedForecast:
    """The fine-tuned model's curve forecast through the proxy's.

    A run measures the frozen-encoder proxy after every annotation round and the fine-tuned
    model at a few shares of the budget. Both improve with the same labels, so their error
    rates are linked: log(1 - fine-tuned) = alpha + beta log(1 - proxy), fitted on the
    fine-tuned points inside the proxy curve's range (the proxy read there by interpolation in
    log n). The proxy curve is forecast by the library-chosen method with its calibrated band
    (proxy curves are one of the two groups that method was chosen on), and the forecast and
    both band edges are carried through the link (increasing for beta > 0)."""

    proxy: CalibratedForecast
    alpha: float
    beta: float

    @property
    def method(self) -> str:
        return f"linked:{self.proxy.method}"

    @property
    def calibration(self) -> Mapping[str, Any]:
        return self.proxy.calibration

    def _through_link(self, proxy_score: np.ndarray) -> np.ndarray:
        error = np.clip(1.0 - np.asarray(proxy_score, dtype=float), _MIN_ERROR, 1.0)
        return np.clip(1.0 - np.exp(self.alpha + self.beta * np.log(error)), 0.0, 1.0)

    def predict(self, n_labels: Sequence[float] | np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple(self._through_link(values) for values in self.proxy.predict(n_labels))

    def max_score(self) -> tuple[float, float, float]:
        return tuple(float(v) for v in self._through_link(np.array(self.proxy.max_score())))

    def labels_for_target(self, target: float) -> tuple[int | None, int | None, int | None]:
        return labels_reaching(self.predict, target)


def fit_linked(points: pd.DataFrame, proxy_points: pd.DataFrame) -> LinkedForecast:
    """`LinkedForecast` of fine-tuned `points` and `proxy_points` (both columns n_labels,
    score). Raises DataError when fewer than 2 distinct fine-tuned n lie inside the proxy
    curve's range, or when the fitted link does not rise (beta <= 0)."""
    fine = validate_points(points).groupby("n_labels")["score"].mean()
    proxy = validate_points(proxy_points)
    proxy_mean = proxy.groupby("n_labels")["score"].mean()
    n_proxy = proxy_mean.index.to_numpy(dtype=float)
    inside = fine[(fine.index >= n_proxy.min()) & (fine.index <= n_proxy.max())]
    if inside.size < 2:
        raise DataError(
            f"linking needs at least 2 fine-tuned points within the proxy curve's range "
            f"({n_proxy.min():.0f}-{n_proxy.max():.0f} labels); got {inside.size}"
        )
    proxy_at = np.interp(np.log(inside.index.to_numpy(float)), np.log(n_proxy), proxy_mean)
    x = np.log(np.clip(1.0 - proxy_at, _MIN_ERROR, 1.0))
    y = np.log(np.clip(1.0 - inside.to_numpy(), _MIN_ERROR, 1.0))
    beta, alpha = np.polyfit(x, y, 1)
    if not np.isfinite(beta) or beta <= 0:
        raise DataError(
            f"the fine-tuned and proxy error rates do not fall together (beta {beta:.3g})"
        )
    curve = fit_curve(proxy)
    assert isinstance(curve, CalibratedForecast)
    return LinkedForecast(curve, float(alpha), float(beta))


# Ways to forecast the shipped (fine-tuned) model's curve from what a run measures: its points
# (columns n_labels, score) and the proxy's annotation curve (the same columns). Compared on
# development curves by benchmarks/finetuned_curves.py, which chose `points`: what the forecast
# stage does (`fit_curve` on the learning_curve stage's points; tests/unit/test_default_choices.py).
SHAPES: dict[str, Callable[[pd.DataFrame, pd.DataFrame], CalibratedForecast | LinkedForecast]] = {
    "points": lambda points, proxy: fit_curve(points[["n_labels", "score"]]),
    "linked": lambda points, proxy: fit_linked(points, proxy[["n_labels", "score"]]),
}


def forecast_report(
    curve: CurveForecast | CalibratedForecast | LinkedForecast,
    at: Sequence[int],
    target: float | None = None,
) -> dict[str, Any]:
    """The forecast as plain JSON data: scores at `at`, the maximum reachable score and, with
    a `target`, the labels it needs (n_labels None when out of reach), each with its 90%
    interval. This is the `frugal forecast` output contract."""
    score, low, high = curve.predict(list(at))
    best, best_low, best_high = curve.max_score()
    report: dict[str, Any] = {
        "forecasts": [
            {"n_labels": int(n), "score": _round(s), "low": _round(lo), "high": _round(hi)}
            for n, s, lo, hi in zip(at, score, low, high, strict=True)
        ],
        "max_score": {"score": _round(best), "low": _round(best_low), "high": _round(best_high)},
    }
    if isinstance(curve, CalibratedForecast | LinkedForecast):
        calibration = curve.calibration
        report["method"] = curve.method
        report["calibration"] = {
            key: calibration.get(key)
            for key in ("nominal", "chosen_on", "task", "conformal", "scaled")
        } | {
            "file": CALIBRATION_PATH.relative_to(CALIBRATION_PATH.parents[2]).as_posix(),
            "bands": calibration["bins"],
        }
    if isinstance(curve, LinkedForecast):
        report["link"] = {"alpha": _round(curve.alpha), "beta": _round(curve.beta),
                          "proxy_method": curve.proxy.method}  # fmt: skip
    elif not isinstance(curve, CalibratedForecast):
        report["method"] = "select"
        report["calibration"] = {"nominal": 0.9, "interval": "residual bootstrap, widened"}
    if target is not None:
        n_labels, fewest, most = curve.labels_for_target(target)
        report["labels_for_target"] = {
            "target": target,
            "n_labels": n_labels,
            "low": fewest,
            "high": most,
        }
    return report


def at_labels_bought(
    curve: CurveForecast | CalibratedForecast | LinkedForecast, points: pd.DataFrame
) -> dict:
    """The fitted curve where it was measured last (the most labels among `points`, columns
    n_labels and score) beside the mean score measured there: how far the fit sits from the
    data at the labels bought."""
    n = int(points["n_labels"].max())
    score, low, high = (float(v[0]) for v in curve.predict([n]))
    measured = float(points.loc[points["n_labels"] == n, "score"].mean())
    return {"n_labels": n, "forecast": _round(score), "low": _round(low), "high": _round(high),
            "measured": _round(measured)}  # fmt: skip


def _round(value: float) -> float:
    return round(float(value), 6)
