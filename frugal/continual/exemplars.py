"""Which old examples a continual update keeps (its memory), per class and within a budget.

* `random`: a seeded random share of each class.
* `fisher` (CCFI): the examples with the largest trace of the head's Fisher information,
  (1 − ‖p‖²)(‖h‖² + 1): the class's boundary questions.
* `mixed`: a share of typical examples chosen by herding (iCaRL, Rebuffi et al. 2017: each
  next exemplar brings the mean of those chosen closest to the class mean of the normalised
  features the head reads), the rest by the Fisher trace. Boundary exemplars alone leave a
  class's typical questions out of memory, and the class drifts when a neighbour arrives.

Pure: data frames, models and arrays in, data frames out; no Prefect, MLflow or files.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal

import numpy as np
import pandas as pd

from frugal.model.fisher import fisher_trace_scores, head_inputs
from frugal.model.modeling import Classifier, token_batches

MemoryKind = Literal["none", "random", "fisher", "mixed"]


def memory_budget(counts: Mapping[str, int], fraction: float) -> dict[str, int]:
    """Exemplars kept per class: `fraction` of its examples, at least one."""
    return {label: max(1, math.floor(fraction * n)) for label, n in counts.items()}


def head_view(clf: Classifier, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The features the head reads (texts × hidden) and its class probabilities."""
    return head_inputs(clf.model, token_batches(clf, texts, 64))


def herding_order(features: np.ndarray, size: int) -> np.ndarray:
    """Indices of `size` rows of `features` chosen by herding on their L2-normalised values:
    each next one makes the running mean of those chosen closest to the mean of all."""
    x = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    target = x.mean(axis=0)
    chosen: list[int] = []
    total = np.zeros_like(target)
    available = np.ones(len(x), dtype=bool)
    for k in range(1, min(size, len(x)) + 1):
        distance = np.linalg.norm(target - (total + x) / k, axis=1)
        distance[~available] = np.inf
        best = int(np.argmin(distance))
        chosen.append(best)
        total += x[best]
        available[best] = False
    return np.asarray(chosen, dtype=int)


def select_exemplars(
    data: pd.DataFrame,
    fraction: float,
    kind: MemoryKind,
    scores: np.ndarray | None = None,
    features: np.ndarray | None = None,
    typical_share: float = 0.5,
    seed: int = 0,
) -> pd.DataFrame:
    """Per class, `fraction` of its rows (at least one): random; the highest Fisher `scores`;
    or (mixed) `typical_share` of the budget by herding on `features`, the rest by `scores`."""
    if kind == "none":
        return data.iloc[:0]
    budget = memory_budget(data["label"].astype(str).value_counts().to_dict(), fraction)
    rng = np.random.default_rng(seed)
    kept: list[int] = []
    for label, rows in data.groupby(data["label"].astype(str)).indices.items():
        size = budget[label]
        if kind == "random":
            chosen = rng.choice(rows, size=size, replace=False)
        elif kind == "fisher":
            chosen = rows[np.argsort(-scores[rows], kind="stable")[:size]]
        elif kind == "mixed":
            typical = rows[herding_order(features[rows], round(typical_share * size))]
            rest = np.setdiff1d(rows, typical)
            boundary = rest[np.argsort(-scores[rest], kind="stable")[: size - len(typical)]]
            chosen = np.concatenate([typical, boundary])
        else:
            raise ValueError(f"unknown memory kind {kind!r}")
        kept.extend(chosen.tolist())
    return data.iloc[sorted(kept)].reset_index(drop=True)


def keep_exemplars(
    kind: MemoryKind,
    clf: Classifier,
    data: pd.DataFrame,
    fraction: float,
    typical_share: float,
    seed: int,
) -> pd.DataFrame:
    """The exemplars of `data` (one step's arrivals) kept after training on it, scored under
    the model just trained (`clf`)."""
    if kind in ("none", "random"):
        return select_exemplars(data, fraction, kind, seed=seed)
    features, probs = head_view(clf, data["text"].tolist())
    scores = fisher_trace_scores(probs, features)
    return select_exemplars(data, fraction, kind, scores, features, typical_share, seed)
