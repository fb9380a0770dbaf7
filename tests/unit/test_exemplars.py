"""Which old examples a continual update keeps: per-class budgets and herding's order."""

from __future__ import annotations

import numpy as np

from frugal.continual.exemplars import herding_order, memory_budget


def test_each_class_keeps_its_share_and_at_least_one():
    assert memory_budget({"A": 100, "B": 7, "C": 1}, 0.1) == {"A": 10, "B": 1, "C": 1}


def test_herding_tracks_the_mean_closer_than_random_choices():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(300, 16)) + np.linspace(0, 3, 16)
    order = herding_order(features, 20)
    assert len(set(order.tolist())) == 20  # no row twice
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    target = unit.mean(axis=0)
    herded = np.linalg.norm(unit[order].mean(axis=0) - target)
    random = [
        np.linalg.norm(unit[rng.choice(300, 20, replace=False)].mean(axis=0) - target)
        for _ in range(50)
    ]
    assert herded < min(random)


def test_herding_stops_at_the_rows_there_are():
    assert sorted(herding_order(np.eye(3), 10).tolist()) == [0, 1, 2]
