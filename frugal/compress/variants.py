"""The compressed variants `compress` builds: one recipe per name (`RECIPES`, in the order of
`frugal.config.VARIANTS`), each a small function of a `VariantJob`.

Plans are picked on dev accuracy (the test split is left to `evaluate`); every variant is a
copy of the base model, which is left as it was.

Pure: torch modules and numbers in, numbers and modules out; no Prefect, MLflow or files.
"""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from frugal.compress.planner import (
    Analysis,
    Candidate,
    candidate_table,
    kept_costs,
    lowest_energy_within,
    plan_bits,
    relative_energy,
    workload_costs,
)
from frugal.compress.pruning import choose_structure, prune_structure
from frugal.compress.qat import (
    KERNEL_BITS,
    ORT_DYNAMIC,
    UNLABELED,
    accuracy,
    apply_bits,
    correct,
    distill,
)
from frugal.config import CompressConfig
from frugal.energy.modeled import DeviceProfile, TensorCost, reserve, with_bits
from frugal.model.modeling import Classifier
from frugal.report.evaluation import accuracy_difference


@dataclass
class Variant:
    name: str
    classifier: Classifier
    bits: dict[str, int]
    execution: str  # "int8" kernels, "float" (weight-only quantization), or ORT_DYNAMIC
    plan: dict  # how it was chosen, predicted loss, modeled relative energy, bytes


