"""Compression: the planner against exhaustive search, sensitivity measures, distillation, and
compressed models on disk (packed, pruned tensors absent, same predictions after reload)."""

import copy
import itertools

import pytest
import torch

from frugal.compressed import (
    PrunedLinear,
    is_compressed,
    load_executable,
    load_float,
    save_compressed,
)
from frugal.compression import (
    apply_bits,
    distill,
    fisher_diagonal,
    plan_bits,
    plannable_tensors,
    sensitivity_agreement,
    sensitivity_table,
    subgroup_sensitivity,
)
from frugal.energy import DeviceProfile, TensorCost, energy_per_request, with_bits
from frugal.quantize import fake_quantize

PROFILE = DeviceProfile("hand", 60, 10.0, 1.0, {32: 2.0, 16: 1.0, 8: 0.5}, "test")


def hand_costs() -> list[TensorCost]:
    # (name, elements, fp32 bytes read per request, MACs): a big rarely read tensor, a small
    # hot one, a medium one, and a bias that is not planned
    return [
        TensorCost("big", "m", 200, 32, 800.0, 100.0),
        TensorCost("hot", "m", 40, 32, 1600.0, 400.0),
        TensorCost("mid", "m", 60, 32, 240.0, 50.0),
        TensorCost("bias", "m", 5, 32, 20.0, 0.0),
    ]


LOSS = {
    ("big", 2): 0.9, ("big", 4): 0.3, ("big", 8): 0.05, ("big", 16): 0.0,
    ("hot", 2): 2.0, ("hot", 4): 0.5, ("hot", 8): 0.1, ("hot", 16): 0.01,
    ("mid", 2): 0.2, ("mid", 4): 0.05, ("mid", 8): 0.01, ("mid", 16): 0.0,
}  # fmt: skip
WIDTHS = [2, 4, 8, 16, 32]


@pytest.mark.parametrize("budget", [0.0, 0.1, 0.4, 1.0, 5.0])
def test_energy_plan_is_the_exhaustive_optimum_and_respects_the_budget(budget):
    costs = hand_costs()
    choices = {name: WIDTHS for name in ("big", "hot", "mid")}
    plan = plan_bits({"batch": costs}, PROFILE, choices, LOSS, "energy", loss_budget=budget)
    assert plan.predicted_loss <= budget + 1e-9

    def energy(bits):  # the energy model itself: placement by its own knapsack
        return energy_per_request(with_bits(costs, bits), PROFILE).total_pj

    feasible = [
        dict(zip(choices, combo, strict=True))
        for combo in itertools.product(WIDTHS, repeat=3)
        if sum(LOSS.get((n, b), 0.0) for n, b in zip(choices, combo, strict=True)) <= budget
    ]
    best = min(energy(bits) for bits in feasible)
    assert energy(plan.bits) == pytest.approx(best)


def test_size_plan_minimises_bytes_and_reverse_plan_minimises_loss():
    costs, choices = hand_costs(), {name: WIDTHS for name in ("big", "hot", "mid")}
    size = plan_bits({"b": costs}, PROFILE, choices, LOSS, "bytes", loss_budget=0.4)
    # fewest bytes within loss 0.4, by hand: big at 4 bits (0.3, 100 B), hot at 16 (0.01,
    # 80 B), mid at 4 (0.05, 30 B) = 0.36 and 210 B; the next best, hot at 8 + mid at 16, is
    # 260 B; every cheaper combination breaks the budget
    assert size.bits == {"big": 4, "hot": 16, "mid": 4}
    assert size.size_bytes == 100 + 80 + 30 + 5 * 4
    loose = plan_bits({"b": costs}, PROFILE, choices, LOSS, "loss", energy_budget=1.0)
    assert loose.predicted_loss == 0.0  # everything fits the budget at full precision
    tight = plan_bits({"b": costs}, PROFILE, choices, LOSS, "loss", energy_budget=0.3)
    assert tight.predicted_loss > 0
    with pytest.raises(ValueError, match="no plan meets the budget"):
        plan_bits({"b": costs}, PROFILE, choices, LOSS, "loss", energy_budget=0.001)


