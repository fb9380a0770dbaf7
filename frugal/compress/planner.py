"""Planner: a multiple-choice knapsack, solved exactly as a MILP (scipy `milp`): one bit width
per tensor and which tensors sit in on-chip SRAM, jointly, minimising modeled energy per
utterance (summed over workloads, each relative to full precision) subject to the summed
predicted loss ≤ a budget and, as HAWQ-V3 does, the summed measured latency of the linear
layers' kernels ≤ a latency budget (`frugal.latency`'s table: 4-bit MatMulNBits is slower
than int8 DynamicQuantizeMatMul at these shapes, so 4 bits must pay for itself elsewhere);
or the reverse (least predicted loss under an energy or a size budget), or fewest bytes (the
size-guided baseline).

`analyse` measures once, on the base model, everything plans are chosen from (sensitivity,
structure costs, the workloads' tensor costs); `plan_candidate` is one plan of the budget sweep,
scored on dev after post-training quantization.

Pure: torch modules and numbers in, numbers and plans out; no Prefect, MLflow or files.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from scipy.optimize import Bounds, milp

from frugal.compress.pruning import structure_groups
from frugal.compress.qat import accuracy
from frugal.compress.sensitivity import (
    sensitivity_agreement,
    sensitivity_table,
    subgroup_sensitivity,
)
from frugal.config import CompressConfig
from frugal.energy import (
    FLOAT_BITS,
    DeviceProfile,
    TensorCost,
    activation_bytes,
    count_lengths,
    energy_per_request,
    linear_constraint,
    request_lengths,
    reserve,
    tensor_costs,
    with_bits,
)
from frugal.errors import FrugalError
from frugal.export import NATIVE_BITS, kind_of
from frugal.fisher import fisher_diagonal
from frugal.latency import LatencyTable, latency_us
from frugal.modeling import Classifier, token_batches
from frugal.quantize import plannable_tensors


class Infeasible(ValueError):
    """No plan meets the budgets."""


@dataclass(frozen=True)
class Plan:
    bits: dict[str, int]  # plannable tensor -> bits (others stay at 32)
    resident: list[str]  # tensors the planner put in SRAM for `profile`
    predicted_loss: float
    relative_energy: float  # as the MILP prices it: ÷ FP32 all read from DRAM, mean of workloads
    size_bytes: float


def plan_bits(
    costs: Mapping[str, list[TensorCost]],
    profile: DeviceProfile,
    choices: Mapping[str, list[int]],
    loss: Mapping[tuple[str, int], float],
    objective: str = "energy",
    loss_budget: float | None = None,
    energy_budget: float | None = None,
    activation_bits: int = 8,
    size_budget: float | None = None,
    block_size: int = 64,
    latency: Mapping[tuple[str, int], float] | None = None,
    latency_budget: float | None = None,
) -> Plan:
    """Choose bits per tensor (and, for energy, SRAM residency) by MILP.

    `costs`: workload -> full-precision `tensor_costs`; `choices`: tensor -> allowed bits
    (tensors not named stay at 32 bits but can still be placed in SRAM); `loss`: (tensor,
    bits) -> predicted loss increase (0 at 32 bits). `objective`: "energy" (modeled energy,
    each workload relative to its full-precision energy, averaged), "bytes" (size-guided) or
    "loss" (least predicted loss; needs `energy_budget`, the relative energy allowed, or
    `size_budget`). `size_budget`: bytes allowed for the tensors in `choices` at their widths.
    `latency`: (tensor, bits) -> µs per request of its kernel (absent: 0); `latency_budget`: the
    µs the chosen kernels may take together.
    """
    if objective not in ("energy", "bytes", "loss"):
        raise ValueError(f"objective must be energy, bytes or loss, got {objective!r}")
    if objective == "loss" and energy_budget is None and size_budget is None:
        raise ValueError("objective 'loss' needs an energy_budget or a size_budget")
    workloads = list(costs)
    first = costs[workloads[0]]
    per_workload = {w: {c.name: c for c in costs[w]} for w in workloads}
    options = []  # (tensor, bits)
    for cost in first:
        for bits in choices.get(cost.name, [FLOAT_BITS]):
            options.append((cost.name, bits))
    n = len(options)
    # every option priced exactly as the runtime executes it (block scales included)
    priced = {
        w: [
            with_bits([per_workload[w][t]], {t: b}, activation_bits, block_size)[0]
            for t, b in options
        ]
        for w in workloads
    }
    size = np.array([p.size_bytes for p in priced[workloads[0]]])
    # energy of each option when streamed from DRAM, and what SRAM residency saves
    dram_pj = np.zeros(n)
    saving_pj = np.zeros(n)
    full_energy = {}
    for w in workloads:
        table = per_workload[w]
        full_energy[w] = sum(
            c.bytes_read * profile.dram_pj_per_byte + c.macs * profile.mac_energy_pj(c.mac_bits)
            for c in table.values()
        )
        for i, p in enumerate(priced[w]):
            reads, macs, mac_pj = p.bytes_read, p.macs, profile.mac_energy_pj(p.mac_bits)
            dram_pj[i] += (reads * profile.dram_pj_per_byte + macs * mac_pj) / full_energy[w]
            saving_pj[i] += (
                reads * (profile.dram_pj_per_byte - profile.sram_pj_per_byte) / full_energy[w]
            )
    dram_pj /= len(workloads)
    saving_pj /= len(workloads)
    losses = np.array([loss.get((t, b), 0.0) if b != FLOAT_BITS else 0.0 for t, b in options])

    tensors = list(dict.fromkeys(t for t, _ in options))
    pick = np.zeros((len(tensors), 2 * n))  # exactly one width per tensor
    for i, (t, _) in enumerate(options):
        pick[tensors.index(t), i] = 1
    constraints = [linear_constraint(pick, 1, 1)]
    link = np.hstack([-np.eye(n), np.eye(n)])  # resident only at the chosen width
    constraints.append(linear_constraint(link, -np.inf, 0))
    constraints.append(
        linear_constraint(np.concatenate([np.zeros(n), size])[None, :], -np.inf, profile.sram_bytes)
    )
    energy_row = np.concatenate([dram_pj, -saving_pj])
    if loss_budget is not None:
        constraints.append(
            linear_constraint(np.concatenate([losses, np.zeros(n)])[None, :], -np.inf, loss_budget)
        )
    if energy_budget is not None:
        constraints.append(linear_constraint(energy_row[None, :], -np.inf, energy_budget))
    if latency_budget is not None:
        times = np.array([(latency or {}).get(option, 0.0) for option in options])
        row = np.concatenate([times, np.zeros(n)])
        constraints.append(linear_constraint(row[None, :], -np.inf, latency_budget))
    if size_budget is not None:
        planned = np.array([t in choices for t, _ in options], dtype=float)
        row = np.concatenate([size * planned, np.zeros(n)])
        constraints.append(linear_constraint(row[None, :], -np.inf, size_budget))
    if objective == "energy":
        c = energy_row
    elif objective == "bytes":
        # fewest bytes first; energy only breaks ties (scaled far below one byte)
        c = np.concatenate([size, np.zeros(n)]) + 1e-9 * energy_row
    else:
        c = np.concatenate([losses, np.zeros(n)]) + 1e-9 * energy_row
    result = milp(c=c, constraints=constraints, integrality=np.ones(2 * n), bounds=Bounds(0, 1))
    if not result.success:
        raise Infeasible(f"no plan meets the budget: {result.message}")
    x, y = result.x[:n] > 0.5, result.x[n:] > 0.5
    bits = {t: b for (t, b), chosen in zip(options, x, strict=True) if chosen and t in choices}
    return Plan(
        bits=bits,
        resident=[t for (t, _), on in zip(options, y, strict=True) if on],
        predicted_loss=float(losses[x].sum()),
        relative_energy=float(energy_row @ result.x),
        size_bytes=float(size[x].sum()),
    )


def relative_energy(
    costs: Mapping[str, list[TensorCost]],
    profile: DeviceProfile,
    bits: Mapping[str, int],
    activation_bits: int,
    block_size: int,
    reference: Mapping[str, list[TensorCost]] | None = None,
) -> dict[str, float]:
    """Modeled energy at `bits` (as executed) ÷ the full-precision `reference`'s (default `costs`
    itself), per workload (placement solved for each)."""
    reference = reference or costs
    return {
        workload: energy_per_request(
            with_bits(full, bits, activation_bits, block_size), profile
        ).total_pj
        / energy_per_request(reference[workload], profile).total_pj
        for workload, full in costs.items()
    }


def workload_costs(
    clf: Classifier, texts: list[str], workloads: list[str]
) -> tuple[dict[str, list[TensorCost]], float]:
    """Full-precision `tensor_costs` of `clf` per workload, invocations counted on `texts`, and
    the SRAM the longest request's activations hold (bytes, the largest over workloads)."""
    costs, held = {}, 0.0
    for workload in workloads:
        lengths = request_lengths(texts, workload, clf.tokenizer, clf.max_length)
        counts = count_lengths(clf.model, lengths)
        costs[workload] = tensor_costs(clf.model, counts, n_requests=len(texts))
        held = max(held, activation_bytes(clf.model, counts))
    return costs, held


