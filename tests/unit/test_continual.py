"""Continual updates: Fisher exemplar scores, the dynamic consolidation weight, forgetting, the
head growing with new classes, and clear errors for bad updates (the tiny random encoder, real
TREC rows)."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch

from frugal.config import ContinualConfig
from frugal.continual.exemplars import head_view, herding_order, select_exemplars
from frugal.continual.methods import (
    METHODS,
    RECIPES,
    SHRINKAGE_GRID,
    ClassStats,
    Consolidation,
    ablation,
    choose_shipped,
    distill_weight,
    dynamic_lambda,
    expand_head,
    forgetting,
    per_class_accuracy,
    predict_labels,
    run_continual,
    summarize_methods,
    train_on,
    update,
)
from frugal.data.domains import auto_steps, domain_steps
from frugal.errors import DataError
from frugal.model.fisher import classifier_fisher_trace_scores
from frugal.model.modeling import logits_of, new_classifier, predict_proba, token_batches


def _cfg(**overrides) -> ContinualConfig:
    values = {
        "pool_data": "p",
        "dev_data": "d",
        "test_data": "t",
        "steps": [["DESC", "HUM"], ["LOC"]],
        "methods": ["ccfi"],
        "memory_fraction": 0.1,
        "typical_share": 0.5,
        "max_time_share": 0.3,
        "updates_dir": "data/updates",
        "update_text_column": "text",
        "update_label_column": "label",
        "update_conflicts": "majority",
        "update_dev_fraction": 0.1,
        "update_test_fraction": 0.2,
        "distill_weight": "auto",
        "fisher_texts": 8,
        "ewc_lambda": 100.0,
        "epochs": 2,
        "batch_size": 8,
        "learning_rate": 1e-4,
        "weight_decay": 0.01,
        "warmup_fraction": 0.1,
        "max_length": 24,
        "threads": 1,  # unit configs: one thread (tests/unit/conftest.py)
        "seed": 0,
        "data_dir": "d",
        "base_model": "b",
        "old_data": "l.parquet",
        "output_dir": "o",
        "registered_model": "m",
        "report": "r.json",
        "steps_report": "s.csv",
        "plot": "p.png",
    }
    return ContinualConfig(**(values | overrides))


@pytest.fixture(scope="module")
def two_class(trec_sample):
    """A model fine-tuned for a few steps on DESC vs HUM questions, and held-out ones."""
    train = trec_sample["pool"][trec_sample["pool"]["label"].isin(["DESC", "HUM"])]
    held = trec_sample["test"][trec_sample["test"]["label"].isin(["DESC", "HUM"])]
    torch.manual_seed(0)
    clf = new_classifier(["DESC", "HUM"], max_length=24)
    train_on(clf, train.reset_index(drop=True), _cfg(epochs=3))
    return clf, train.reset_index(drop=True), held.reset_index(drop=True)


def test_per_class_accuracy_scores_the_known_classes_that_have_rows(two_class):
    """A class the model knows but the test rows lack (fine labels: 1 pool example) is left
    out, not a NaN that poisons the average; rows of unknown classes are ignored."""
    clf, _, held = two_class
    only_desc = held[held["label"] == "DESC"]
    unknown = pd.DataFrame({"text": ["Who is Zorro ?"], "label": ["ENTY"]})
    accuracy = per_class_accuracy(clf, pd.concat([only_desc, unknown], ignore_index=True))
    predicted = predict_labels(clf, only_desc["text"].tolist())
    assert accuracy == {"DESC": float((predicted == "DESC").mean())}


def test_fisher_score_is_the_heads_fisher_trace(two_class):
    """The closed form equals autograd: E_y ||grad of log p(y|x) over the head||^2. (That it
    peaks near the decision boundary needs the real encoder's features:
    tests/e2e/test_pretrained_model.py.)"""
    clf, _, held = two_class
    texts = held["text"].tolist()
    scores = classifier_fisher_trace_scores(clf.model, token_batches(clf, texts, 64))
    head = clf.model.classifier
    for i in (0, 1):
        batch = clf.tokenizer(texts[i : i + 1], return_tensors="pt")
        log_p = torch.log_softmax(clf.model(**batch).logits[0], -1)
        trace = 0.0
        for y in range(len(clf.labels)):
            grads = torch.autograd.grad(log_p[y], [head.weight, head.bias], retain_graph=True)
            trace += float(log_p[y].detach().exp()) * sum(float((g**2).sum()) for g in grads)
        assert scores[i] == pytest.approx(trace, rel=1e-4)


def test_exemplars_are_the_top_scores_of_each_class_within_the_budget():
    data = pd.DataFrame({"text": list("abcdefghijkl"), "label": ["x"] * 10 + ["y"] * 2})
    scores = np.array([0.1, 0.9, 0.2, 0.8, 0.3, 0.0, 0.5, 0.4, 0.6, 0.7, 0.1, 0.2])
    kept = select_exemplars(data, 0.2, "fisher", scores)
    assert kept["text"].tolist() == ["b", "d", "l"]  # 2 of 10 x's, 1 of 2 y's (at least one)
    random = select_exemplars(data, 0.2, "random", seed=1)
    assert random["label"].value_counts().to_dict() == {"x": 2, "y": 1}


def test_dynamic_lambda_follows_the_ratio_of_the_losses(two_class):
    assert dynamic_lambda(2.0, 0.5) == 4.0
    assert dynamic_lambda(4.0, 0.5) == 2 * dynamic_lambda(2.0, 0.5)  # more CE: pull harder
    assert dynamic_lambda(2.0, 1.0) == dynamic_lambda(2.0, 0.5) / 2  # moved further: less λ
    assert dynamic_lambda(1.0, 0.0) == 0.0  # still at the anchor: nothing to pull back
    clf, train, _ = two_class
    student = copy.deepcopy(clf)
    consolidation = Consolidation.of(clf, train["text"].tolist()[:4], None)
    assert consolidation.fisher and all(n.startswith("bert.encoder.") for n in consolidation.fisher)
    steps, lambdas = train_on(student, train, _cfg(epochs=3), consolidation)
    per_epoch = steps // 3
    assert len(lambdas) == steps
    assert set(lambdas[:per_epoch]) == {0.0}  # first epoch: the weights start at the anchor
    second, third = lambdas[per_epoch], lambdas[2 * per_epoch]
    assert second > 0 and set(lambdas[per_epoch : 2 * per_epoch]) == {second}
    assert third > 0 and third != second  # set anew from the last epoch's losses


def test_forgetting_is_best_earlier_accuracy_minus_now():
    history = [
        {"A": 0.9, "B": 0.8},
        {"A": 0.95, "B": 0.6, "C": 0.7},
        {"A": 0.5, "B": 0.7, "C": 0.9, "D": 0.4},
    ]
    assert forgetting(history) == pytest.approx({"A": 0.45, "B": 0.1, "C": -0.2})
    assert forgetting(history[:1]) == {}


def test_method_summary_compares_the_last_step_with_full_retraining():
    table = pd.DataFrame(
        [
            {"method": "initial", "step": 0, "average_accuracy": 0.9, "mean_forgetting": 0.0,
             "seconds": 50.0, "dev_average_accuracy": 0.91, "memory_examples": 0},
            {"method": "ccfi", "step": 1, "average_accuracy": 0.8, "mean_forgetting": 0.1,
             "seconds": 2.0, "dev_average_accuracy": 0.82, "memory_examples": 7},
            {"method": "full_retrain", "step": 1, "average_accuracy": 0.85,
             "mean_forgetting": 0.02, "seconds": 20.0, "dev_average_accuracy": 0.86,
             "memory_examples": 0},
            {"method": "ccfi", "step": 2, "average_accuracy": 0.78, "mean_forgetting": 0.12,
             "seconds": 6.0, "dev_average_accuracy": 0.79, "memory_examples": 9},
            {"method": "full_retrain", "step": 2, "average_accuracy": 0.84,
             "mean_forgetting": 0.03, "seconds": 30.0, "dev_average_accuracy": 0.85,
             "memory_examples": 0},
        ]
    )  # fmt: skip
    summary = summarize_methods(table)
    assert list(summary) == ["ccfi", "full_retrain"]
    assert summary["ccfi"] == {
        "final_average_accuracy": 0.78,
        "final_dev_average_accuracy": 0.79,
        "final_mean_forgetting": 0.12,
        "update_seconds": 8.0,
        "memory_examples": 9,
        "gap_to_full_retrain_pt": pytest.approx(6.0),
        "time_vs_full_retrain": pytest.approx(0.16),
        "max_update_time_vs_full_retrain": pytest.approx(0.2),  # 6 s of 30 at step 2
    }
    without = summarize_methods(table[table["method"] != "full_retrain"])
    assert set(without["ccfi"]) == {"final_average_accuracy", "final_dev_average_accuracy",
                                    "final_mean_forgetting", "update_seconds",
                                    "memory_examples"}  # fmt: skip
    # what is kept, in bytes, where the records have it
    kept = summarize_methods(table.assign(memory_bytes=[0, 70, 0, 90, 0]))
    assert kept["ccfi"]["memory_bytes"] == 90
    # one-time work on step 0's data counts in the summed time, not in an update's own
    setup = table.assign(seconds=[50.0, 10.0, 20.0, 1.0, 30.0], setup_seconds=[0, 9.0, 0, 0, 0])
    timed = summarize_methods(setup)["ccfi"]
    assert timed["time_vs_full_retrain"] == pytest.approx(11 / 50)
    assert timed["max_update_time_vs_full_retrain"] == pytest.approx(1 / 20)


def test_the_shipped_method_is_the_best_on_dev_of_those_that_store_no_text_within_time():
    def entry(dev: float, time_share: float | None = None) -> dict:
        out = {"final_dev_average_accuracy": dev}
        return out if time_share is None else out | {"max_update_time_vs_full_retrain": time_share}

    summary = {
        "full_retrain": entry(0.95, 1.0),  # reads all old data
        "ewc": entry(0.94, 0.01),  # ... its Fisher reads the old data too
        "balanced_replay": entry(0.93, 0.2),  # keeps old texts to replay
        "stats_head": entry(0.92, 0.04),
        "finetune": entry(0.50, 0.03),
    }
    method, why = choose_shipped(summary, max_time_share=0.05)
    assert method == "stats_head"
    assert why.startswith("stats_head: dev average accuracy 92.00%") and "finetune 50.00%" in why
    assert choose_shipped(summary, max_time_share=0.035)[0] == "finetune"
    # without full retraining to compare with, the time budget cannot apply
    assert choose_shipped({"stats_head": entry(0.8), "finetune": entry(0.7)}, 0.05)[0] == (
        "stats_head"
    )
    # none within the time budget (tiny data: fixed costs dominate): the fastest ships, and says so
    slow = {"full_retrain": entry(0.95, 1.0), "stats_head": entry(0.9, 0.8),
            "finetune": entry(0.5, 0.6)}  # fmt: skip
    method, why = choose_shipped(slow, 0.05)
    assert method == "finetune" and "was the fastest (60%)" in why
    with pytest.raises(DataError, match="keeps old training texts; add one that stores none"):
        choose_shipped({"full_retrain": entry(0.95, 1.0), "random_replay": entry(0.9, 0.1)}, 0.3)
    assert [m for m in METHODS if not RECIPES[m].stores_text] == ["finetune", "stats_head"]


def test_the_ablation_measures_each_part_over_the_method_it_extends():
    def entry(dev: float, test: float) -> dict:
        return {"final_dev_average_accuracy": dev, "final_average_accuracy": test}

    summary = {
        "random_replay": entry(0.90, 0.89),
        "fisher_replay": entry(0.88, 0.89),
        "ccfi": entry(0.86, 0.85),
        "mixed_distill": entry(0.95, 0.95),  # its base, mixed_replay, did not run: no row
    }
    rows = {row["method"]: row for row in ablation(summary)}
    assert set(rows) == {"fisher_replay", "ccfi"}
    assert (
        rows["ccfi"]["over"] == "fisher_replay" and rows["ccfi"]["adds"] == "dynamic consolidation"
    )
    assert rows["ccfi"]["dev_pt"] == pytest.approx(-2.0) and rows["ccfi"][
        "test_pt"
    ] == pytest.approx(-4.0)
    # every part named in a recipe extends a method that exists
    assert all(r.adds[0] in RECIPES for r in RECIPES.values() if r.adds)


def test_new_head_outputs_extend_the_old_ones(two_class):
    clf, _, held = two_class
    grown = expand_head(clf, ["DESC", "HUM", "LOC"], seed=0)
    texts = held["text"].tolist()[:4]
    batch = clf.tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        old, new = clf.model(**batch).logits, grown.model(**batch).logits
    assert new.shape == (4, 3) and torch.allclose(new[:, :2], old, atol=1e-6)
    with pytest.raises(ValueError, match="must extend"):
        expand_head(clf, ["HUM", "DESC", "LOC"], seed=0)


def test_bad_updates_fail_with_a_clear_message(two_class, trec_sample):
    clf, train, _ = two_class
    pool = trec_sample["pool"]
    loc = pool[pool["label"] == "LOC"]
    with pytest.raises(DataError, match="new-domain data is empty"):
        update("ccfi", clf, loc.iloc[:0], train.iloc[:2], train, _cfg())
    with pytest.raises(DataError, match="must add a class"):
        update("ccfi", clf, train.iloc[:3], train.iloc[:2], train, _cfg())
    unseen = pd.concat([train.iloc[:2], loc.iloc[:1]])  # old data with a label the model lacks
    with pytest.raises(DataError, match=r"labels \['LOC'\] that the old model never saw"):
        update("ccfi", clf, pool[pool["label"] == "NUM"], unseen, train, _cfg())
    with pytest.raises(DataError, match=r"steps\[1\]: no labeled examples of domain \['XYZ'\]"):
        domain_steps(pool, [["DESC"], ["XYZ"]])
    with pytest.raises(DataError, match="arrives at step 0 and again at step 1"):
        domain_steps(pool, [["DESC"], ["DESC", "LOC"]])


def test_auto_steps_start_with_the_larger_domains_and_add_one_per_step(trec):
    assert auto_steps(trec["domain"]) == [["ENTY", "HUM", "DESC", "NUM"], ["LOC"], ["ABBR"]]
    news = pd.Series(["sport"] * 5 + ["tech"] * 4 + ["politics"] * 3 + ["arts"] * 2 + ["x"])
    assert auto_steps(news) == [["sport", "tech", "politics"], ["arts"], ["x"]]
    assert auto_steps(pd.Series(list("aabbc"))) == [["a", "b"], ["c"]]  # 2 to start, at least
    with pytest.raises(DataError, match="at least 3"):
        auto_steps(pd.Series(list("aab")))
    assert [len(d) for d in domain_steps(trec, "auto")] == [
        int(trec["domain"].isin(["ENTY", "HUM", "DESC", "NUM"]).sum()),
        int((trec["domain"] == "LOC").sum()),
        int((trec["domain"] == "ABBR").sum()),
    ]


def test_herding_picks_the_examples_whose_mean_is_the_class_mean():
    # four corners of a square and two outliers on one side: herding first takes the point
    # nearest the mean, then pairs that keep the running mean on it; a boundary pick would not
    features = np.array([[1, 1], [1, -1], [-1, 1], [-1, -1], [3, 0.1], [3, -0.1], [0.2, 0.0]])
    order = herding_order(features, 3)
    x = features / np.linalg.norm(features, axis=1, keepdims=True)
    assert len(set(order.tolist())) == 3
    chosen_mean = x[order].mean(0)
    for other in ([4, 5, 0], [0, 1, 4]):
        assert np.linalg.norm(chosen_mean - x.mean(0)) <= np.linalg.norm(
            x[other].mean(0) - x.mean(0)
        )


def test_mixed_memory_herds_a_share_and_takes_the_boundary_for_the_rest():
    data = pd.DataFrame({"text": list("abcdefghij"), "label": ["x"] * 10})
    rng = np.random.default_rng(0)
    features = rng.normal(size=(10, 4))
    scores = np.arange(10, dtype=float)  # j has the largest Fisher trace
    kept = select_exemplars(data, 0.4, "mixed", scores, features, typical_share=0.5)
    typical = set(data["text"].iloc[herding_order(features, 2)])
    assert len(kept) == 4 and typical <= set(kept["text"])
    boundary = set(kept["text"]) - typical
    rest = [t for t in "jihgfedcba" if t not in typical]
    assert boundary == set(rest[:2])  # the largest traces among the rest
    assert set(select_exemplars(data, 0.4, "mixed", scores, features, 0.0)["text"]) == set("jihg")


def test_head_view_gives_the_features_and_probabilities_the_fisher_trace_reads(two_class):
    clf, train, _ = two_class
    features, probs = head_view(clf, train["text"].tolist())
    trace = (1 - (probs**2).sum(1)) * ((features**2).sum(1) + 1)
    expected = classifier_fisher_trace_scores(
        clf.model, token_batches(clf, train["text"].tolist(), 64)
    )
    np.testing.assert_allclose(trace, expected, rtol=1e-5)


def test_protected_head_rows_do_not_move_and_distillation_keeps_the_old_outputs(
    two_class, trec_sample
):
    clf, train, held = two_class
    new = trec_sample["pool"][trec_sample["pool"]["label"] == "LOC"].reset_index(drop=True)
    labels = [*clf.labels, "LOC"]
    cfg = _cfg(epochs=3, learning_rate=1e-3)

    def updated(**kwargs):
        student = expand_head(clf, labels, 0)
        train_on(student, new, cfg, **kwargs)
        return student

    protected = updated(protect_rows=2)
    assert torch.equal(protected.model.classifier.weight[:2], clf.model.classifier.weight)
    assert torch.equal(protected.model.classifier.bias[:2], clf.model.classifier.bias)
    free = updated()
    assert not torch.equal(free.model.classifier.weight[:2], clf.model.classifier.weight)

    # the old classes' distribution on old questions stays closer to the old model's
    def drift(student) -> float:
        texts = held["text"].tolist()
        old = torch.log_softmax(logits_of(clf, texts), -1)
        now = torch.log_softmax(logits_of(student, texts)[:, :2], -1)
        return float(torch.nn.functional.kl_div(now, old, log_target=True, reduction="batchmean"))

    assert drift(updated(teacher=clf)) < drift(free)


def test_the_distillation_weight_is_bics_share_unless_set_and_zero_turns_it_off(
    two_class, trec_sample
):
    assert distill_weight(_cfg(), known=5, classes=6) == pytest.approx(5 / 6)
    assert distill_weight(_cfg(distill_weight=0.5), known=5, classes=6) == 0.5
    with pytest.raises(ValueError):
        _cfg(distill_weight=1.0)  # all distillation: the new class would get no gradient
    clf, _, _ = two_class
    new = trec_sample["pool"][trec_sample["pool"]["label"] == "LOC"].reset_index(drop=True)

    def head_after(cfg, teacher):
        student = expand_head(clf, [*clf.labels, "LOC"], 0)
        train_on(student, new, cfg, teacher=teacher)
        return student.model.classifier.weight

    plain = head_after(_cfg(), None)
    assert torch.allclose(head_after(_cfg(distill_weight=0.0), clf), plain, atol=1e-6)
    assert not torch.allclose(head_after(_cfg(distill_weight=0.5), clf), plain, atol=1e-6)


def test_balanced_softmax_keeps_a_large_new_class_from_taking_the_old_classes_questions(
    two_class, trec_sample
):
    # given an update where the new class outnumbers each old class's memory many times over
    clf, train, held = two_class
    new = trec_sample["pool"][trec_sample["pool"]["label"] == "LOC"]
    memory = train.groupby("label").head(3)
    data = pd.concat([new, memory], ignore_index=True)
    assert (data["label"] == "LOC").sum() >= 5 * (data["label"] == "DESC").sum()

    def new_class_probability(balanced: bool) -> float:
        student = expand_head(clf, [*clf.labels, "LOC"], 0)
        train_on(student, data, _cfg(epochs=2), balanced=balanced)
        return float(predict_proba(student, held["text"].tolist())[:, -1].mean())

    # then the old classes' held-out questions lean less toward the new class
    assert new_class_probability(balanced=True) < new_class_probability(balanced=False)


def test_every_method_runs_every_step_and_keeps_its_memory_budget(trec_sample):
    # given three small domains arriving in two steps
    pool = trec_sample["pool"]
    steps = [
        pool[pool["label"].isin(["DESC", "HUM"])].reset_index(drop=True),
        pool[pool["label"] == "LOC"].reset_index(drop=True),
        pool[pool["label"] == "NUM"].reset_index(drop=True),
    ]
    cfg = _cfg(methods=list(METHODS), epochs=1, memory_fraction=0.2, fisher_texts=4)
    # when every method updates through both steps
    records = run_continual(steps, trec_sample["dev"], trec_sample["test"], cfg)
    # then each reached every class, and each replay method kept at most its share of old data
    last = {r.method: r for r in records if r.step == 2}
    assert set(last) == set(METHODS)
    seen = pd.concat(steps[:2])
    for method, record in last.items():
        assert set(record.classes) == {"DESC", "HUM", "LOC", "NUM"}, method
        if RECIPES[method].reads_old_data:  # it keeps every text seen
            assert record.memory_examples == sum(len(s) for s in steps), method
        elif RECIPES[method].memory == "none":
            assert record.memory_examples == 0, method
        else:
            assert 0 < record.memory_examples <= 0.2 * len(seen) + 3, method  # ≥ 1 per class


def test_an_update_from_a_trained_model_starts_from_it_without_training_step_0(
    two_class, trec_sample
):
    # given a model already trained on the old classes (as train's is) and a new domain
    clf, old, _ = two_class
    before = {k: v.clone() for k, v in clf.model.state_dict().items()}
    new = trec_sample["pool"][trec_sample["pool"]["label"] == "LOC"].reset_index(drop=True)
    cfg = _cfg(methods=["balanced_replay"], epochs=1)
    # when the update runs from it
    records = run_continual([old, new], trec_sample["dev"], trec_sample["test"], cfg, trained=clf)
    # then step 0 is that model, untrained again (no seconds, its weights as they were), and
    # the update learned the new class on top of it
    initial = records[0]
    assert (initial.method, initial.seconds, initial.classes) == ("initial", 0.0, clf.labels)
    assert all(torch.equal(before[k], v) for k, v in clf.model.state_dict().items())
    assert records[-1].classes == ["DESC", "HUM", "LOC"]
    # and with nothing arriving, only the model as it is is scored
    assert [
        r.method
        for r in run_continual([old], trec_sample["dev"], trec_sample["test"], cfg, trained=clf)
    ] == ["initial"]


def test_the_statistics_head_is_lda_with_a_shrunk_covariance_and_equal_priors():
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    # given three unequal gaussian classes in 6 dimensions, sharing a correlated covariance
    rng = np.random.default_rng(0)
    mix = rng.normal(size=(6, 6))
    sizes = {"a": 80, "b": 30, "c": 10}
    x = np.concatenate(
        [rng.normal(size=(n, 6)) @ mix + 2 * i for i, n in enumerate(sizes.values())]
    )
    y = np.repeat(list(sizes), list(sizes.values()))
    held = rng.normal(size=(500, 6)) @ mix + rng.integers(0, 3, 500)[:, None] * 2.0
    for gamma in (0.01, 0.3, 0.9):
        # when the head is solved from the statistics alone
        stats = ClassStats.of(x, y, ["a", "b", "c"])
        weights, bias = stats.head(gamma)
        ours = np.array(["a", "b", "c"])[(held @ weights.T + bias).argmax(1)]
        # then it decides as scikit-learn's shrunk LDA with equal priors does
        lda = LinearDiscriminantAnalysis(solver="lsqr", shrinkage=gamma, priors=[1 / 3] * 3)
        assert (ours == lda.fit(x, y).predict(held)).mean() > 0.99, gamma


def test_adding_classes_keeps_the_old_statistics_and_adds_up_to_all_the_data():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(40, 5)), np.repeat(["a", "b", "c", "d"], 10)
    first = ClassStats.of(x[:20], y[:20], ["a", "b"])
    # when two classes arrive
    both = first.add(x[20:], y[20:], ["a", "b", "c", "d"])
    # then the old classes' counts and sums are as they were, and all add up to the whole
    whole = ClassStats.of(x, y, ["a", "b", "c", "d"])
    assert np.array_equal(both.counts[:2], first.counts) and np.array_equal(
        both.sums[:2], first.sums
    )
    assert np.allclose(both.sums, whole.sums) and np.allclose(both.scatter, whole.scatter)
    with pytest.raises(ValueError, match="must extend"):
        first.add(x[:10], y[:10], ["a", "b", "a"])
    with pytest.raises(ValueError, match=r"examples of \['d'\], not among"):
        first.add(x[30:], y[30:], ["a", "b", "c"])
    # an update that also brings examples of a known class adds them to its statistics
    mixed = first.add(x[10:30], y[10:30], ["a", "b", "c"])
    assert mixed.counts.tolist() == [10, 20, 10]
    again = np.concatenate([x[:20], x[10:30]]), np.concatenate([y[:20], y[10:30]])
    assert np.allclose(mixed.sums, ClassStats.of(*again, ["a", "b", "c"]).sums)


def test_the_statistics_head_learns_a_new_class_stores_no_text_and_keeps_the_encoder(
    two_class, trec_sample, tmp_path
):
    # given a trained model (the train stage's) and a new domain
    clf, old, _ = two_class
    new = trec_sample["pool"][trec_sample["pool"]["label"] == "LOC"].reset_index(drop=True)
    cfg = _cfg(methods=["stats_head"])
    seen: dict[tuple[str, int], ClassStats | None] = {}
    # when the statistics head updates it
    records = run_continual(
        [old, new], trec_sample["dev"], trec_sample["test"], cfg, trained=clf,
        on_model=lambda m, step, model, stats: seen.update({(m, step): (model, stats)}),
    )  # fmt: skip
    model, stats = seen[("stats_head", 1)]
    # then it knows the new class, kept no text but statistics of stated size, with a
    # shrinkage the rule chose, and its encoder is the old one, weight for weight
    last = records[-1]
    assert last.classes == ["DESC", "HUM", "LOC"] and last.per_class["LOC"] > 1 / 3  # chance
    assert (last.memory_examples, last.memory_bytes) == (0, stats.nbytes) and stats.nbytes > 0
    assert stats.labels == last.classes and stats.counts.tolist() == [
        (old["label"] == "DESC").sum(), (old["label"] == "HUM").sum(), len(new)
    ]  # fmt: skip
    assert stats.shrinkage in SHRINKAGE_GRID
    for name, value in clf.model.state_dict().items():
        if not name.startswith("classifier."):
            assert torch.equal(model.model.state_dict()[name], value), name
    # and the head the statistics give is the one the model runs, saved and loaded intact
    weights, bias = stats.head()
    assert np.allclose(model.model.classifier.weight.detach().numpy(), weights, atol=1e-5)
    stats.save(tmp_path / "s.npz")
    again = ClassStats.load(tmp_path / "s.npz")
    assert again.labels == stats.labels and np.array_equal(again.scatter, stats.scatter)
    assert again.shrinkage == stats.shrinkage