@dataclass(frozen=True)
class VariantJob:
    """What a recipe builds from: `build_variant`'s inputs, the device profile with the
    activations' SRAM reserved, and `clf`, the copy of the base model the recipe compresses in
    place."""

    name: str
    base: Classifier
    clf: Classifier
    analysis: Analysis
    candidates: list[Candidate]
    unlabeled: list[str]
    dev_texts: list[str]
    dev_labels: list[str]
    workload_texts: list[str]
    profile: DeviceProfile
    cfg: CompressConfig
    log: Callable[[str], None]
    progress: Callable[[str, int, int], None]
    bought: Mapping[str, str] = field(default_factory=dict)  # text -> label, the bought labels

    def describe(
        self,
        bits: Mapping[str, int | float],
        how: str,
        execution: str,
        own_costs: Mapping[str, list[TensorCost]] | None = None,
        **extra: object,
    ) -> dict:
        """The plan record; `own_costs`: the variant's own (structurally pruned) tensors."""
        analysis, cfg = self.analysis, self.cfg
        costs = analysis.costs
        own = own_costs or costs
        act, block = KERNEL_BITS[execution], cfg.block_size
        priced = {c.name: c for c in with_bits(own[cfg.workloads[0]], bits, act, block)}
        planned = sum(c.n_elements for c in costs[cfg.workloads[0]] if c.name in analysis.choices)
        return {
            "how": how,
            "profile": self.profile.name,
            "relative_energy": relative_energy(
                own, self.profile, bits, act, block, reference=costs
            ),
            "activation_bits": act,
            "execution": execution,
            "block_size": block,
            "predicted_loss": sum(analysis.loss.get((n, b), 0.0) for n, b in bits.items()),
            "planned_bytes": sum(priced[n].size_bytes for n in bits),  # block scales included
            "mean_bits": sum(8 * priced[n].size_bytes for n in bits) / planned,
            "bits_histogram": {
                str(b): sum(1 for v in bits.values() if v == b) for b in sorted(set(bits.values()))
            },
            **extra,
        }

    def from_candidate(self, chosen: Candidate, how: str, **extra: object) -> dict:
        a, keep = self.analysis, chosen.plan.keep
        return self.describe(
            chosen.plan.bits, how, "int8", own_costs=kept_costs(a.costs, a.ffn, keep),
            loss_budget=chosen.loss_budget, resident=chosen.plan.resident,
            ffn_share_kept=chosen.record.get("ffn_share_kept", 1.0),
            removed_channel_groups=_by_layer(a.removal(chosen.plan), "channels"), **extra,
        )  # fmt: skip

    def pruned(self, clf: Classifier, chosen: Candidate) -> Classifier:
        """`clf` with the feed-forward channel groups `chosen` removes cut out (in place)."""
        removed = self.analysis.removal(chosen.plan)
        if len(removed):
            prune_structure(clf.model, removed, self.analysis.group_size)
        return clf

    def ptq_candidate(self) -> Candidate:
        """The lowest-energy candidate whose post-training dev drop is ≤ accuracy_budget."""
        return self.candidates[lowest_energy_within(self.candidates, self.cfg.accuracy_budget)]

    def plan(self, objective: str, within_latency: bool = True, **budgets: float) -> dict[str, int]:
        """The plan of `objective` within `budgets` (and the latency budget, unless not
        `within_latency`)."""
        a = self.analysis
        latency_budget = a.latency_budget if within_latency else None
        return plan_bits(
            a.costs, self.profile, a.choices, a.loss, objective,
            activation_bits=self.cfg.qat.activation_bits, block_size=self.cfg.block_size,
            latency=a.latency, latency_budget=latency_budget, **budgets,
        ).bits  # fmt: skip

    def recover(self, clf: Classifier, bits: Mapping[str, int]) -> list[float]:
        """Quantization-aware distillation from the full-precision base model on the pool's
        texts, with cross-entropy on those whose label was bought."""
        q, name = self.cfg.qat, self.name
        index = {label: i for i, label in enumerate(clf.labels)}
        labels = [
            index.get(self.bought[t], UNLABELED) if t in self.bought else UNLABELED
            for t in self.unlabeled
        ]
        self.log(
            f"QAT: {q.steps} distillation steps of {q.batch_size} of {len(self.unlabeled)} "
            f"texts ({sum(y != UNLABELED for y in labels)} labeled)"
        )
        return distill(
            clf, bits, self.unlabeled, q.steps, q.batch_size, q.learning_rate, q.seed,
            q.activation_bits, lambda step, total, _loss: self.progress(f"QAT {name}", step, total),
            teacher=self.base.model, block_size=self.cfg.block_size, labels=labels,
            label_weight=q.label_weight,
        )  # fmt: skip

    def recovered(
        self, clf: Classifier, bits: Mapping[str, int], losses: list[float]
    ) -> tuple[dict, np.ndarray]:
        """The record of a distilled model (dev accuracy, first and last distillation loss),
        and which dev examples it gets right."""
        act, block = self.cfg.qat.activation_bits, self.cfg.block_size
        hits = correct(clf, self.dev_texts, self.dev_labels, None, act, block, bits)
        record = {
            "qat_dev_accuracy": float(hits.mean()),
            "distill_loss_first": losses[0],
            "distill_loss_last": losses[-1],
        }
        return record, hits


def _uniform(job: VariantJob, width: int, execution: str, how: str) -> Variant:
    bits = {n: width for n in job.analysis.tensors}
    apply_bits(job.clf.model, bits, job.cfg.block_size)
    return Variant(job.name, job.clf, bits, execution, job.describe(bits, how, execution))


def ort_int8(job: VariantJob) -> Variant:
    """The anchor a user would pick instead, at its best: ONNX Runtime's one-line dynamic int8
    (`quantize_dynamic`) of the base model's fused float graph, with the options a careful user
    would try (per tensor or per output channel, full or reduced range), whichever is most
    accurate on dev (ties: the defaults first). Applied when saved
    (`frugal.compress.packed.save_compressed`); priced, like every model, from the graph it serves."""
    from frugal.compress.packed import graph_accuracy, ort_dynamic
    from frugal.model.export import export_onnx

    options = [(False, False), (True, False), (False, True), (True, True)]
    with tempfile.TemporaryDirectory() as temp:
        float_path = export_onnx(job.base, {}, Path(temp) / "float.onnx", job.cfg.block_size)
        dev = [
            graph_accuracy(
                ort_dynamic(float_path, *option), job.base, job.dev_texts, job.dev_labels,
                job.cfg.threads,
            )
            for option in options
        ]  # fmt: skip
    per_channel, reduce_range = options[int(np.argmax(dev))]  # the first of equals
    job.log(
        f"quantize_dynamic dev accuracy (per_channel, reduce_range): {dict(zip(options, dev, strict=True))}"
    )
    how = (
        f"onnxruntime.quantization.quantize_dynamic(weight_type=QInt8, per_channel="
        f"{per_channel}, reduce_range={reduce_range}) on the fused float graph; the options "
        "chosen on dev"
    )
    return Variant(
        job.name, job.clf, {}, ORT_DYNAMIC,
        {"how": how, "profile": job.profile.name, "per_channel": per_channel,
         "reduce_range": reduce_range,
         "dev_accuracy_by_option": {f"per_channel={a},reduce_range={b}": d
                                    for (a, b), d in zip(options, dev, strict=True)}},
    )  # fmt: skip