@dataclass
class Analysis:
    """What every plan is chosen from, measured once on the base model."""

    tensors: list[str]  # the plannable tensors
    sensitivity: pd.DataFrame  # measured and Fisher-predicted, per (tensor, bits)
    subgroups: pd.DataFrame  # Fisher-predicted, per attention head / channel group
    structures: pd.DataFrame  # heads / channel groups and their Fisher removal cost
    agreement: dict[str, float]
    loss: dict[tuple[str, int], float]  # the planner's predicted loss of (tensor, bits)
    costs: dict[str, list[TensorCost]]  # full-precision tensor costs per workload
    activation_bytes: float  # SRAM held for activations (placement leaves it to them)
    choices: dict[str, list[int]]  # allowed bits per tensor: the widths the runtime executes
    reference_dev_accuracy: float
    budgets: list[float]  # the candidate plans' predicted-loss budgets
    latency: dict[tuple[str, int], float]  # µs per request of each (tensor, bits)'s kernel
    latency_budget: float | None  # µs the plan's linear kernels may take; None: no limit


@dataclass(frozen=True)
class Candidate:
    """One plan of the budget sweep and its post-training dev accuracy."""

    loss_budget: float
    plan: Plan
    dev_accuracy: float
    record: dict  # a row of the candidates table


