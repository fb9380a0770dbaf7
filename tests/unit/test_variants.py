"""frugal.compress.variants: QAT trials, candidates and variants that leave the base model as
it was, and every recipe builds a variant with a plain-JSON record."""

import json

import numpy as np
import pytest
import torch

from tests.compress_samples import LABELS, TEXTS


def test_qat_trials_start_from_the_cheapest_plan_worth_distilling():
    from frugal.compress.planner import Candidate, Plan
    from frugal.compress.variants import qat_order

    def candidate(energy: float, drop: float) -> Candidate:
        plan = Plan({}, [], 0.0, energy, 0.0)
        record = {"relative_energy.batch": energy, "dev_drop": drop}
        return Candidate(0.0, plan, 0.9 - drop, record)

    # post-training drops: 0, 1 pt, 2 pt, 30 pt (too far gone to distil at a 3-pt screen)
    candidates = [candidate(0.21, 0.0), candidate(0.15, 0.01), candidate(0.11, 0.02),
                  candidate(0.07, 0.30)]  # fmt: skip
    assert qat_order(candidates, 0.03) == [2, 1, 0]
    assert qat_order(candidates, 0.005) == [0]
    assert qat_order(candidates[1:], 0.005) == [0]  # none within: the most accurate one


def test_a_trial_one_question_short_of_the_best_is_not_passed_over_for_a_costlier_one():
    from frugal.compress.variants import pick_trial

    rng = np.random.default_rng(0)
    best = rng.random(268) < 0.933
    one_short = best.copy()
    one_short[np.flatnonzero(best)[0]] = False  # one question fewer
    far_short = best & (rng.random(268) < 0.9)  # ~25 questions fewer
    assert pick_trial([one_short, best], 0.944, 0.005, 0) == (0, False)
    assert pick_trial([far_short, best], 0.944, 0.005, 0) == (1, False)
    assert pick_trial([far_short, best], best.mean(), 0.005, 0) == (1, True)
    assert pick_trial([best, far_short], best.mean(), 0.005, 0) == (0, True)


def test_candidates_and_variants_leave_the_base_model_as_it_was_and_repeat_exactly(clf):
    """What lets the flow run them as independent tasks: scoring a candidate plan and building
    a variant (distillation included) never change the base model, and the same inputs give
    the same variant."""
    from frugal.compress.planner import analyse, plan_candidate
    from frugal.compress.variants import build_variant
    from frugal.config import load_params
    from frugal.energy.modeled import device_profile
    from tests.conftest import ROOT

    small = {"fisher_texts": 4, "sensitivity_texts": 6, "workload_texts": 4, "plan_budgets": 3}
    params = load_params(
        ROOT / "params.yaml",
        {"compress": {**small, "bit_choices": [0, 4, 8], "qat": {"steps": 4, "batch_size": 4}}},
    )
    cfg, profile = params.compress, device_profile("phone", params.profile.profiles["phone"])
    before = {k: v.clone() for k, v in clf.model.state_dict().items()}
    analysis = analyse(clf, TEXTS, TEXTS, LABELS, TEXTS[:4], cfg)
    candidates = [
        plan_candidate(clf, analysis, budget, TEXTS, LABELS, profile, cfg)
        for budget in analysis.budgets
    ]
    assert [c.loss_budget for c in candidates] == sorted(analysis.budgets)
    built = [
        build_variant(
            "energy_qat",
            clf,
            analysis,
            candidates,
            TEXTS,
            TEXTS,
            LABELS,
            TEXTS[:4],
            profile,
            cfg,
            bought=dict(zip(TEXTS[:3], LABELS[:3], strict=True)),
        )  # fmt: skip
        for _ in range(2)
    ]
    trials = built[0].plan["qat_trials"]
    assert 1 <= len(trials) <= cfg.qat.trials
    met = [t for t in trials if analysis.reference_dev_accuracy - t["qat_dev_accuracy"]
           <= cfg.accuracy_budget]  # fmt: skip
    assert built[0].plan["within_accuracy_budget"] == bool(met)
    assert not met[:-1]  # the trials stop at the first plan within the budget
    after = clf.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    one, two = (v.classifier.model.state_dict() for v in built)
    assert all(torch.equal(one[k], two[k]) for k in one)
    assert not all(torch.equal(one[k], before[k]) for k in one)  # it did compress
    assert built[0].plan == built[1].plan


def test_every_configurable_variant_has_a_recipe_and_an_unknown_one_lists_them():
    from frugal.compress.variants import RECIPES, build_variant
    from frugal.config import VARIANTS

    assert list(RECIPES) == list(VARIANTS)
    with pytest.raises(ValueError, match="unknown variant 'int3'.*size_target"):
        build_variant("int3", *[None] * 9)


def test_every_recipe_builds_a_variant_whose_record_is_plain_json(clf):
    """The plan record is written as compression.json: every recipe's record must serialise
    as it is (no arrays, tensors or frames slipping in), whatever variants params.yaml names."""
    from frugal.compress.planner import analyse, plan_candidate
    from frugal.compress.variants import RECIPES, build_variant
    from frugal.config import load_params
    from frugal.energy.modeled import device_profile
    from tests.conftest import ROOT

    small = {"fisher_texts": 4, "sensitivity_texts": 6, "workload_texts": 4, "plan_budgets": 3}
    params = load_params(
        ROOT / "params.yaml",
        {"compress": {**small, "bit_choices": [2, 4, 8], "qat": {"steps": 2, "batch_size": 4}}},
    )
    cfg, profile = params.compress, device_profile("phone", params.profile.profiles["phone"])
    analysis = analyse(clf, TEXTS, TEXTS, LABELS, TEXTS[:4], cfg)
    candidates = [
        plan_candidate(clf, analysis, budget, TEXTS, LABELS, profile, cfg)
        for budget in analysis.budgets
    ]
    for name in RECIPES:
        variant = build_variant(
            name, clf, analysis, candidates, TEXTS, TEXTS, LABELS, TEXTS[:4], profile, cfg,
            bought=dict(zip(TEXTS[:3], LABELS[:3], strict=True)),
        )  # fmt: skip
        assert json.loads(json.dumps(variant.plan)) == variant.plan, name