def int8_ptq(job: VariantJob) -> Variant:
    """Every plannable tensor at 8 bits, post-training, int8 kernels."""
    return _uniform(job, 8, "int8", "uniform 8-bit post-training")


def int4_weight_only(job: VariantJob) -> Variant:
    """Every plannable tensor at 4 bits, activations in float."""
    return _uniform(job, 4, "float", "uniform 4-bit weights, float activations")


def energy_ptq(job: VariantJob) -> Variant:
    """The lowest-energy candidate within `accuracy_budget`, post-training."""
    chosen = job.ptq_candidate()
    how = (
        f"energy-guided plan, dev drop ≤ {job.cfg.accuracy_budget} after post-training quantization"
    )
    apply_bits(job.pruned(job.clf, chosen).model, chosen.plan.bits, job.cfg.block_size)
    return Variant(
        job.name, job.clf, dict(chosen.plan.bits), "int8", job.from_candidate(chosen, how)
    )


def size_guided(job: VariantJob) -> Variant:
    """Fewest bytes at `energy_ptq`'s predicted-loss budget (and the latency budget),
    post-training."""
    budget = job.ptq_candidate().loss_budget
    bits = job.plan("bytes", loss_budget=budget)
    how = "size-guided plan (fewest bytes) at energy_ptq's predicted-loss budget"
    apply_bits(job.clf.model, bits, job.cfg.block_size)
    return Variant(
        job.name, job.clf, dict(bits), "int8", job.describe(bits, how, "int8", loss_budget=budget)
    )


def qat_order(candidates: list[Candidate], screen: float) -> list[int]:
    """Indices of the candidates worth distilling: post-training dev drop ≤ `screen`, the
    cheapest (mean modeled energy) first; none that good: the most accurate one."""
    table = candidate_table(candidates)
    energy = table.filter(like="relative_energy.").mean(axis=1)
    ok = table.index[table["dev_drop"] <= screen]
    if len(ok) == 0:
        return [lowest_energy_within(candidates, screen)]
    return [int(i) for i in energy[ok].sort_values(kind="stable").index]


def pick_trial(
    trials: list[np.ndarray], reference: float, budget: float, seed: int
) -> tuple[int, bool]:
    """(index, whether it met `budget`) of the trial to ship, the trials' per-example dev
    correctness given cheapest first: the first within `budget` of `reference` accuracy; none
    is: the first whose paired 90% bootstrap CI against the most accurate trial reaches 0 (a
    question or two of dev is noise, not a reason to ship a costlier plan)."""
    for index, hits in enumerate(trials):
        if reference - float(np.mean(hits)) <= budget:
            return index, True
    best = int(np.argmax([np.mean(hits) for hits in trials]))
    for index, hits in enumerate(trials):
        if index == best:
            return index, False
        gap = accuracy_difference(hits, trials[best], 2000, seed, confidence=0.9)
        if gap["ci90_high"] >= 0:
            return index, False
    return best, False