@pytest.fixture(scope="module")
def clf():
    from frugal.modeling import new_classifier

    torch.manual_seed(0)
    return new_classifier(["DESC", "HUM", "LOC", "NUM"], max_length=24)


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
    fisher = fisher_diagonal(clf, TEXTS)
    assert set(fisher) == set(plannable_tensors(clf.model))
    assert all((f >= 0).all() for f in fisher.values())
    table = sensitivity_table(clf, TEXTS, LABELS, [2, 8], fisher)
    assert len(table) == 2 * len(fisher)
    wide = table.pivot(index="tensor", columns="bits", values="fisher_loss")
    assert (wide[2] >= wide[8]).all()
    kl = table.pivot(index="tensor", columns="bits", values="kl")
    assert (kl >= -1e-6).all().all() and kl[2].mean() > kl[8].mean()
    subgroups = subgroup_sensitivity(clf.model, fisher, [2, 8], n_heads=12, group_size=64)
    # heads and channel groups partition their tensor: their predictions add up to its own
    query = "bert.encoder.layer.0.attention.self.query.weight"
    heads = subgroups[(subgroups["tensor"] == query) & (subgroups["bits"] == 2)]
    assert len(heads) == 12 and set(heads["kind"]) == {"head"}
    whole = table[(table["tensor"] == query) & (table["bits"] == 2)]["fisher_loss"].item()
    assert heads["fisher_loss"].sum() == pytest.approx(whole, rel=1e-4)
    ffn = "bert.encoder.layer.0.intermediate.dense.weight"
    assert (subgroups[(subgroups["tensor"] == ffn) & (subgroups["bits"] == 8)]).shape[0] == 24
    agreement = sensitivity_agreement(table)
    assert set(agreement) == {"fisher_vs_kl", "fisher_vs_loss_change", "fisher_vs_accuracy_drop"}
    assert agreement["fisher_vs_kl"] > 0  # both rank the 2-bit tensors above the 8-bit ones


def test_distillation_leaves_quantized_weights_and_follows_the_teacher(clf):
    from frugal.compression import logits_of

    def kl_to_teacher(model_clf) -> float:
        teacher = torch.log_softmax(logits_of(clf, TEXTS), -1)
        student = torch.log_softmax(logits_of(model_clf, TEXTS), -1)
        return float((teacher.exp() * (teacher - student)).sum(-1).mean())

    bits = {name: 2 for name in plannable_tensors(clf.model)}
    post_training = copy.deepcopy(clf)
    apply_bits(post_training.model, bits)
    student = copy.deepcopy(clf)
    losses = distill(student, bits, TEXTS, epochs=8, batch_size=3, learning_rate=1e-4, seed=0)
    assert len(losses) == 16
    assert kl_to_teacher(student) < kl_to_teacher(post_training)
    params = dict(student.model.named_parameters())
    name = "bert.encoder.layer.2.attention.self.query.weight"
    assert torch.allclose(params[name], fake_quantize(params[name], 2), atol=1e-6)
    assert not torch.equal(params[name], dict(clf.model.named_parameters())[name])


