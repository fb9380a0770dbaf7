"""Sampling strategies pick what they should, on hand-made cases and on embeddings of real TREC
questions (by the tiny random encoder: that paraphrases embed close needs the real one,
tests/e2e/test_pretrained_model.py)."""

import numpy as np
import pytest

from frugal.errors import DataError
from frugal.labels.sampling import (
    STRATEGIES,
    badge_select,
    cal_scores,
    cold_start,
    fit_proxy,
    kcenter_greedy,
    margin_scores,
    run_rounds,
    select_batch,
    standardize,
)
from frugal.model.fisher import fisher_trace_scores
from frugal.model.modeling import embed_texts
from tests.unit.conftest import TINY_ENCODER


@pytest.fixture(scope="module")
def embedded(trec_sample):
    """Real pool and dev questions with their (tiny) encoder embeddings (standardised)."""
    pool, dev = trec_sample["pool"].reset_index(drop=True), trec_sample["dev"]
    raw_pool = embed_texts(pool["text"].tolist(), max_length=48)
    raw_dev = embed_texts(dev["text"].tolist(), max_length=48)
    features, dev_features = standardize(raw_pool, raw_dev)
    return pool, features, dev, dev_features, raw_pool


def test_embeddings_are_unit_length_one_row_per_text_as_wide_as_the_encoder():
    e = embed_texts(
        ["Who wrote Hamlet?", "Who is the author of Hamlet?", "How tall is Mount Everest?"],
        max_length=48,
    )
    assert e.shape == (3, TINY_ENCODER["hidden_size"])
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-3)  # float16 grid
    assert embed_texts([], max_length=48).shape == (0, TINY_ENCODER["hidden_size"])


def test_margin_prefers_the_ambiguous_example():
    probs = np.array([[0.9, 0.05, 0.05], [0.45, 0.44, 0.11], [0.6, 0.3, 0.1]])
    assert np.argmax(margin_scores(probs)) == 1


def test_margin_takes_the_real_question_the_proxy_is_least_sure_about(embedded):
    pool, features, *_ = embedded
    labeled = np.zeros(len(pool), dtype=bool)
    labeled[: len(pool) // 2] = True
    proxy = fit_proxy(features[labeled], pool["label"].to_numpy()[labeled], 1.0)
    chosen = select_batch("margin", proxy, features, labeled, 1, np.random.default_rng(0))
    probs = np.sort(proxy.predict_proba(features), axis=1)
    gaps = probs[:, -1] - probs[:, -2]
    assert not labeled[chosen[0]]
    assert gaps[chosen[0]] == pytest.approx(gaps[~labeled].min())


def test_fisher_score_equals_the_expected_squared_gradient_norm():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(4), size=5)
    x = rng.normal(size=(5, 3))
    x1 = np.hstack([x, np.ones((5, 1))])
    expected = [
        sum(p[y] * np.sum(np.outer(p - np.eye(4)[y], xi) ** 2) for y in range(4))
        for p, xi in zip(probs, x1, strict=True)
    ]
    np.testing.assert_allclose(fisher_trace_scores(probs, x), expected)


def test_kcenter_spreads_out():
    # two tight clusters far apart, plus one labeled point in the left cluster
    left = np.array([[0.0, 0.0], [0.1, 0.0], [0.0, 0.1]])
    right = np.array([[10.0, 10.0], [10.1, 10.0], [10.0, 10.1]])
    features = np.vstack([left, right])
    labeled = np.array([True, False, False, False, False, False])
    chosen = kcenter_greedy(features, labeled, 1, np.random.default_rng(0))
    assert chosen[0] >= 3  # goes to the far cluster first


def test_kcenter_on_real_embeddings_covers_more_than_random(embedded):
    pool, features, *_ = embedded
    labeled = np.zeros(len(pool), dtype=bool)
    rng = np.random.default_rng(0)
    spread = kcenter_greedy(features, labeled, 12, rng)
    random = rng.choice(len(pool), size=12, replace=False)

    def covering_radius(centres: np.ndarray) -> float:
        d = ((features[:, None, :] - features[None, centres, :]) ** 2).sum(-1)
        return float(d.min(axis=1).max())

    assert len(set(spread.tolist())) == 12
    assert covering_radius(spread) < covering_radius(random)


def test_badge_picks_a_large_gradient_first_and_no_duplicates():
    rng = np.random.default_rng(0)
    probs = np.array([[0.98, 0.02], [0.5, 0.5], [0.97, 0.03], [0.6, 0.4], [0.99, 0.01]])
    features = rng.normal(size=(5, 3))
    features[1] *= 3  # the uncertain example also has the largest features
    chosen = badge_select(probs, features, np.arange(5), 3, rng)
    assert chosen[0] == 1
    assert len(set(chosen.tolist())) == 3


def test_cal_prefers_the_candidate_read_unlike_its_labeled_neighbours():
    # Two candidates among labeled neighbours that the proxy reads as class 0: candidate 3 is
    # read as class 1 there (contrastive), candidate 4 agrees with them.
    features = np.array(
        [[0.0, 0.0], [0.1, 0.0], [0.0, 0.1], [0.05, 0.05], [0.06, 0.04], [9.0, 9.0], [9.1, 9.0]]
    )
    probs = np.array(
        [[0.9, 0.1], [0.9, 0.1], [0.9, 0.1], [0.2, 0.8], [0.85, 0.15], [0.5, 0.5], [0.5, 0.5]]
    )
    labeled = np.array([True, True, True, False, False, False, True])
    candidates = np.flatnonzero(~labeled)
    scores = cal_scores(probs, features, candidates, labeled)
    assert candidates[np.argmax(scores)] == 3
    assert scores[candidates.tolist().index(4)] < scores[candidates.tolist().index(3)]