def energy_qat(job: VariantJob) -> Variant:
    """Chosen by its accuracy after distillation: the candidates within the looser
    `qat_accuracy_budget` are distilled cheapest first, up to `qat.trials` of them, until one
    is within `accuracy_budget` of FP32 on dev; none is: the most accurate trial ships."""
    cfg, reference = job.cfg, job.analysis.reference_dev_accuracy
    trials: list[tuple[Candidate, Classifier, dict, np.ndarray]] = []
    for index in qat_order(job.candidates, cfg.qat_accuracy_budget)[: cfg.qat.trials]:
        chosen = job.candidates[index]
        clf = job.pruned(job.clf if not trials else copy.deepcopy(job.base), chosen)
        extra, hits = job.recovered(clf, chosen.plan.bits, job.recover(clf, chosen.plan.bits))
        lost = reference - chosen.dev_accuracy
        # how much of the post-training loss on dev the distillation won back (1 = all of it)
        extra["recovered_share_of_ptq_loss"] = (
            (extra["qat_dev_accuracy"] - chosen.dev_accuracy) / lost if lost > 0 else None
        )
        trials.append((chosen, clf, extra, hits))
        job.log(
            f"QAT trial {len(trials)}: dev {chosen.dev_accuracy:.4f} after post-training "
            f"quantization, {extra['qat_dev_accuracy']:.4f} after distillation "
            f"(FP32 {reference:.4f})"
        )
        if reference - extra["qat_dev_accuracy"] <= cfg.accuracy_budget:
            break
    pick, met = pick_trial([t[3] for t in trials], reference, cfg.accuracy_budget, cfg.qat.seed)
    chosen, clf, extra, _ = trials[pick]
    how = (
        f"energy-guided plan distilled (pool text, bought labels) and chosen by its dev "
        f"accuracy after distillation: the cheapest of {len(trials)} trial(s) within "
        f"{cfg.accuracy_budget} of FP32"
        + ("" if met else " (none was: the cheapest not worse than the most accurate, 90% CI)")
    )
    history = [
        {
            "planned_relative_energy": t[0].plan.relative_energy,
            "ptq_dev_accuracy": t[0].dev_accuracy,
            "qat_dev_accuracy": t[2]["qat_dev_accuracy"],
        }
        for t in trials
    ]
    plan_record = job.from_candidate(
        chosen, how, ptq_dev_accuracy=chosen.dev_accuracy, qat_trials=history,
        within_accuracy_budget=bool(met), **extra,
    )  # fmt: skip
    return Variant(job.name, clf, dict(chosen.plan.bits), "int8", plan_record)


def structured_pruning(job: VariantJob) -> Variant:
    """Heads and channel groups of least Fisher loss per weight removed, the rest int8, then
    recovered by distillation."""
    cfg, clf = job.cfg, job.clf
    act, block = cfg.qat.activation_bits, cfg.block_size
    removed = choose_structure(job.analysis.structures, cfg.structured_sparsity)
    prune_structure(clf.model, removed, cfg.channel_group)
    bits = {n: 8 for n in job.analysis.tensors}
    pruned_dev = accuracy(clf, job.dev_texts, job.dev_labels, bits, act, block)
    losses = job.recover(clf, bits)
    how = (
        f"structured pruning: the {len(removed)} attention heads / {cfg.channel_group}-"
        f"channel feed-forward groups of least Fisher loss per weight "
        f"({cfg.structured_sparsity:.0%} of encoder weights) removed, the rest int8, "
        "then quantization-aware distillation on unlabeled pool text"
    )
    plan_record = job.describe(
        bits,
        how,
        "int8",
        own_costs=workload_costs(clf, job.workload_texts, cfg.workloads)[0],
        removed_heads=_by_layer(removed, "head"),
        removed_channel_groups=_by_layer(removed, "channels"),
        removal_fisher_loss=float(removed["fisher_loss"].sum()),
        pruned_dev_accuracy=pruned_dev,
        **job.recovered(clf, bits, losses)[0],
    )
    return Variant(job.name, clf, bits, "int8", plan_record)