def test_compressed_model_is_packed_pruned_tensors_absent_and_reloads_identically(clf, tmp_path):
    from safetensors import safe_open

    from frugal.compressed import int8_execution
    from frugal.modeling import predict_proba

    names = plannable_tensors(clf.model)
    bits = {name: 4 for name in names}
    bits["bert.encoder.layer.1.attention.self.key.weight"] = 0
    bits["bert.encoder.layer.3.intermediate.dense.weight"] = 2
    bits["bert.encoder.layer.4.output.dense.weight"] = 16
    bits["bert.embeddings.word_embeddings.weight"] = 8
    quantized = copy.deepcopy(clf)
    apply_bits(quantized.model, bits)
    save_compressed(quantized, bits, tmp_path / "m", {"how": "test"})
    assert is_compressed(tmp_path / "m")

    with safe_open(str(tmp_path / "m" / "model.safetensors"), "pt") as stored:
        keys = set(stored.keys())
        pruned = "bert.encoder.layer.1.attention.self.key.weight"
        assert not any(k.startswith(pruned) for k in keys)  # stored as absent
        four = "bert.encoder.layer.0.attention.self.query.weight"
        assert stored.get_tensor(f"{four}.codes").numel() == 384 * 384 // 2
        two = "bert.encoder.layer.3.intermediate.dense.weight"
        assert stored.get_tensor(f"{two}.codes").numel() == 384 * 1536 // 4
        assert stored.get_tensor("bert.encoder.layer.4.output.dense.weight").dtype == torch.float16
    floats, loaded_bits = load_float(tmp_path / "m")
    assert loaded_bits == bits
    loaded = dict(floats.model.named_parameters())
    assert not loaded[pruned].any()  # really zero
    for name, value in quantized.model.named_parameters():
        assert torch.allclose(loaded[name], value, atol=1e-6), name
    executable = int8_execution(quantized, bits)
    skipped = executable.model.get_submodule("bert.encoder.layer.1.attention.self.key")
    assert isinstance(skipped, PrunedLinear)  # nothing read or multiplied at run time
    x = torch.randn(2, 3, 384)
    bias = dict(quantized.model.named_parameters())["bert.encoder.layer.1.attention.self.key.bias"]
    assert torch.equal(skipped(x), bias.expand(2, 3, 384))
    in_memory = predict_proba(executable, TEXTS)
    reloaded = predict_proba(load_executable(tmp_path / "m"), TEXTS)
    assert torch.allclose(torch.from_numpy(reloaded), torch.from_numpy(in_memory), atol=1e-5)


def test_magnitude_pruned_tensor_stores_mask_and_kept_values_only(clf, tmp_path):
    from safetensors import safe_open

    from frugal.quantize import magnitude_prune

    name = "bert.encoder.layer.2.intermediate.dense.weight"  # 1536 × 384
    pruned = copy.deepcopy(clf)
    param = dict(pruned.model.named_parameters())[name]
    with torch.no_grad():
        param.copy_(fake_quantize(magnitude_prune(param, 0.75), 8))
    save_compressed(pruned, {name: 8}, tmp_path / "m", {"how": "test"}, sparse={name})
    n = 1536 * 384
    with safe_open(str(tmp_path / "m" / "model.safetensors"), "pt") as stored:
        assert stored.get_tensor(f"{name}.mask").numel() == n // 8
        assert stored.get_tensor(f"{name}.codes").numel() == round(0.25 * n)
    floats, bits = load_float(tmp_path / "m")
    assert torch.equal(dict(floats.model.named_parameters())[name], param)
    assert bits[name] == pytest.approx(8 * 0.25 + 1)  # values of kept weights + the mask


def test_loss_plan_under_a_size_budget_is_the_exhaustive_optimum():
    costs, choices = hand_costs(), {name: WIDTHS for name in ("big", "hot", "mid")}
    elements = {c.name: c.n_elements for c in costs}
    for budget in (150.0, 300.0, 600.0):
        plan = plan_bits({"b": costs}, PROFILE, choices, LOSS, "loss", size_budget=budget)
        feasible = [
            dict(zip(choices, combo, strict=True))
            for combo in itertools.product(WIDTHS, repeat=3)
            if sum(elements[n] * b / 8 for n, b in zip(choices, combo, strict=True)) <= budget
        ]
        best = min(sum(LOSS.get((n, b), 0.0) for n, b in bits.items()) for bits in feasible)
        assert plan.predicted_loss == pytest.approx(best)
        assert sum(elements[n] * b / 8 for n, b in plan.bits.items()) <= budget
    with pytest.raises(ValueError, match="no plan meets the budget"):
        plan_bits({"b": costs}, PROFILE, choices, LOSS, "loss", size_budget=10.0)


