"""Compression: the planner against exhaustive search, sensitivity measures, distillation, and
compressed models on disk (packed, pruned tensors absent, the same values after reload, and a
served graph that predicts what the torch reference does)."""

import copy
import itertools
import json

import numpy as np
import pandas as pd
import pytest
import torch

from frugal.compress.packed import is_compressed, load_float, save_compressed
from frugal.compress.planner import plan_bits
from frugal.compress.qat import apply_bits, distill
from frugal.compress.sensitivity import (
    least_sensitive_heads,
    sensitivity_agreement,
    sensitivity_table,
    subgroup_sensitivity,
)
from frugal.energy.modeled import DeviceProfile, TensorCost, energy_per_request, with_bits
from frugal.model.fisher import fisher_diagonal
from frugal.model.modeling import token_batches
from frugal.model.quantize import fake_quantize, plannable_tensors

PROFILE = DeviceProfile("hand", 60, 10.0, 1.0, {32: 2.0, 16: 1.0, 8: 0.5}, "test")
BLOCK = 64


def hand_costs() -> list[TensorCost]:
    # (name, elements, fp32 bytes read per request, MACs): a big rarely read tensor, a small
    # hot one, a medium one, and a bias that is not planned; one row each, so one float32
    # scale per quantized tensor at BLOCK = 64 (two for "big": 200 inputs)
    return [
        TensorCost("big", "m", 200, 32, 800.0, 100.0),
        TensorCost("hot", "m", 40, 32, 1600.0, 400.0),
        TensorCost("mid", "m", 60, 32, 240.0, 50.0),
        TensorCost("bias", "m", 5, 32, 20.0, 0.0),
    ]


