"""Planner: a multiple-choice knapsack, solved exactly as a MILP (scipy `milp`): one bit width
per tensor and which tensors sit in on-chip SRAM, jointly, minimising modeled energy per
utterance (summed over workloads, each relative to full precision) subject to the summed
predicted loss ≤ a budget and, as HAWQ-V3 does, the summed measured latency of the linear
layers' kernels ≤ a latency budget (`frugal.energy.latency`'s table: 4-bit MatMulNBits is slower
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
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import torch
from scipy.optimize import Bounds, milp

from frugal.compress.pruning import (
    channel_removal,
    channels_zeroed,
    kept_channels,
    structure_groups,
)
from frugal.compress.qat import accuracy
from frugal.compress.sensitivity import (
    sensitivity_agreement,
    sensitivity_table,
    subgroup_sensitivity,
)
from frugal.config import CompressConfig
from frugal.energy.latency import LatencyTable, latency_us
from frugal.energy.modeled import (
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
from frugal.model.fisher import fisher_diagonal
from frugal.model.modeling import Classifier, logits_of, token_batches
from frugal.model.quantize import plannable_tensors
from frugal.model.runtime import FLOAT_BITS, NATIVE_BITS, kind_of


class Infeasible(ValueError):
    """No plan meets the budgets."""


@dataclass(frozen=True)
class Plan:
    bits: dict[str, int]  # plannable tensor -> bits (others stay at 32)
    resident: list[str]  # tensors the planner put in SRAM for `profile`
    predicted_loss: float
    relative_energy: float  # as the MILP prices it: ÷ FP32 all read from DRAM, mean of workloads
    size_bytes: float
    keep: dict[str, float] = field(default_factory=dict)  # structure -> share kept, when < 1


@dataclass(frozen=True)
class Structure:
    """Channels the planner may remove from a layer, a share at a time: the output rows of
    `by_row` and the input columns of `by_column` shrink together to `keep` of them (a feed-
    forward block: intermediate.dense's rows, output.dense's columns). `loss`: each share the
    planner may keep -> the predicted loss of removing the rest (1.0 -> 0)."""

    by_row: tuple[str, ...]
    by_column: tuple[str, ...]
    loss: Mapping[float, float]


def _shrunk(cost: TensorCost, keep: float, by_row: bool) -> TensorCost:
    """`cost` with only `keep` of its rows (`by_row`) or input columns left."""
    if keep == 1.0:
        return cost
    return replace(
        cost,
        n_elements=round(cost.n_elements * keep),
        bytes_read=cost.bytes_read * keep,
        macs=cost.macs * keep,
        rows=max(1, round(cost.rows * keep)) if by_row else cost.rows,
    )


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
    latency: Mapping[tuple, float] | None = None,
    latency_budget: float | None = None,
    structures: Mapping[str, Structure] | None = None,
) -> Plan:
    """Choose bits per tensor (and, for energy, SRAM residency and the share of each
    structure's channels kept) by MILP.

    `costs`: workload -> full-precision `tensor_costs`; `choices`: tensor -> allowed bits
    (tensors not named stay at 32 bits but can still be placed in SRAM); `loss`: (tensor,
    bits) -> predicted loss increase (0 at 32 bits). `objective`: "energy" (modeled energy,
    each workload relative to its full-precision energy, averaged), "bytes" (size-guided) or
    "loss" (least predicted loss; needs `energy_budget`, the relative energy allowed, or
    `size_budget`). `size_budget`: bytes allowed for the tensors in `choices` at their widths.
    `latency`: (tensor, bits) -> µs per request of its kernel, and (tensor, bits, keep) at a
    share `keep` < 1 of a structure's channels (absent: 0, or, for a share with a latency
    budget, not allowed: its shape was not measured); `latency_budget`: the µs the chosen
    kernels may take together. `structures`: name -> `Structure`; every tensor of one keeps
    the same share (its loss added once), and its reads, MACs and bytes shrink with it.
    """
    if objective not in ("energy", "bytes", "loss"):
        raise ValueError(f"objective must be energy, bytes or loss, got {objective!r}")
    if objective == "loss" and energy_budget is None and size_budget is None:
        raise ValueError("objective 'loss' needs an energy_budget or a size_budget")
    latency = latency or {}
    structures = structures or {}
    member: dict[str, tuple[str, bool]] = {}  # tensor -> (its structure, shrinks by row)
    for name, structure in structures.items():
        for tensor in structure.by_row + structure.by_column:
            member[tensor] = (name, tensor in structure.by_row)
    shares = [(s, keep) for s, structure in structures.items() for keep in sorted(structure.loss)]
    workloads = list(costs)
    first = costs[workloads[0]]
    per_workload = {w: {c.name: c for c in costs[w]} for w in workloads}

    def timed(tensor: str, bits: int, keep: float) -> float | None:
        if keep == 1.0 or bits == 0:
            return latency.get((tensor, bits), 0.0)
        return latency.get((tensor, bits, keep), None if latency_budget is not None else 0.0)

    options = []  # (tensor, bits, share of its structure kept)
    for cost in first:
        owner = member.get(cost.name)
        keeps = sorted(structures[owner[0]].loss) if owner else [1.0]
        for bits in choices.get(cost.name, [FLOAT_BITS]):
            options += [
                (cost.name, bits, k) for k in keeps if timed(cost.name, bits, k) is not None
            ]
    n, m = len(options), len(shares)

    def shrunk(w: str, tensor: str, keep: float) -> TensorCost:
        owner = member.get(tensor)
        return _shrunk(per_workload[w][tensor], keep, owner[1] if owner else True)

    # every option priced exactly as the runtime executes it (block scales included)
    priced = {
        w: [
            with_bits([shrunk(w, t, k)], {t: b}, activation_bits, block_size)[0]
            for t, b, k in options
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
    losses = np.array([loss.get((t, b), 0.0) if b != FLOAT_BITS else 0.0 for t, b, _ in options])
    share_losses = np.array([structures[s].loss[k] for s, k in shares])

    # variables: an option chosen (n), it sits in SRAM (n), a structure keeps a share (m)
    def row(x: object = 0.0, resident: object = 0.0, kept: object = 0.0) -> np.ndarray:
        return np.concatenate(
            [np.broadcast_to(x, n), np.broadcast_to(resident, n), np.broadcast_to(kept, m)]
        )[None, :]

    tensors = list(dict.fromkeys(t for t, _, _ in options))
    pick = np.zeros((len(tensors), 2 * n + m))  # exactly one (width, share) per tensor
    for i, (t, _, _) in enumerate(options):
        pick[tensors.index(t), i] = 1
    constraints = [linear_constraint(pick, 1, 1)]
    link = np.hstack([-np.eye(n), np.eye(n), np.zeros((n, m))])  # resident only if chosen
    constraints.append(linear_constraint(link, -np.inf, 0))
    constraints.append(linear_constraint(row(resident=size), -np.inf, profile.sram_bytes))
    for name in structures:  # one share per structure, the same for each of its tensors
        constraints.append(linear_constraint(row(kept=[s == name for s, _ in shares]), 1, 1))
        for j, (s, keep) in enumerate(shares):
            if s != name:
                continue
            for tensor in (t for t, (owner, _) in member.items() if owner == name):
                same = np.array([t == tensor and k == keep for t, _, k in options], dtype=float)
                constraints.append(linear_constraint(row(same, kept=-np.eye(m)[j]), 0, 0))
    energy_row = row(dram_pj, -saving_pj)[0]
    loss_row = row(losses, kept=share_losses)[0]
    if loss_budget is not None:
        constraints.append(linear_constraint(loss_row[None, :], -np.inf, loss_budget))
    if energy_budget is not None:
        constraints.append(linear_constraint(energy_row[None, :], -np.inf, energy_budget))
    if latency_budget is not None:
        times = np.array([timed(t, b, k) for t, b, k in options])
        constraints.append(linear_constraint(row(times), -np.inf, latency_budget))
    if size_budget is not None:
        planned = np.array([t in choices for t, _, _ in options], dtype=float)
        constraints.append(linear_constraint(row(size * planned), -np.inf, size_budget))
    if objective == "energy":
        c = energy_row
    elif objective == "bytes":
        # fewest bytes first; energy only breaks ties (scaled far below one byte)
        c = row(size)[0] + 1e-9 * energy_row
    else:
        c = loss_row + 1e-9 * energy_row
    result = milp(c=c, constraints=constraints, integrality=np.ones(2 * n + m), bounds=Bounds(0, 1))
    if not result.success:
        raise Infeasible(f"no plan meets the budget: {result.message}")
    x, y = result.x[:n] > 0.5, result.x[n : 2 * n] > 0.5
    kept = result.x[2 * n :] > 0.5
    bits = {t: b for (t, b, _), chosen in zip(options, x, strict=True) if chosen and t in choices}
    return Plan(
        bits=bits,
        resident=[t for (t, _, _), on in zip(options, y, strict=True) if on],
        predicted_loss=float(loss_row @ result.x),
        relative_energy=float(energy_row @ result.x),
        size_bytes=float(size[x].sum()),
        keep={s: k for (s, k), on in zip(shares, kept, strict=True) if on and k < 1.0},
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
    latency: dict[tuple, float]  # µs per request of each (tensor, bits[, share kept])'s kernel
    latency_budget: float | None  # µs the plan's linear kernels may take; None: no limit
    ffn: dict[str, Structure] = field(default_factory=dict)  # layer's FFN -> its shares' loss
    n_channels: int = 0  # feed-forward channels per layer
    group_size: int = 64  # channels per removable group

    def removal(self, plan: Plan) -> pd.DataFrame:
        """The feed-forward channel groups `plan` removes (rows of `structures`)."""
        keep = {int(name.split(".")[1]): share for name, share in plan.keep.items()}
        return channel_removal(self.structures, keep, self.n_channels, self.group_size)


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
    structures = structure_groups(model, fisher, cfg.channel_group)
    n_channels = model.config.intermediate_size
    ffn = ffn_structures(
        base, structures, cfg.ffn_keep, n_channels, cfg.channel_group, dev_texts[:n_sens]
    )
    if ffn:
        log(f"measured the loss of keeping {cfg.ffn_keep} of {len(ffn)} feed-forward layers")
    costs, held = workload_costs(base, workload_texts, cfg.workloads)
    try:
        latency, latency_budget = kernel_latency(
            base, workload_texts, choices, latency_table, cfg, n_channels
        )
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
        structures=structures,
        agreement=sensitivity_agreement(sensitivity),
        loss=loss,
        costs=costs,
        activation_bytes=held,
        choices=choices,
        reference_dev_accuracy=accuracy(base, dev_texts, dev_labels),
        budgets=[float(b) for b in int8_loss * 2.0 ** np.arange(-2, cfg.plan_budgets - 2)],
        latency=latency,
        latency_budget=latency_budget,
        ffn=ffn,
        n_channels=n_channels,
        group_size=cfg.channel_group,
    )


def ffn_structures(
    base: Classifier,
    structures: pd.DataFrame,
    keeps: list[float],
    n_channels: int,
    group_size: int,
    texts: list[str],
) -> dict[str, Structure]:
    """Each layer's feed-forward block as a `Structure` the planner may shrink to a share of
    `keeps`, with the measured loss (mean KL to the full model's outputs on `texts`) of
    removing the least-Fisher channel groups down to that share."""
    if not keeps or n_channels // group_size < 2:  # one group: nothing to choose from
        return {}
    reference = torch.log_softmax(logits_of(base, texts), -1)
    out = {}
    for layer in range(len(base.model.bert.encoder.layer)):
        loss = {1.0: 0.0}
        for keep in keeps:
            removed = channel_removal(structures, {layer: keep}, n_channels, group_size)
            with channels_zeroed(base.model, removed, group_size):
                logp = torch.log_softmax(logits_of(base, texts), -1)
            loss[keep] = max(float((reference.exp() * (reference - logp)).sum(-1).mean()), 0.0)
        prefix = f"bert.encoder.layer.{layer}"
        out[f"layer.{layer}.ffn"] = Structure(
            (f"{prefix}.intermediate.dense.weight",), (f"{prefix}.output.dense.weight",), loss
        )
    return out


def kernel_latency(
    base: Classifier,
    texts: list[str],
    choices: Mapping[str, list[int]],
    table: LatencyTable | None,
    cfg: CompressConfig,
    n_channels: int = 0,
) -> tuple[dict[tuple, float], float | None]:
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
            for keep in cfg.ffn_keep if n_channels else []:  # the pruned shares' own shapes
                kept = kept_channels(n_channels, cfg.channel_group, keep)
                if name.endswith("intermediate.dense.weight") and bits:
                    latency[(name, bits, keep)] = latency_us(
                        table, bits, module.in_features, kept, rows
                    )
                elif name.endswith("output.dense.weight") and "attention" not in name and bits:
                    latency[(name, bits, keep)] = latency_us(
                        table, bits, kept, module.out_features, rows
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
            structures=a.ffn,
        )  # fmt: skip
    except Infeasible:
        return None
    with channels_zeroed(base.model, a.removal(plan), a.group_size):
        dev = accuracy(base, dev_texts, dev_labels, plan.bits, act, block)
    energy_by_workload = relative_energy(
        kept_costs(a.costs, a.ffn, plan.keep), profile, plan.bits, act, block, reference=a.costs
    )
    planned = sum(c.n_elements for c in a.costs[cfg.workloads[0]] if c.name in a.choices)
    record = {
        "loss_budget": budget,
        "predicted_loss": plan.predicted_loss,
        "size_bytes": plan.size_bytes,
        "mean_bits": 8 * plan.size_bytes / planned,
        **{f"relative_energy.{w}": e for w, e in energy_by_workload.items()},
        "linear_kernels_us": sum(
            a.latency.get((t, b, keep_of(t, a.ffn, plan.keep)), a.latency.get((t, b), 0.0))
            for t, b in plan.bits.items()
        ),
        "ffn_share_kept": (sum(plan.keep.values()) + len(a.ffn) - len(plan.keep)) / len(a.ffn)
        if a.ffn
        else 1.0,
        "dev_accuracy": dev,
        "dev_drop": a.reference_dev_accuracy - dev,
    }
    return Candidate(budget, plan, dev, record)


def keep_of(tensor: str, structures: Mapping[str, Structure], keep: Mapping[str, float]) -> float:
    """The share of its structure's channels `tensor` keeps under `keep` (1.0: all)."""
    for name, structure in structures.items():
        if tensor in structure.by_row + structure.by_column:
            return keep.get(name, 1.0)
    return 1.0


def kept_costs(
    costs: Mapping[str, list[TensorCost]],
    structures: Mapping[str, Structure],
    keep: Mapping[str, float],
) -> dict[str, list[TensorCost]]:
    """`costs` with each structure's tensors shrunk to the share `keep` gives it."""
    rows = {t for s in structures.values() for t in s.by_row}
    return {
        w: [_shrunk(c, keep_of(c.name, structures, keep), c.name in rows) for c in table]
        for w, table in costs.items()
    }


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