def analyse(
    base: Classifier,
    unlabeled: list[str],
    dev_texts: list[str],
    dev_labels: list[str],
    workload_texts: list[str],
    cfg: CompressConfig,
    log: Callable[[str], None] = lambda _: None,
    progress: Callable[[str, int, int], None] = lambda *_: None,
    latency_table: LatencyTable | None = None,
) -> Analysis:
    """Fisher, measured sensitivity per (tensor, bits), per-subgroup and per-structure Fisher
    costs, the workloads' tensor costs, the budgets of the candidate plans (predicted-loss
    budgets ×2 apart, from ¼ of uniform int8's) and each kernel's latency on a median request
    (`latency_table`; None: plans have no latency limit)."""
    model = base.model
    model.eval()
    log(f"Fisher information on {min(len(unlabeled), cfg.fisher_texts)} unlabeled texts")
    fisher = fisher_diagonal(
        model, token_batches(base, unlabeled[: cfg.fisher_texts], 1), plannable_tensors(model)
    )
    n_sens = cfg.sensitivity_texts
    widths = sorted(set(cfg.bit_choices) - {FLOAT_BITS})
    choices = {
        name: sorted((set(cfg.bit_choices) | {FLOAT_BITS}) & set(NATIVE_BITS[kind_of(name)]))
        for name in plannable_tensors(model)
    }
    log(f"measured sensitivity: {len(fisher)} tensors × bits {widths} on {n_sens} dev texts")
    sensitivity = sensitivity_table(
        base,
        dev_texts[:n_sens],
        dev_labels[:n_sens],
        widths,
        fisher,
        choices,
        cfg.block_size,
        lambda done, total: progress("sensitivity", done, total),
    )
    column = {"kl": "kl", "fisher": "fisher_loss"}[cfg.sensitivity]
    loss = {
        (row.tensor, int(row.bits)): max(float(getattr(row, column)), 0.0)
        for row in sensitivity.itertuples()
    }
    int8_loss = sum(loss[(name, 8)] for name in fisher) if 8 in widths else 1e-3
    costs, held = workload_costs(base, workload_texts, cfg.workloads)
    try:
        latency, latency_budget = kernel_latency(base, workload_texts, choices, latency_table, cfg)
    except FrugalError as error:  # a shape the table lacks: plan with what it has, say so
        log(f"{error}; planning without a latency budget")
        latency, latency_budget = {}, None
    if latency_budget is not None:
        log(f"latency budget: {latency_budget:.0f} µs of linear kernels per median request")
    return Analysis(
        tensors=list(fisher),
        sensitivity=sensitivity,
        subgroups=subgroup_sensitivity(
            model,
            fisher,
            widths,
            model.config.num_attention_heads,
            cfg.channel_group,
            cfg.block_size,
        ),
        structures=structure_groups(model, fisher, cfg.channel_group),
        agreement=sensitivity_agreement(sensitivity),
        loss=loss,
        costs=costs,
        activation_bytes=held,
        choices=choices,
        reference_dev_accuracy=accuracy(base, dev_texts, dev_labels),
        budgets=[float(b) for b in int8_loss * 2.0 ** np.arange(-2, cfg.plan_budgets - 2)],
        latency=latency,
        latency_budget=latency_budget,
    )