def scales(name: str, bits: int) -> int:
    """Bytes of float32 block scales of a hand tensor at `bits`."""
    return 0 if bits in (0, 32) else 4 * -(-{"big": 200, "hot": 40, "mid": 60}[name] // BLOCK)


LOSS = {
    ("big", 2): 0.9, ("big", 4): 0.3, ("big", 8): 0.05,
    ("hot", 2): 2.0, ("hot", 4): 0.5, ("hot", 8): 0.1,
    ("mid", 2): 0.2, ("mid", 4): 0.05, ("mid", 8): 0.01,
}  # fmt: skip
WIDTHS = [2, 4, 8, 32]


@pytest.mark.parametrize("budget", [0.0, 0.1, 0.4, 1.0, 5.0])
def test_energy_plan_is_the_exhaustive_optimum_and_respects_the_budget(budget):
    costs = hand_costs()
    choices = {name: WIDTHS for name in ("big", "hot", "mid")}
    plan = plan_bits(
        {"batch": costs}, PROFILE, choices, LOSS, "energy", loss_budget=budget, block_size=BLOCK
    )
    assert plan.predicted_loss <= budget + 1e-9

    def energy(bits):  # the energy model itself: placement by its own knapsack
        return energy_per_request(with_bits(costs, bits, 8, BLOCK), PROFILE).total_pj

    feasible = [
        dict(zip(choices, combo, strict=True))
        for combo in itertools.product(WIDTHS, repeat=3)
        if sum(LOSS.get((n, b), 0.0) for n, b in zip(choices, combo, strict=True)) <= budget
    ]
    best = min(energy(bits) for bits in feasible)
    assert energy(plan.bits) == pytest.approx(best)


def test_size_plan_minimises_bytes_and_reverse_plan_minimises_loss():
    costs, choices = hand_costs(), {name: WIDTHS for name in ("big", "hot", "mid")}
    size = plan_bits(
        {"b": costs}, PROFILE, choices, LOSS, "bytes", loss_budget=0.4, block_size=BLOCK
    )
    # fewest bytes within loss 0.4, by hand (block scales included: 16 B for big's 4 blocks,
    # 4 B for the others): hot alone at 4 bits breaks the budget, so hot is at 8 (0.1, 44 B)
    # or 32 (0, 160 B). With hot at 8: big at 8 + mid at 2 (0.35, 216 + 19 B) beats big at 8 +
    # mid at 4 (34 B) and big at 4 + mid at 32 (116 + 240 B); with hot at 32 the best, big at
    # 4 + mid at 4 (0.35), takes 310 B against 279 B
    assert size.bits == {"big": 8, "hot": 8, "mid": 2}
    assert size.size_bytes == (200 + 4) + (40 + 4) + (15 + 4) + 5 * 4  # 8 bits: one scale a row
    loose = plan_bits({"b": costs}, PROFILE, choices, LOSS, "loss", energy_budget=1.0)
    assert loose.predicted_loss == 0.0  # everything fits the budget at full precision
    tight = plan_bits({"b": costs}, PROFILE, choices, LOSS, "loss", energy_budget=0.3)
    assert tight.predicted_loss > 0
    with pytest.raises(ValueError, match="no plan meets the budget"):
        plan_bits({"b": costs}, PROFILE, choices, LOSS, "loss", energy_budget=0.001)


def test_a_latency_budget_keeps_slow_kernels_out_of_the_plan():
    """Given kernels where 4 bits is slower than 8 (MatMulNBits vs DynamicQuantizeMatMul) and
    float slower still, when the linear layers may take no more than all-int8's time, then no
    layer is at 4 bits; with room for one 4-bit layer, it goes to the layer whose bytes cost
    the most energy; without a budget, both are at 4 bits."""
    costs = [c for c in hand_costs() if c.name in ("big", "hot")]
    choices = {"big": [4, 8, 32], "hot": [4, 8, 32]}
    latency = {
        ("big", 4): 30.0, ("big", 8): 20.0, ("big", 32): 40.0,
        ("hot", 4): 15.0, ("hot", 8): 10.0, ("hot", 32): 20.0,
    }  # fmt: skip
    free = {key: 0.0 for key in LOSS}

    def plan(budget):
        return plan_bits(
            {"batch": costs}, PROFILE, choices, free, "energy", loss_budget=1.0,
            block_size=BLOCK, latency=latency, latency_budget=budget,
        ).bits  # fmt: skip

    assert plan(None) == {"big": 4, "hot": 4}
    assert plan(30.0) == {"big": 8, "hot": 8}  # all-int8's time
    assert plan(35.0) == {"big": 8, "hot": 4}  # hot is read most: its 4 bits save the most
    assert plan(45.0) == {"big": 4, "hot": 4}


def _kept(costs: list[TensorCost], keep: float, by_row: set[str]) -> list[TensorCost]:
    """The hand costs with `keep` of "big" (rows) and "mid" (columns) left."""
    from frugal.compress.planner import _shrunk

    return [_shrunk(c, keep, c.name in by_row) if c.name in ("big", "mid") else c for c in costs]


@pytest.mark.parametrize("budget", [0.0, 0.2, 0.5, 1.0, 5.0])
def test_a_structure_keeps_one_share_for_all_its_tensors_at_the_exhaustive_optimum(budget):
    """Given "big" (by rows) and "mid" (by input columns) in one structure that may keep half
    its channels at a predicted loss of 0.4, the plan is the least-energy (width, share)
    combination within the loss budget, found by enumeration with the energy model itself,
    and both tensors keep the same share."""
    from frugal.compress.planner import Structure

    costs = hand_costs()
    choices = {name: [4, 8, 32] for name in ("big", "hot", "mid")}
    structure = Structure(("big",), ("mid",), {0.5: 0.4, 1.0: 0.0})
    plan = plan_bits(
        {"batch": costs}, PROFILE, choices, LOSS, "energy", loss_budget=budget, block_size=BLOCK,
        structures={"ffn": structure},
    )  # fmt: skip
    assert plan.predicted_loss <= budget + 1e-9

    def energy(bits, keep):
        priced = with_bits(_kept(costs, keep, {"big"}), bits, 8, BLOCK)
        return energy_per_request(priced, PROFILE).total_pj

    feasible = [
        (dict(zip(choices, combo, strict=True)), keep)
        for combo in itertools.product([4, 8, 32], repeat=3)
        for keep in (0.5, 1.0)
        if sum(LOSS.get((n, b), 0.0) for n, b in zip(choices, combo, strict=True))
        + structure.loss[keep]
        <= budget
    ]
    best = min(energy(bits, keep) for bits, keep in feasible)
    keep = plan.keep.get("ffn", 1.0)
    assert energy(plan.bits, keep) == pytest.approx(best)
    assert (keep == 0.5) == (budget >= 0.4 + 0.05 + 0.01 + 0.1)  # pruning pays once affordable


def test_zeroed_channels_score_exactly_what_the_pruned_model_computes(clf):
    """Candidate plans are scored with the removed feed-forward groups zeroed in place; the
    served model has them cut out. Both give the same logits, and zeroing leaves no trace."""
    from frugal.compress.pruning import (
        channel_removal,
        channels_zeroed,
        kept_channels,
        prune_structure,
        structure_groups,
    )
    from frugal.model.fisher import fisher_diagonal
    from frugal.model.modeling import logits_of

    model, n = clf.model, clf.model.config.intermediate_size
    fisher = fisher_diagonal(model, token_batches(clf, TEXTS, 1), plannable_tensors(model))
    groups = structure_groups(model, fisher, GROUP)
    removed = channel_removal(groups, {0: 0.5, 1: 0.5}, n, GROUP)
    assert kept_channels(n, GROUP, 0.5) == n // 2 and len(removed) == 2 * (n // GROUP // 2)
    before = logits_of(clf, TEXTS)
    with channels_zeroed(model, removed, GROUP):
        zeroed = logits_of(clf, TEXTS)
    assert torch.equal(logits_of(clf, TEXTS), before)
    pruned = copy.deepcopy(clf)
    prune_structure(pruned.model, removed, GROUP)
    assert pruned.model.bert.encoder.layer[0].intermediate.dense.out_features == n // 2
    assert torch.allclose(logits_of(pruned, TEXTS), zeroed, atol=1e-5)
    assert not torch.allclose(zeroed, before, atol=1e-5)


def test_pruned_channels_pay_for_their_time_and_need_a_measured_shape():
    """Given 4 bits slower than 8 and an int8 time budget, removing half of a structure's
    channels frees the time a 4-bit layer needs; a share whose shape the latency table lacks
    is never planned under a latency budget."""
    from frugal.compress.planner import Structure

    costs = [c for c in hand_costs() if c.name in ("big", "hot", "mid")]
    choices = {"big": [4, 8], "hot": [4, 8], "mid": [4, 8]}
    latency = {
        ("big", 4): 30.0, ("big", 8): 20.0, ("hot", 4): 15.0, ("hot", 8): 10.0,
        ("mid", 4): 12.0, ("mid", 8): 8.0,
        ("big", 4, 0.5): 15.0, ("big", 8, 0.5): 10.0, ("mid", 4, 0.5): 6.0, ("mid", 8, 0.5): 4.0,
    }  # fmt: skip
    free = {key: 0.0 for key in LOSS}
    ffn = {"ffn": Structure(("big",), ("mid",), {0.5: 0.5, 1.0: 0.0})}

    def plan(loss_budget, table):
        return plan_bits(
            {"batch": costs}, PROFILE, choices, free, "energy", loss_budget=loss_budget,
            block_size=BLOCK, latency=table, latency_budget=38.0, structures=ffn,
        )  # fmt: skip

    unpruned = plan(0.4, latency)  # pruning costs 0.5: out of the budget
    assert unpruned.keep == {} and unpruned.bits == {"big": 8, "hot": 8, "mid": 8}
    pruned = plan(1.0, latency)  # half the channels free 14 µs: room for 4 bits everywhere
    assert pruned.keep == {"ffn": 0.5} and pruned.bits == {"big": 4, "hot": 4, "mid": 4}
    unmeasured = {k: v for k, v in latency.items() if len(k) == 2}
    assert plan(1.0, unmeasured).keep == {}


def test_kernel_latency_reads_a_hand_made_table_at_the_median_request(clf):
    """Given a table where every kernel takes µs = tokens × (1 at int8, 2 at 4 bits, 1.5 in
    float) per square-hidden-sized unit of work, when the planner prices the model's linear layers,
    then each is read at the median request's token count (the head at one row, the pooled
    text), and the budget is latency_budget × the all-int8 sum."""
    from frugal.compress.planner import kernel_latency
    from frugal.config import load_params
    from frugal.energy.latency import LatencyTable
    from frugal.model.quantize import plannable_tensors
    from tests.conftest import ROOT

    tokens = [1, 8, 16, 32]
    per_token = {8: 1.0, 4: 2.0, 32: 1.5}
    hidden = clf.model.config.hidden_size
    shapes = {
        (m.in_features, m.out_features)
        for m in clf.model.modules()
        if isinstance(m, torch.nn.Linear)
    }
    table = LatencyTable(
        "hand", "0", 2, 64, tokens,
        {(b, k, n): [t * f * k * n / hidden**2 for t in tokens]
         for b, f in per_token.items() for k, n in shapes},
    )  # fmt: skip
    cfg = load_params(ROOT / "params.yaml", {"compress": {"latency_budget": 1.5}}).compress
    choices = {name: [0, 4, 8, 32] for name in plannable_tensors(clf.model)}
    latency, budget = kernel_latency(clf, TEXTS, choices, table, cfg)
    lengths = [len(clf.tokenizer(t)["input_ids"]) for t in TEXTS]
    median = float(np.median(lengths))
    query = "bert.encoder.layer.0.attention.self.query.weight"
    assert latency[(query, 8)] == pytest.approx(median)
    assert latency[(query, 4)] == pytest.approx(2 * median)
    assert latency[(query, 0)] == 0.0
    assert latency[("classifier.weight", 8)] == pytest.approx(4 / hidden)  # one row
    assert "bert.embeddings.word_embeddings.weight" not in {t for t, _ in latency}
    int8 = sum(v for (t, b), v in latency.items() if b == 8)
    assert budget == pytest.approx(1.5 * int8)
    assert kernel_latency(clf, TEXTS, choices, None, cfg) == ({}, None)  # no table: no limit


@pytest.fixture(scope="module")
def clf():
    from frugal.model.modeling import new_classifier

    torch.manual_seed(0)
    return new_classifier(["DESC", "HUM", "LOC", "NUM"], max_length=24)


GROUP = 64  # feed-forward channels per pruning / sensitivity group (compress.channel_group)


TEXTS = [
    "Who wrote Hamlet ?",
    "How far is the Moon from the Earth ?",
    "Where is the Eiffel Tower ?",
    "What does NASA stand for ?",
    "When did the war end ?",
    "Who invented the telephone ?",
]
LABELS = ["HUM", "NUM", "LOC", "DESC", "NUM", "HUM"]


def test_sensitivity_measures_grow_as_bits_shrink_and_their_agreement_is_reported(clf):
    config = clf.model.config
    fisher = fisher_diagonal(clf.model, token_batches(clf, TEXTS, 1), plannable_tensors(clf.model))
    assert set(fisher) == set(plannable_tensors(clf.model))
    assert all((f >= 0).all() for f in fisher.values())
    choices = {name: [2, 8, 32] for name in fisher}
    table = sensitivity_table(clf, TEXTS, LABELS, [2, 8], fisher, choices, BLOCK)
    assert len(table) == 2 * len(fisher)
    wide = table.pivot(index="tensor", columns="bits", values="fisher_loss")
    assert (wide[2] >= wide[8]).all()
    kl = table.pivot(index="tensor", columns="bits", values="kl")
    assert (kl >= -1e-6).all().all() and kl[2].mean() > kl[8].mean()
    subgroups = subgroup_sensitivity(
        clf.model, fisher, [2, 8], n_heads=config.num_attention_heads, group_size=GROUP,
        block_size=BLOCK,
    )  # fmt: skip
    # heads and channel groups partition their tensor: their predictions add up to its own
    query = "bert.encoder.layer.0.attention.self.query.weight"
    heads = subgroups[(subgroups["tensor"] == query) & (subgroups["bits"] == 2)]
    assert len(heads) == config.num_attention_heads and set(heads["kind"]) == {"head"}
    whole = table[(table["tensor"] == query) & (table["bits"] == 2)]["fisher_loss"].item()
    assert heads["fisher_loss"].sum() == pytest.approx(whole, rel=1e-4)
    ffn = "bert.encoder.layer.0.intermediate.dense.weight"
    channel_groups = config.intermediate_size // GROUP
    assert (subgroups[(subgroups["tensor"] == ffn) & (subgroups["bits"] == 8)]).shape[0] == (
        channel_groups
    )
    agreement = sensitivity_agreement(table)
    assert set(agreement) == {"fisher_vs_kl", "fisher_vs_loss_change", "fisher_vs_accuracy_drop"}
    assert agreement["fisher_vs_kl"] > 0  # both rank the 2-bit tensors above the 8-bit ones


def test_least_sensitive_heads_sum_a_heads_tensors_at_the_narrowest_width():
    rows = [
        {"tensor": f"bert.encoder.layer.{layer}.attention.{part}.weight", "kind": "head",
         "group": head, "bits": bits, "fisher_loss": loss * (10 if bits == 8 else 1)}
        for layer, head, loss in ((0, 0, 0.5), (0, 1, 0.1), (1, 0, 0.3))
        for part in ("self.query", "output.dense")
        for bits in (2, 8)
    ] + [{"tensor": "bert.encoder.layer.0.intermediate.dense.weight", "kind": "channels",
          "group": 0, "bits": 2, "fisher_loss": 0.0}]  # fmt: skip
    heads = least_sensitive_heads(pd.DataFrame(rows), top=2)
    assert heads == [
        {"layer": 0, "head": 1, "fisher_loss": pytest.approx(0.2)},
        {"layer": 1, "head": 0, "fisher_loss": pytest.approx(0.6)},
    ]
    assert least_sensitive_heads(pd.DataFrame(rows[-1:])) == []


def test_distillation_leaves_quantized_weights_and_follows_the_teacher(clf):
    from frugal.model.modeling import logits_of

    def kl_to_teacher(model_clf) -> float:
        teacher = torch.log_softmax(logits_of(clf, TEXTS), -1)
        student = torch.log_softmax(logits_of(model_clf, TEXTS), -1)
        return float((teacher.exp() * (teacher - student)).sum(-1).mean())

    bits = {name: 2 for name in plannable_tensors(clf.model)}
    post_training = copy.deepcopy(clf)
    apply_bits(post_training.model, bits, BLOCK)
    student = copy.deepcopy(clf)
    losses = distill(
        student, bits, TEXTS, steps=17, batch_size=3, learning_rate=1e-4, seed=0, block_size=BLOCK
    )
    assert len(losses) == 17  # a step count, across reshuffled passes over the 6 texts
    assert kl_to_teacher(student) < kl_to_teacher(post_training)
    params = dict(student.model.named_parameters())
    name = "bert.encoder.layer.1.attention.self.query.weight"
    assert torch.allclose(params[name], fake_quantize(params[name], 2, BLOCK), atol=1e-6)
    assert not torch.equal(params[name], dict(clf.model.named_parameters())[name])


def test_distillation_learns_the_bought_labels_beside_the_teacher(clf):
    """Cross-entropy on the labeled texts pulls the student towards their labels, against the
    teacher; texts marked UNLABELED add nothing to it."""
    from frugal.compress.qat import UNLABELED
    from frugal.model.modeling import logits_of

    teacher = logits_of(clf, TEXTS).argmax(-1)
    wanted = [(int(t) + 1) % len(clf.labels) for t in teacher]  # never the teacher's class
    labels = wanted[:4] + [UNLABELED] * 2
    bits = {name: 8 for name in plannable_tensors(clf.model)}

    def cross_entropy(weight: float) -> float:
        student = copy.deepcopy(clf)
        distill(
            student, bits, TEXTS, steps=12, batch_size=3, learning_rate=1e-3, seed=0,
            block_size=BLOCK, labels=labels, label_weight=weight,
        )  # fmt: skip
        logits = logits_of(student, TEXTS[:4])
        return float(torch.nn.functional.cross_entropy(logits, torch.tensor(wanted[:4])))

    assert cross_entropy(5.0) < cross_entropy(0.0)
    with pytest.raises(ValueError, match="2 labels for 6 texts"):
        distill(clf, bits, TEXTS, 1, 3, 1e-3, 0, labels=[0, 1], label_weight=1.0)


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


def test_compressed_model_is_packed_pruned_tensors_absent_and_reloads_identically(clf, tmp_path):
    from safetensors import safe_open

    from frugal.model.runtime import OnnxClassifier

    names = plannable_tensors(clf.model)
    bits = {name: 4 for name in names}
    bits["bert.encoder.layer.1.attention.self.key.weight"] = 0
    bits["bert.encoder.layer.0.intermediate.dense.weight"] = 8
    bits["bert.embeddings.word_embeddings.weight"] = 2
    quantized = copy.deepcopy(clf)
    apply_bits(quantized.model, bits, BLOCK)
    save_compressed(quantized, bits, tmp_path / "m", {"how": "test"}, "int8", BLOCK)
    assert is_compressed(tmp_path / "m")

    with safe_open(str(tmp_path / "m" / "model.safetensors"), "pt") as stored:
        keys = set(stored.keys())
        pruned = "bert.encoder.layer.1.attention.self.key.weight"
        assert not any(k.startswith(pruned) for k in keys)  # stored as absent
        four = "bert.encoder.layer.0.attention.self.query.weight"
        hidden, vocab = clf.model.config.hidden_size, clf.model.config.vocab_size
        assert stored.get_tensor(f"{four}.codes").numel() == hidden * hidden // 2
        assert stored.get_tensor(f"{four}.scale").shape == (hidden, -(-hidden // BLOCK))
        table = "bert.embeddings.word_embeddings.weight"
        assert stored.get_tensor(f"{table}.codes").numel() == vocab * hidden // 4
    floats, loaded_bits = load_float(tmp_path / "m")
    assert loaded_bits == bits
    loaded = dict(floats.model.named_parameters())
    assert not loaded[pruned].any()  # really zero
    for name, value in quantized.model.named_parameters():
        assert torch.allclose(loaded[name], value, atol=1e-6), name
    # the served graph: packed, smaller than float32, and predicting what the reference does
    served = OnnxClassifier(tmp_path / "m")
    assert (tmp_path / "m" / "model.onnx").stat().st_size < 0.2 * 4 * sum(
        p.numel() for p in clf.model.parameters()
    )
    reference = accuracy_reference(quantized, bits)
    assert (served.predict_proba(TEXTS).argmax(1) == reference).all()


def accuracy_reference(clf, bits):
    """Predictions of the torch fake-quant reference: quantized weights (already applied) and
    int8 inputs per token and block to the quantized linear layers."""
    from frugal.compress.qat import quantized_activations
    from frugal.model.modeling import logits_of

    with quantized_activations(clf.model, 8, BLOCK, bits):
        return logits_of(clf, TEXTS).argmax(-1).numpy()


def test_loss_plan_under_a_size_budget_is_the_exhaustive_optimum():
    costs, choices = hand_costs(), {name: WIDTHS for name in ("big", "hot", "mid")}
    elements = {c.name: c.n_elements for c in costs}
    for budget in (150.0, 300.0, 600.0):
        plan = plan_bits(
            {"b": costs}, PROFILE, choices, LOSS, "loss", size_budget=budget, block_size=BLOCK
        )

        def size(bits):
            return sum(elements[n] * b / 8 + scales(n, b) for n, b in bits.items())

        feasible = [
            dict(zip(choices, combo, strict=True))
            for combo in itertools.product(WIDTHS, repeat=3)
            if size(dict(zip(choices, combo, strict=True))) <= budget
        ]
        best = min(sum(LOSS.get((n, b), 0.0) for n, b in bits.items()) for bits in feasible)
        assert plan.predicted_loss == pytest.approx(best)
        assert size(plan.bits) <= budget
    with pytest.raises(ValueError, match="no plan meets the budget"):
        plan_bits({"b": costs}, PROFILE, choices, LOSS, "loss", size_budget=10.0)


def test_structured_pruning_removes_exactly_the_chosen_heads_and_channels(clf, tmp_path):
    from frugal.compress.pruning import choose_structure, prune_structure, structure_groups
    from frugal.model.modeling import logits_of
    from frugal.model.runtime import OnnxClassifier

    fisher = fisher_diagonal(clf.model, token_batches(clf, TEXTS, 1), plannable_tensors(clf.model))
    config = clf.model.config
    n_layers, n_heads = config.num_hidden_layers, config.num_attention_heads
    channel_groups = config.intermediate_size // GROUP
    groups = structure_groups(clf.model, fisher, group_size=GROUP)
    heads = groups[(groups["layer"] == 0) & (groups["kind"] == "head")]
    assert len(heads) == n_heads
    assert len(groups[groups["kind"] == "channels"]) == n_layers * channel_groups
    params = dict(clf.model.named_parameters())
    layer0 = [f"bert.encoder.layer.0.attention.{m}.weight" for m in
              ("self.query", "self.key", "self.value", "output.dense")]  # fmt: skip
    whole = sum(float((0.5 * fisher[n] * params[n].detach() ** 2).sum()) for n in layer0)
    assert heads["fisher_loss"].sum() == pytest.approx(whole, rel=1e-4)

    removed = choose_structure(groups, 0.3)
    share = removed["params"].sum() / groups["params"].sum()
    assert 0.3 <= share < 0.3 + groups["params"].max() / groups["params"].sum()
    nearly_all = choose_structure(groups, 0.99)  # every layer keeps a head and a channel group
    kept = nearly_all.groupby(["layer", "kind"]).size().to_dict()
    assert kept == {
        (layer, kind): n
        for layer in range(n_layers)
        for kind, n in (("head", n_heads - 1), ("channels", channel_groups - 1))
    }

    pruned = copy.deepcopy(clf)
    prune_structure(pruned.model, removed, group_size=GROUP)
    zeroed = copy.deepcopy(clf)  # the same structures cut out by zeroing what reads them
    with torch.no_grad():
        for row in removed.itertuples():
            layer = zeroed.model.bert.encoder.layer[row.layer]
            dense = layer.attention.output.dense if row.kind == "head" else layer.output.dense
            size = config.hidden_size // n_heads if row.kind == "head" else GROUP
            dense.weight[:, row.group * size : (row.group + 1) * size] = 0
    assert torch.allclose(logits_of(pruned, TEXTS), logits_of(zeroed, TEXTS), atol=1e-4)
    n_before = sum(p.numel() for p in clf.model.parameters())
    n_after = sum(p.numel() for p in pruned.model.parameters())
    assert n_after < n_before - removed["params"].sum() * 0.99

    bits = {name: 8 for name in plannable_tensors(pruned.model)}
    apply_bits(pruned.model, bits, BLOCK)
    save_compressed(pruned, bits, tmp_path / "s", {"how": "test"}, "int8", BLOCK)
    floats, _ = load_float(tmp_path / "s")
    assert sum(p.numel() for p in floats.model.parameters()) == n_after
    # the graph has the smaller shapes: its MatMulNBits N and K are the pruned layer's
    import onnx

    graph = onnx.load(str(tmp_path / "s" / "model.onnx")).graph
    shapes = {
        n.name: {a.name: a.i for a in n.attribute if a.name in ("K", "N")}
        for n in graph.node
        if n.op_type == "MatMulNBits"
    }
    for name, param in pruned.model.named_parameters():
        if name in shapes:
            assert (shapes[name]["N"], shapes[name]["K"]) == tuple(param.shape), name
    served = OnnxClassifier(tmp_path / "s")
    assert (served.predict_proba(TEXTS).argmax(1) == accuracy_reference(pruned, bits)).all()


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
