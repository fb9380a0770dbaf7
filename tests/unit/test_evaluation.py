import numpy as np
import pytest

from frugal import catalog
from frugal.report.evaluation import (
    classification_metrics,
    expected_calibration_error,
    plot_confusion,
)
from tests.reports import profile_entry


def test_ece_matches_hand_computation():
    # given two confident right answers and one confident wrong answer
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.2, 0.8]])
    y = np.array([0, 0, 0])
    # when the ECE is computed with 10 bins
    ece = expected_calibration_error(probs, y, n_bins=10)
    # then: bin 0.9 holds 2/3 of samples (acc 1, conf .9), bin 0.8 holds 1/3 (acc 0, conf .8)
    assert ece == pytest.approx(2 / 3 * 0.1 + 1 / 3 * 0.8)


def test_metrics_per_class_and_confusion():
    labels = ["a", "b", "c"]
    probs = np.eye(3)[[0, 1, 2, 2]]  # predicts a, b, c, c
    metrics = classification_metrics(["a", "b", "c", "b"], probs, labels)
    assert metrics["accuracy"] == pytest.approx(0.75)
    assert metrics["confusion"] == [[1, 0, 0], [0, 1, 1], [0, 0, 1]]
    assert metrics["per_class"]["b"]["recall"] == pytest.approx(0.5)
    assert metrics["per_class"]["c"]["precision"] == pytest.approx(0.5)
    assert metrics["macro_f1"] == pytest.approx(np.mean([1.0, 2 / 3, 2 / 3]))


def test_unknown_test_label_is_an_error():
    with pytest.raises(ValueError, match="unknown to the model"):
        classification_metrics(["z"], np.array([[1.0, 0.0]]), ["a", "b"])


def test_confusion_plot_is_written(tmp_path):
    out = tmp_path / "plots" / "c.png"
    plot_confusion([[3, 1], [0, 4]], ["x", "y"], "t", out)
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_accuracy_difference_interval_covers_the_difference_and_is_zero_for_itself():
    from frugal.report.evaluation import accuracy_difference

    rng = np.random.default_rng(0)
    base = rng.random(400) < 0.9
    worse = base & (rng.random(400) < 0.9)  # loses about 9 points, never gains
    diff = accuracy_difference(worse, base, n_resamples=1000, seed=1)
    assert diff["difference"] == pytest.approx(worse.mean() - base.mean())
    assert diff["ci95_low"] < diff["difference"] < diff["ci95_high"] < 0
    same = accuracy_difference(base, base, n_resamples=1000, seed=1)
    assert same == {"difference": 0.0, "ci95_low": 0.0, "ci95_high": 0.0, "examples": 400}
    narrower = accuracy_difference(worse, base, n_resamples=1000, seed=1, confidence=0.90)
    assert diff["ci95_low"] < narrower["ci90_low"] < narrower["ci90_high"] < diff["ci95_high"]
    with pytest.raises(ValueError, match="equal-length"):
        accuracy_difference(base, base[:10], n_resamples=1000, seed=1)


def test_pareto_front_drops_points_that_cost_more_for_no_more_accuracy():
    from frugal.report.evaluation import pareto_front

    # fp32 ties int8 on accuracy at 5× the energy: dominated; a cheaper, less accurate point
    # and a cheapest, least accurate one stay on the front; a costlier, worse one does not
    cost = [7175.0, 1424.0, 422.0, 300.0, 2000.0]
    score = [0.881, 0.881, 0.878, 0.80, 0.87]
    assert pareto_front(cost, score).tolist() == [False, True, True, True, False]
    assert pareto_front([1.0, 1.0], [0.5, 0.6]).tolist() == [False, True]