def kernel_latency(
    base: Classifier,
    texts: list[str],
    choices: Mapping[str, list[int]],
    table: LatencyTable | None,
    cfg: CompressConfig,
) -> tuple[dict[tuple[str, int], float], float | None]:
    """µs of each linear layer's kernel at each allowed width on a request of the median
    length of `texts` (one request per text, as served), read from `table`, and the budget:
    `cfg.latency_budget` × the time with every linear layer at 8 bits (the int8 anchor's
    kernels). The head reads one row (the pooled text); the embedding lookup costs the same at
    every width (not timed)."""
    if table is None or cfg.latency_budget is None:
        return {}, None
    lengths = request_lengths(texts, "batch", base.tokenizer, base.max_length)
    tokens = float(np.median(np.repeat(list(lengths), list(lengths.values()))))
    modules = dict(base.model.named_modules())
    latency = {}
    for name, widths in choices.items():
        module = modules[name.removesuffix(".weight")]
        if not isinstance(module, torch.nn.Linear):
            continue
        rows = 1.0 if module is base.model.classifier else tokens
        for bits in widths:
            latency[(name, bits)] = latency_us(
                table, bits, module.in_features, module.out_features, rows
            )
    int8 = sum(latency.get((name, 8), 0.0) for name in choices)
    return latency, cfg.latency_budget * int8


def plan_candidate(
    base: Classifier,
    analysis: Analysis,
    budget: float,
    dev_texts: list[str],
    dev_labels: list[str],
    profile: DeviceProfile,
    cfg: CompressConfig,
) -> Candidate | None:
    """The least-energy plan within predicted loss `budget`, scored on dev after post-training
    quantization (weights and activations); None when no plan meets both that budget and the
    latency budget (below int8's predicted loss a plan needs float layers, slower than int8).
    `base` is left as it was."""
    a, act, block = analysis, cfg.qat.activation_bits, cfg.block_size
    profile = reserve(profile, a.activation_bytes)
    try:
        plan = plan_bits(
            a.costs, profile, a.choices, a.loss, "energy", budget, activation_bits=act,
            block_size=block, latency=a.latency, latency_budget=a.latency_budget,
        )  # fmt: skip
    except Infeasible:
        return None
    dev = accuracy(base, dev_texts, dev_labels, plan.bits, act, block)
    energy_by_workload = relative_energy(a.costs, profile, plan.bits, act, block)
    planned = sum(c.n_elements for c in a.costs[cfg.workloads[0]] if c.name in a.choices)
    record = {
        "loss_budget": budget,
        "predicted_loss": plan.predicted_loss,
        "size_bytes": plan.size_bytes,
        "mean_bits": 8 * plan.size_bytes / planned,
        **{f"relative_energy.{w}": e for w, e in energy_by_workload.items()},
        "linear_kernels_us": sum(a.latency.get((t, b), 0.0) for t, b in plan.bits.items()),
        "dev_accuracy": dev,
        "dev_drop": a.reference_dev_accuracy - dev,
    }
    return Candidate(budget, plan, dev, record)


def candidate_table(candidates: list[Candidate]) -> pd.DataFrame:
    return pd.DataFrame([c.record for c in candidates])


def lowest_energy_within(candidates: list[Candidate], drop: float) -> int:
    """Index of the least mean-energy candidate whose dev drop is ≤ `drop` (none that good:
    the most accurate one)."""
    if not candidates:
        raise Infeasible(
            "no candidate plan meets the latency budget (compress.latency_budget): raise it, "
            "or set it to null for plans without a latency limit"
        )
    table = candidate_table(candidates)
    mean_energy = table.filter(like="relative_energy.").mean(axis=1).to_numpy()
    ok = np.flatnonzero(table["dev_drop"].to_numpy() <= drop)
    if len(ok) == 0:
        return int(table["dev_drop"].idxmin())
    return int(ok[np.argmin(mean_energy[ok])])