def test_kmeans_cold_start_hits_more_classes_than_its_size_would_by_luck(embedded):
    pool, features, *_ = embedded
    chosen = cold_start(features, 12, "kmeans", np.random.default_rng(0))
    assert len(set(chosen.tolist())) == 12
    assert pool["label"].iloc[chosen].nunique() >= 4


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_buys_exactly_the_budget_without_repeats(embedded, strategy):
    pool, features, dev, dev_features, _ = embedded
    truth = pool["label"].to_numpy()
    asked = []

    def annotate(positions):
        asked.extend(positions.tolist())
        return truth[positions]

    run = run_rounds(
        features,
        annotate,
        dev_features,
        dev["label"].to_numpy(),
        strategy=strategy,
        budget=50,
        batch_size=15,
        initial_size=12,
        cold_start_method="kmeans",
        inverse_l2=1.0,
        seed=3,
    )
    assert len(run.positions) == 50 == len(set(run.positions)) == len(asked)
    assert [p.n_labels for p in run.curve] == [12, 27, 42, 50]
    assert run.rounds[:12] == [0] * 12 and run.rounds[-8:] == [3] * 8
    assert list(truth[run.positions]) == run.labels
    # that the proxy learns from the labels needs the real encoder's features:
    # tests/e2e/test_pretrained_model.py


def test_rounds_resume_from_the_labels_already_bought(embedded):
    pool, features, dev, dev_features, _ = embedded
    truth = pool["label"].to_numpy()
    start = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    run = run_rounds(
        features,
        lambda p: truth[p],
        dev_features,
        dev["label"].to_numpy(),
        strategy="margin",
        budget=30,
        batch_size=10,
        initial_size=12,
        cold_start_method="kmeans",
        inverse_l2=1.0,
        seed=3,
        start_positions=start,
        start_labels=truth[start],
        start_rounds=[1] * 5 + [2] * 5,
    )
    assert run.positions[:10] == start
    assert run.rounds == [1] * 5 + [2] * 5 + [3] * 10 + [4] * 10


def test_budget_larger_than_the_pool_is_a_clear_error(embedded):
    pool, features, dev, dev_features, _ = embedded
    with pytest.raises(DataError, match="exceeds the pool"):
        run_rounds(
            features,
            lambda p: p,
            dev_features,
            dev["label"].to_numpy(),
            strategy="random",
            budget=len(pool) + 1,
            batch_size=10,
            initial_size=10,
            cold_start_method="random",
            inverse_l2=1.0,
            seed=0,
        )


def test_summary_counts_labels_to_98_percent_of_full_and_divides_by_random():
    import pandas as pd

    from frugal.labels.sampling import mean_curves, summarize_curves

    rows = []
    for seed in (1, 2):
        for n, random_acc, margin_acc in [(10, 0.5, 0.5), (20, 0.6, 0.8), (30, 0.7, 0.99)]:
            rows.append(("random", seed, n, random_acc, 0.1))
            rows.append(("margin", seed, n, margin_acc, 0.2))
    rows.append(("random", 1, 40, 0.98, 0.1))
    rows.append(("random", 2, 40, 0.99, 0.1))
    rounds = pd.DataFrame(rows, columns=["strategy", "seed", "n_labels", "accuracy", "seconds"])
    summary = summarize_curves(rounds, full_accuracy=1.0)
    assert summary["random"]["labels_to_target_mean"] == 40
    assert summary["margin"]["labels_to_target_mean"] == 30
    assert summary["margin"]["labels_vs_random"] == pytest.approx(0.75)
    assert summary["margin"]["seconds_per_round"] == pytest.approx(0.2)
    wide = mean_curves(rounds)
    assert list(wide.columns) == ["n_labels", "margin", "random"]
    assert wide.loc[wide["n_labels"] == 20, "margin"].item() == pytest.approx(0.8)


def test_embeddings_are_bit_identical_across_thread_counts_and_batch_padding(trec_sample):
    """What another CPU changes (summation order) changes no stored feature: float64 noise is
    ~10^9 times finer than the float16 grid the features are rounded to."""
    texts = trec_sample["pool"]["text"].tolist()[:48]
    reference = embed_texts(texts, max_length=48, batch_size=16, threads=2)
    assert np.array_equal(reference, embed_texts(texts, max_length=48, batch_size=7, threads=1))
    assert np.array_equal(reference, reference.astype(np.float16).astype(np.float32))


@pytest.mark.parametrize("strategy", ["margin", "kcenter", "badge"])
def test_labels_bought_survive_float_noise_in_the_features(embedded, strategy):
    """Features perturbed at float64 noise level (another CPU's BLAS) buy the same labels."""
    pool, features, dev, dev_features, _ = embedded
    truth = pool["label"].to_numpy()
    noise = np.random.default_rng(0).normal(size=features.shape) * 1e-7

    def buy(x: np.ndarray) -> list[int]:
        return run_rounds(
            x, lambda p: truth[p], dev_features, dev["label"].to_numpy(), strategy=strategy,
            budget=60, batch_size=12, initial_size=12, cold_start_method="kmeans",
            inverse_l2=1.0, seed=3,
        ).positions  # fmt: skip

    assert buy(features) == buy(features * (1 + noise))