def test_structured_pruning_removes_exactly_the_chosen_heads_and_channels(clf, tmp_path):
    from frugal.compressed import int8_execution
    from frugal.compression import choose_structure, logits_of, prune_structure, structure_groups
    from frugal.modeling import predict_proba

    fisher = fisher_diagonal(clf, TEXTS)
    groups = structure_groups(clf.model, fisher, group_size=64)
    heads = groups[(groups["layer"] == 0) & (groups["kind"] == "head")]
    assert len(heads) == 12 and len(groups[groups["kind"] == "channels"]) == 6 * 1536 // 64
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
        (layer, kind): n for layer in range(6) for kind, n in (("head", 11), ("channels", 23))
    }

    pruned = copy.deepcopy(clf)
    prune_structure(pruned.model, removed, group_size=64)
    zeroed = copy.deepcopy(clf)  # the same structures cut out by zeroing what reads them
    with torch.no_grad():
        for row in removed.itertuples():
            layer = zeroed.model.bert.encoder.layer[row.layer]
            dense = layer.attention.output.dense if row.kind == "head" else layer.output.dense
            size = 32 if row.kind == "head" else 64
            dense.weight[:, row.group * size : (row.group + 1) * size] = 0
    assert torch.allclose(logits_of(pruned, TEXTS), logits_of(zeroed, TEXTS), atol=1e-4)
    n_before = sum(p.numel() for p in clf.model.parameters())
    n_after = sum(p.numel() for p in pruned.model.parameters())
    assert n_after < n_before - removed["params"].sum() * 0.99

    bits = {name: 8 for name in plannable_tensors(pruned.model)}
    apply_bits(pruned.model, bits)
    save_compressed(pruned, bits, tmp_path / "s", {"how": "test"})
    floats, _ = load_float(tmp_path / "s")
    assert sum(p.numel() for p in floats.model.parameters()) == n_after
    in_memory = predict_proba(int8_execution(pruned, bits), TEXTS)
    reloaded = predict_proba(load_executable(tmp_path / "s"), TEXTS)
    assert torch.allclose(torch.from_numpy(reloaded), torch.from_numpy(in_memory), atol=1e-5)


def test_candidates_and_variants_leave_the_base_model_as_it_was_and_repeat_exactly(clf):
    """What lets the flow run them as independent tasks: scoring a candidate plan and building
    a variant (distillation included) never change the base model, and the same inputs give
    the same variant."""
    from frugal.compression import analyse, build_variant, plan_candidate
    from frugal.config import load_params
    from frugal.energy import device_profile
    from tests.conftest import ROOT

    small = {"fisher_texts": 4, "sensitivity_texts": 6, "workload_texts": 4, "plan_budgets": 3}
    params = load_params(
        ROOT / "params.yaml",
        {"compress": {**small, "bit_choices": [4, 8], "qat": {"epochs": 1, "batch_size": 4}}},
    )
    cfg, profile = params.compress, device_profile("phone", params.energy.profiles["phone"])
    before = {k: v.clone() for k, v in clf.model.state_dict().items()}
    analysis = analyse(clf, TEXTS, TEXTS, LABELS, TEXTS[:4], cfg)
    candidates = [
        plan_candidate(clf, analysis, budget, TEXTS, LABELS, profile, cfg)
        for budget in analysis.budgets
    ]
    assert [c.loss_budget for c in candidates] == sorted(analysis.budgets)
    built = [
        build_variant(
            "energy_qat", clf, analysis, candidates, TEXTS, TEXTS, LABELS, TEXTS[:4], profile, cfg
        )
        for _ in range(2)
    ]
    after = clf.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    one, two = (v.classifier.model.state_dict() for v in built)
    assert all(torch.equal(one[k], two[k]) for k in one)
    assert not all(torch.equal(one[k], before[k]) for k in one)  # it did compress
    assert built[0].plan == built[1].plan