def size_target(job: VariantJob) -> Variant:
    """Least predicted loss with the whole model stored in 1/`size_ratio` of its float32 bytes,
    then recovered by distillation."""
    cfg, a = job.cfg, job.analysis
    act, block = cfg.qat.activation_bits, cfg.block_size
    # everything stored counts: unplanned tensors stay float32, planned ones carry their block
    # scales (priced in plan_bits' sizes)
    full = a.costs[cfg.workloads[0]]
    total = sum(c.n_elements * 4 for c in full)
    overhead = sum(c.n_elements * 4 for c in full if c.name not in a.choices)
    budget = total / cfg.size_ratio - overhead
    if budget <= 0:
        raise ValueError(
            f"compress.size_ratio {cfg.size_ratio}: the unplanned tensors alone take "
            f"{overhead / 1e6:.1f} MB of the {total / cfg.size_ratio / 1e6:.1f} MB "
            "allowed; lower size_ratio"
        )
    # a size target, not a latency one: 1/8 of the bytes needs the 4-bit layers that an int8
    # time budget rules out on CPUs where MatMulNBits is the slower kernel
    bits = job.plan("loss", within_latency=False, size_budget=budget)
    ptq_dev = accuracy(job.base, job.dev_texts, job.dev_labels, bits, act, block)
    losses = job.recover(job.clf, bits)
    how = (
        f"least predicted loss with the whole model stored in 1/{cfg.size_ratio:g} of "
        "its float32 bytes, then quantization-aware distillation on unlabeled pool text"
    )
    plan_record = job.describe(
        bits,
        how,
        "int8",
        size_budget=budget,
        ptq_dev_accuracy=ptq_dev,
        **job.recovered(job.clf, bits, losses)[0],
    )
    return Variant(job.name, job.clf, dict(bits), "int8", plan_record)


# Every variant `compress.variants` may name (frugal.config.VARIANTS), in the same order.
RECIPES: dict[str, Callable[[VariantJob], Variant]] = {
    "ort_int8": ort_int8,
    "int8_ptq": int8_ptq,
    "int4_weight_only": int4_weight_only,
    "size_guided": size_guided,
    "energy_ptq": energy_ptq,
    "energy_qat": energy_qat,
    "structured_pruning": structured_pruning,
    "size_target": size_target,
}


def build_variant(
    name: str,
    base: Classifier,
    analysis: Analysis,
    candidates: list[Candidate],
    unlabeled: list[str],
    dev_texts: list[str],
    dev_labels: list[str],
    workload_texts: list[str],
    profile: DeviceProfile,
    cfg: CompressConfig,
    log: Callable[[str], None] = lambda _: None,
    progress: Callable[[str, int, int], None] = lambda *_: None,
    bought: Mapping[str, str] | None = None,
) -> Variant:
    """One compressed variant of `base` (left as it was), built by its recipe in `RECIPES`.
    Plans are picked on dev accuracy (the test split is left to `evaluate`): `energy_ptq` is
    the lowest-energy candidate whose post-training dev accuracy drops ≤
    `accuracy_budget`; `energy_qat` the lowest-energy one within `accuracy_budget` after
    distillation (`bought`: text -> label, cross-entropy beside it); `size_guided` minimises
    bytes at `energy_ptq`'s predicted-loss budget. `progress(phase, done, total)` follows the
    distillation."""
    if name not in RECIPES:
        raise ValueError(f"unknown variant {name!r}; choose from {list(RECIPES)}")
    job = VariantJob(
        name,
        base,
        copy.deepcopy(base),
        analysis,
        candidates,
        unlabeled,
        dev_texts,
        dev_labels,
        workload_texts,
        reserve(profile, analysis.activation_bytes),
        cfg,
        log,
        progress,
        dict(bought or {}),
    )
    return RECIPES[name](job)


def _by_layer(removed: pd.DataFrame, kind: str) -> dict[str, list[int]]:
    mine = removed[removed["kind"] == kind]
    return {str(layer): sorted(group["group"].tolist()) for layer, group in mine.groupby("layer")}