def test_champion_is_chosen_on_the_selection_split_even_where_dev_and_test_disagree():
    from frugal.report.evaluation import choose_champion

    def model(uj: float, selection: float, test: float) -> dict:
        return {
            "modeled_uj_per_utterance": {"phone": {"batch": uj, "streaming": 10 * uj}},
            # dev (where plans were scored) says the opposite of selection: it plays no part
            "dev_accuracy_vs_baseline": {"difference": -selection},
            "selection_accuracy_vs_baseline": {"difference": selection,
                                               "ci90_low": selection - 0.01,
                                               "ci90_high": selection + 0.01},
            "accuracy_vs_baseline": {"difference": test, "ci95_low": test - 0.01,
                                     "ci95_high": test + 0.01},
        }  # fmt: skip

    summary = {
        "base": model(1000, 0.0, 0.0),
        # cheapest, fine on test but 1 pt worse on selection: not eligible
        "tiny": model(100, -0.010, +0.002),
        # within the budget on selection, though 2 pt worse on test: the champion
        "small": model(300, -0.004, -0.020),
        "medium": model(600, 0.0, 0.0),
    }
    assert choose_champion(summary, 0.005, "phone") == "small"
    # with no budget, only models at least as good as the base on selection qualify
    assert choose_champion(summary, 0.0, "phone") == "medium"


def test_models_side_by_side_differences_champion_and_pareto_front():
    from frugal.report.evaluation import baseline_differences, compare_models

    rng = np.random.default_rng(0)
    base = rng.random(200) < 0.9
    correct = {"base": base, "small": base & (rng.random(200) < 0.99)}
    differences = baseline_differences(correct, correct, correct, "base", n_resamples=200, seed=1)
    assert list(differences) == ["base", "small"]
    assert differences["base"]["accuracy_vs_baseline"]["difference"] == 0.0
    assert differences["small"]["dev_accuracy"] == pytest.approx(correct["small"].mean())
    chosen = differences["small"]["selection_accuracy_vs_baseline"]
    assert chosen["ci90_low"] <= chosen["difference"] <= chosen["ci90_high"]

    def metrics(accuracy: float, dev_difference: float) -> dict:
        ci95 = {"difference": 0.0, "ci95_low": -0.01, "ci95_high": 0.01, "examples": 200}
        chosen = {"difference": dev_difference, "ci90_low": dev_difference - 0.01,
                  "ci90_high": dev_difference + 0.01, "examples": 200}  # fmt: skip
        return {"accuracy": accuracy, "macro_f1": 0.5, "ece": 0.1, "n_test": 200,
                "per_class": {"A": {"f1": 0.4}}, "confusion": [[1]], "size_mb": 1.0,
                "accuracy_vs_baseline": ci95, "dev_accuracy": 0.9,
                "accuracy_vs_baseline_ci90": chosen | {"difference": 0.0},
                "dev_accuracy_vs_baseline": ci95 | {"difference": dev_difference},
                "selection_accuracy": 0.9,
                "selection_accuracy_vs_baseline": chosen}  # fmt: skip

    def profile(uj: float) -> dict:
        return profile_entry({"phone": {"streaming": 10 * uj, "batch": uj}})

    comparison = compare_models(
        {"base": metrics(0.90, 0.0), "small": metrics(0.89, -0.004), "bad": metrics(0.80, -0.1)},
        catalog.PROFILE.check({"base": profile(1000), "small": profile(300), "bad": profile(400)}),
        accuracy_budget=0.005,
        champion_profile="phone",
    )
    assert comparison.champion == "small" and comparison.summary.champion() == "small"
    written = catalog.METRICS.dump(comparison.summary)
    assert list(written["small"])[-3:] == [
        "modeled_uj_per_utterance", "champion", "pareto_front"
    ]  # fmt: skip
    assert comparison.summary["small"].f1 == {"A": 0.4}
    assert {name: s.pareto_front for name, s in comparison.summary.items()} == {
        "base": {"batch": True, "streaming": True},
        "small": {"batch": True, "streaming": True},
        "bad": {"batch": False, "streaming": False},
    }
    assert len(comparison.points) == 6
