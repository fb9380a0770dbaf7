"""frugal.compress.planner: bit plans against exhaustive search (energy, size, loss), structures,
and latency budgets read from a hand-made kernel table."""

import itertools

import numpy as np
import pytest
import torch

from frugal.compress.planner import plan_bits
from frugal.energy.modeled import TensorCost, energy_per_request, with_bits
from frugal.model.quantize import plannable_tensors
from tests.compress_samples import BLOCK, LOSS, PROFILE, TEXTS, WIDTHS, hand_costs, scales


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
