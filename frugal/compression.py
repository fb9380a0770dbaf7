"""Sensitivity-guided, energy-aware compression of the classifier.

1. Sensitivity of every plannable weight tensor (encoder linear layers, the word-embedding
   table, the head) at each bit width:
   * diagonal Fisher: squared per-example gradients of the loss at the model's own predicted
     labels (no annotation needed); the predicted loss increase of quantizing a tensor is
     ½ Σ F_i (q(w_i) - w_i)²;
   * measured: KL divergence to the full-precision outputs, loss and accuracy change on
     labeled dev text when that tensor alone is quantized.
   How well the two agree is their Spearman rank correlation.
2. Planner: a multiple-choice knapsack, solved exactly as a MILP (scipy `milp`): one bit width
   per tensor and which tensors sit in on-chip SRAM, jointly, minimising modeled energy per
   utterance (summed over workloads, each relative to full precision) subject to the summed
   predicted loss ≤ a budget; or the reverse (least predicted loss under an energy or a size
   budget), or fewest bytes (the size-guided baseline).
3. Recovery: quantization-aware training distilled from the full-precision model (KL on logits)
   on unlabeled pool text, weights fake-quantized with a straight-through estimator and linear
   inputs quantized to 8 bits per token.
4. Structured pruning: whole attention heads and feed-forward channel groups, least Fisher
   loss per weight first, cut out of the linear layers (a smaller, faster model), then int8 and
   the same distillation.

Pure: torch modules and numbers in, numbers and modules out; no Prefect, MLflow or files.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from scipy.optimize import Bounds, milp
from scipy.stats import spearmanr
from torch.nn.utils import parametrize

from frugal.config import VARIANTS, CompressConfig
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
from frugal.export import NATIVE_BITS, kind_of
from frugal.modeling import Classifier
from frugal.quantize import fake_quantize, quantize_activations, ste


def plannable_tensors(model: torch.nn.Module) -> list[str]:
    """Weights whose bit width the planner chooses: every linear layer's weight and the
    word-embedding table. Biases, norms and position tables stay at full precision (they are
    under 1% of the bytes)."""
    names = []
    for module_name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) or module_name.endswith("word_embeddings"):
            names.append(f"{module_name}.weight")
    return names


@contextmanager
def quantized_weights(
    model: torch.nn.Module, bits: Mapping[str, int], block_size: int
) -> Iterator[None]:
    """Temporarily replace the named weights by their fake-quantized values."""
    params = dict(model.named_parameters())
    saved = {}
    with torch.no_grad():
        for name, width in bits.items():
            if width != FLOAT_BITS:
                saved[name] = params[name].detach().clone()
                params[name].copy_(fake_quantize(params[name], width, block_size))
    try:
        yield
    finally:
        with torch.no_grad():
            for name, value in saved.items():
                params[name].copy_(value)


def _batches(clf: Classifier, texts: list[str], batch_size: int) -> Iterator[dict]:
    for start in range(0, len(texts), batch_size):
        yield clf.tokenizer(
            texts[start : start + batch_size],
            truncation=True,
            max_length=clf.max_length,
            padding=True,
            return_tensors="pt",
        )


@torch.inference_mode()
def logits_of(clf: Classifier, texts: list[str], batch_size: int = 64) -> torch.Tensor:
    clf.model.eval()
    return torch.cat([clf.model(**b).logits.float() for b in _batches(clf, texts, batch_size)])


def fisher_diagonal(clf: Classifier, texts: list[str]) -> dict[str, torch.Tensor]:
    """Diagonal empirical Fisher of every plannable weight: the mean over `texts` of squared
    per-example gradients of the cross-entropy at the model's own predicted label."""
    model = clf.model
    names = set(plannable_tensors(model))
    params = {n: p for n, p in model.named_parameters() if n in names}
    fisher = {n: torch.zeros_like(p) for n, p in params.items()}
    model.eval()  # no dropout: the gradient of the deployed function
    for batch in _batches(clf, texts, 1):
        model.zero_grad(set_to_none=True)
        logits = model(**batch).logits
        loss = torch.nn.functional.cross_entropy(logits, logits.argmax(-1).detach())
        loss.backward()
        for name, param in params.items():
            if param.grad is not None:
                fisher[name] += param.grad.detach() ** 2
    model.zero_grad(set_to_none=True)
    return {name: value / max(len(texts), 1) for name, value in fisher.items()}


def fisher_loss_increase(
    weight: torch.Tensor, fisher: torch.Tensor, bits: int, block_size: int
) -> float:
    """Second-order predicted loss increase ½ Σ F (q(w) - w)² of quantizing `weight`."""
    with torch.no_grad():
        error = fake_quantize(weight, bits, block_size) - weight
        return float(0.5 * (fisher * error**2).sum())


def sensitivity_table(
    clf: Classifier,
    texts: list[str],
    labels: list[str],
    bit_choices: list[int],
    fisher: Mapping[str, torch.Tensor],
    choices: Mapping[str, list[int]],
    block_size: int,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """One row per (tensor, bits) of `bit_choices` the tensor may take (`choices`): Fisher-
    predicted loss increase and, measured with only that tensor quantized, the mean KL to the
    full-precision outputs, the change in cross-entropy and in accuracy on (`texts`,
    `labels`)."""
    index = {label: i for i, label in enumerate(clf.labels)}
    y = torch.tensor([index[label] for label in labels])
    reference = logits_of(clf, texts)
    ref_logp = torch.log_softmax(reference, -1)
    ref_loss = float(torch.nn.functional.cross_entropy(reference, y))
    ref_acc = float((reference.argmax(-1) == y).float().mean())
    params = dict(clf.model.named_parameters())
    rows = []
    work = [(n, b) for n in plannable_tensors(clf.model) for b in bit_choices if b in choices[n]]
    for done, (name, bits) in enumerate(work, start=1):
        with quantized_weights(clf.model, {name: bits}, block_size):
            logits = logits_of(clf, texts)
        logp = torch.log_softmax(logits, -1)
        rows.append(
            {
                "tensor": name,
                "bits": bits,
                "n_elements": params[name].numel(),
                "fisher_loss": fisher_loss_increase(params[name], fisher[name], bits, block_size),
                "kl": float((ref_logp.exp() * (ref_logp - logp)).sum(-1).mean()),
                "loss_change": float(torch.nn.functional.cross_entropy(logits, y)) - ref_loss,
                "accuracy_change": float((logits.argmax(-1) == y).float().mean()) - ref_acc,
            }
        )
        if progress:
            progress(done, len(work))
    return pd.DataFrame(rows)


def subgroup_sensitivity(
    model: torch.nn.Module,
    fisher: Mapping[str, torch.Tensor],
    bit_choices: list[int],
    n_heads: int,
    group_size: int,
    block_size: int,
) -> pd.DataFrame:
    """Fisher-predicted loss increase of quantizing one subgroup of a tensor at each width:
    each attention head (its rows of query / key / value, its input columns of the attention
    output) and each group of `group_size` output channels of the feed-forward layers. Per-
    channel scales make each row's rounding error independent of the others, so a subgroup's
    prediction is the sum over its own entries."""
    params = dict(model.named_parameters())
    rows = []
    for name in fisher:
        weight, f = params[name].detach(), fisher[name]
        if ".attention.self." in name:
            kind, axis, size = "head", 0, weight.shape[0] // n_heads
        elif ".attention.output." in name:
            kind, axis, size = "head", 1, weight.shape[1] // n_heads
        elif ".intermediate." in name or ".output.dense" in name:
            kind, axis, size = "channels", 0, group_size
        else:
            continue
        for bits in bit_choices:
            error = (fake_quantize(weight, bits, block_size) - weight) ** 2 * f * 0.5
            per_group = error.sum(dim=1 - axis).reshape(-1, size).sum(dim=1)
            for index, value in enumerate(per_group.tolist()):
                rows.append(
                    {
                        "tensor": name,
                        "kind": kind,
                        "group": index,
                        "bits": bits,
                        "fisher_loss": value,
                    }
                )
    return pd.DataFrame(rows)


def sensitivity_agreement(table: pd.DataFrame) -> dict[str, float]:
    """Spearman rank correlation of the Fisher prediction with each measured sensitivity."""
    return {
        f"fisher_vs_{column}": float(spearmanr(table["fisher_loss"], table[column]).statistic)
        for column in ("kl", "loss_change")
    } | {
        "fisher_vs_accuracy_drop": float(
            spearmanr(table["fisher_loss"], -table["accuracy_change"]).statistic
        )
    }


def structure_groups(
    model: torch.nn.Module, fisher: Mapping[str, torch.Tensor], group_size: int
) -> pd.DataFrame:
    """What removing each structure costs: every attention head (its rows of query / key /
    value and its input columns of the attention output) and every group of `group_size`
    feed-forward channels (rows of the intermediate layer, input columns of the output layer).
    `fisher_loss` is the Fisher-predicted loss increase of zeroing it, ½ Σ F w², `params` the
    weights it removes. Every weight of a layer runs once per token, so a structure's energy
    is proportional to its parameters and loss per parameter ranks loss per energy saved."""
    params = dict(model.named_parameters())
    rows = []
    for index, layer in enumerate(model.bert.encoder.layer):
        prefix = f"bert.encoder.layer.{index}."
        attention = layer.attention.self
        spans = {
            "head": (
                attention.attention_head_size,
                ["attention.self.query", "attention.self.key", "attention.self.value"],
                ["attention.output.dense"],
            ),
            "channels": (group_size, ["intermediate.dense"], ["output.dense"]),
        }
        for kind, (size, by_row, by_column) in spans.items():
            cost = 0.0
            for module in by_row + by_column:
                name = f"{prefix}{module}.weight"
                error = 0.5 * fisher[name] * params[name].detach() ** 2
                per_unit = error.sum(dim=1) if module in by_row else error.sum(dim=0)
                cost = cost + per_unit
            per_group = cost.reshape(-1, size).sum(dim=1)
            width = sum(params[f"{prefix}{m}.weight"].shape[1] for m in by_row) + sum(
                params[f"{prefix}{m}.weight"].shape[0] for m in by_column
            )
            for group, value in enumerate(per_group.tolist()):
                rows.append(
                    {
                        "layer": index,
                        "kind": kind,
                        "group": group,
                        "fisher_loss": value,
                        "params": size * width,
                    }
                )
    return pd.DataFrame(rows)


def choose_structure(groups: pd.DataFrame, sparsity: float) -> pd.DataFrame:
    """The structures to remove: least Fisher loss per parameter first, until `sparsity` of
    all their parameters are gone; every layer keeps at least one head and one channel group."""
    if not 0 <= sparsity < 1:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    left = groups.groupby(["layer", "kind"]).size().to_dict()
    target, removed, chosen = sparsity * groups["params"].sum(), 0, []
    ranked = groups.assign(ratio=groups["fisher_loss"] / groups["params"]).sort_values("ratio")
    for row in ranked.itertuples():
        if removed >= target:
            break
        if left[(row.layer, row.kind)] > 1:
            left[(row.layer, row.kind)] -= 1
            removed += row.params
            chosen.append(row.Index)
    return groups.loc[chosen].sort_values(["layer", "kind", "group"])


def prune_structure(model: torch.nn.Module, removed: pd.DataFrame, group_size: int) -> None:
    """Remove the heads and channel groups in `removed` (rows of `choose_structure`) from the
    model in place: the linear layers shrink, so the pruned model is smaller and faster."""
    from transformers.pytorch_utils import prune_linear_layer

    for index, layer in enumerate(model.bert.encoder.layer):
        mine = removed[removed["layer"] == index]
        attention = layer.attention.self
        head = attention.attention_head_size
        spans = {
            "head": (head, attention.query.out_features // head),
            "channels": (group_size, layer.intermediate.dense.out_features // group_size),
        }
        keep = {}
        for kind, (size, count) in spans.items():
            gone = set(mine[mine["kind"] == kind]["group"])
            keep[kind] = torch.tensor(
                [g * size + i for g in range(count) if g not in gone for i in range(size)]
            )
        for part in ("query", "key", "value"):
            setattr(attention, part, prune_linear_layer(getattr(attention, part), keep["head"]))
        output = layer.attention.output
        output.dense = prune_linear_layer(output.dense, keep["head"], dim=1)
        attention.num_attention_heads = attention.query.out_features // head
        attention.all_head_size = attention.query.out_features
        ffn = keep["channels"]
        layer.intermediate.dense = prune_linear_layer(layer.intermediate.dense, ffn)
        layer.output.dense = prune_linear_layer(layer.output.dense, ffn, dim=1)


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
) -> Plan:
    """Choose bits per tensor (and, for energy, SRAM residency) by MILP.

    `costs`: workload -> full-precision `tensor_costs`; `choices`: tensor -> allowed bits
    (tensors not named stay at 32 bits but can still be placed in SRAM); `loss`: (tensor,
    bits) -> predicted loss increase (0 at 32 bits). `objective`: "energy" (modeled energy,
    each workload relative to its full-precision energy, averaged), "bytes" (size-guided) or
    "loss" (least predicted loss; needs `energy_budget`, the relative energy allowed, or
    `size_budget`). `size_budget`: bytes allowed for the tensors in `choices` at their widths.
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
        raise ValueError(f"no plan meets the budget: {result.message}")
    x, y = result.x[:n] > 0.5, result.x[n:] > 0.5
    bits = {t: b for (t, b), chosen in zip(options, x, strict=True) if chosen and t in choices}
    return Plan(
        bits=bits,
        resident=[t for (t, _), on in zip(options, y, strict=True) if on],
        predicted_loss=float(losses[x].sum()),
        relative_energy=float(energy_row @ result.x),
        size_bytes=float(size[x].sum()),
    )


class _FakeQuant(torch.nn.Module):
    """Parametrization: the weight as its `bits`-bit version, straight-through backwards."""

    def __init__(self, bits: int, block_size: int) -> None:
        super().__init__()
        self.bits = bits
        self.block_size = block_size

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return ste(weight, fake_quantize(weight, self.bits, self.block_size))


@contextmanager
def quantized_activations(
    model: torch.nn.Module,
    bits: int | None,
    block_size: int,
    weight_bits: Mapping[str, int] | None = None,
) -> Iterator[None]:
    """Quantize the input of every linear layer whose weight is quantized (in `weight_bits`,
    at 1-8 bits; every linear layer when `weight_bits` is None) to `bits` per token and block
    (straight-through) while inside, as MatMulNBits' int8 path does; float layers keep float
    inputs. `bits` None leaves activations in float."""
    handles = []
    if bits and bits < FLOAT_BITS:
        for name, module in model.named_modules():
            width = FLOAT_BITS if weight_bits is None else weight_bits.get(f"{name}.weight", 32)
            quantized = weight_bits is None or 0 < width < FLOAT_BITS
            if isinstance(module, torch.nn.Linear) and quantized:
                handles.append(
                    module.register_forward_pre_hook(
                        lambda _m, args: (quantize_activations(args[0], bits, block_size),)
                    )
                )
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def quantization_aware(
    model: torch.nn.Module, bits: Mapping[str, int], block_size: int
) -> Iterator[None]:
    """Fake-quantize the planned weights with a straight-through estimator, for training. On
    exit each weight keeps its quantized value."""
    modules = dict(model.named_modules())
    for name, width in bits.items():
        if width != FLOAT_BITS:
            module = modules[name.rsplit(".", 1)[0]]
            parametrize.register_parametrization(module, "weight", _FakeQuant(width, block_size))
    try:
        yield
    finally:
        for module in modules.values():
            if parametrize.is_parametrized(module, "weight"):
                parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)


def apply_bits(model: torch.nn.Module, bits: Mapping[str, int], block_size: int) -> None:
    """Post-training quantization in place: each named weight becomes its quantized value."""
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, width in bits.items():
            params[name].copy_(fake_quantize(params[name], width, block_size))


def accuracy(
    clf: Classifier,
    texts: list[str],
    labels: list[str],
    bits: Mapping[str, int] | None = None,
    activation_bits: int | None = None,
    block_size: int = 64,
    executed_bits: Mapping[str, int] | None = None,
) -> float:
    """Accuracy on (`texts`, `labels`), optionally as if quantized to `bits` with the inputs of
    the quantized linear layers (`executed_bits`, default `bits`) at `activation_bits` (the
    model is left as it was)."""
    index = {label: i for i, label in enumerate(clf.labels)}
    y = torch.tensor([index[label] for label in labels])
    with (
        quantized_weights(clf.model, bits or {}, block_size),
        quantized_activations(
            clf.model, activation_bits, block_size, executed_bits if executed_bits else bits or {}
        ),
    ):
        predicted = logits_of(clf, texts).argmax(-1)
    return float((predicted == y).float().mean())


def distill(
    clf: Classifier,
    bits: Mapping[str, int],
    texts: list[str],
    steps: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
    activation_bits: int | None = 8,
    progress: Callable[[int, int, float], None] | None = None,
    teacher: torch.nn.Module | None = None,
    block_size: int = 64,
) -> list[float]:
    """Quantization-aware training of `clf` (in place) distilled from a frozen full-precision
    model (`teacher`, default a copy of `clf` as it is now): KL(teacher ‖ student) on the
    logits of unlabeled `texts`, for `steps` optimizer steps (reshuffled passes over `texts`:
    the cost is set by the step count, not by how much text there is). Returns the loss per
    step. On return the planned weights hold their quantized values."""
    teacher = copy.deepcopy(teacher if teacher is not None else clf.model).eval()
    model = clf.model
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    total = steps
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1 - s / max(total, 1))
    losses: list[float] = []
    with (
        quantization_aware(model, bits, block_size),
        quantized_activations(model, activation_bits, block_size, bits),
    ):
        model.eval()  # no dropout: the student should match the teacher's deployed function
        while len(losses) < total:
            order = torch.randperm(len(texts), generator=generator).tolist()
            for start in range(0, len(order), batch_size):
                if len(losses) == total:
                    break
                batch = next(
                    _batches(clf, [texts[i] for i in order[start : start + batch_size]], batch_size)
                )
                with torch.no_grad():
                    target = torch.log_softmax(teacher(**batch).logits, -1)
                student = torch.log_softmax(model(**batch).logits, -1)
                loss = torch.nn.functional.kl_div(
                    student, target, log_target=True, reduction="batchmean"
                )
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                losses.append(float(loss.detach()))
                if progress:
                    progress(len(losses), total, losses[-1])
    model.eval()
    return losses


# Activation bits the MACs run at: int8 kernels quantize activations to 8 bits; weight-only
# ("float") execution multiplies in float.
KERNEL_BITS = {"int8": 8, "float": FLOAT_BITS}


@dataclass
class Variant:
    name: str
    classifier: Classifier
    bits: dict[str, int]
    execution: str  # "int8" kernels, or "float" (weight-only quantization)
    plan: dict  # how it was chosen, predicted loss, modeled relative energy, bytes


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
) -> Analysis:
    """Fisher, measured sensitivity per (tensor, bits), per-subgroup and per-structure Fisher
    costs, the workloads' tensor costs, and the budgets of the candidate plans: predicted-loss
    budgets ×2 apart, from ¼ of uniform int8's."""
    model = base.model
    model.eval()
    log(f"Fisher information on {min(len(unlabeled), cfg.fisher_texts)} unlabeled texts")
    fisher = fisher_diagonal(base, unlabeled[: cfg.fisher_texts])
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
    )


def plan_candidate(
    base: Classifier,
    analysis: Analysis,
    budget: float,
    dev_texts: list[str],
    dev_labels: list[str],
    profile: DeviceProfile,
    cfg: CompressConfig,
) -> Candidate:
    """The least-energy plan within predicted loss `budget`, scored on dev after post-training
    quantization (weights and activations). `base` is left as it was."""
    a, act, block = analysis, cfg.qat.activation_bits, cfg.block_size
    profile = reserve(profile, a.activation_bytes)
    plan = plan_bits(
        a.costs, profile, a.choices, a.loss, "energy", budget, activation_bits=act, block_size=block
    )
    dev = accuracy(base, dev_texts, dev_labels, plan.bits, act, block)
    energy_by_workload = relative_energy(a.costs, profile, plan.bits, act, block)
    planned = sum(c.n_elements for c in a.costs[cfg.workloads[0]] if c.name in a.choices)
    record = {
        "loss_budget": budget,
        "predicted_loss": plan.predicted_loss,
        "size_bytes": plan.size_bytes,
        "mean_bits": 8 * plan.size_bytes / planned,
        **{f"relative_energy.{w}": e for w, e in energy_by_workload.items()},
        "dev_accuracy": dev,
        "dev_drop": a.reference_dev_accuracy - dev,
    }
    return Candidate(budget, plan, dev, record)


def candidate_table(candidates: list[Candidate]) -> pd.DataFrame:
    return pd.DataFrame([c.record for c in candidates])


def lowest_energy_within(candidates: list[Candidate], drop: float) -> int:
    """Index of the least mean-energy candidate whose dev drop is ≤ `drop` (none that good:
    the most accurate one)."""
    table = candidate_table(candidates)
    mean_energy = table.filter(like="relative_energy.").mean(axis=1).to_numpy()
    ok = np.flatnonzero(table["dev_drop"].to_numpy() <= drop)
    if len(ok) == 0:
        return int(table["dev_drop"].idxmin())
    return int(ok[np.argmin(mean_energy[ok])])


def _describe(
    analysis: Analysis,
    profile: DeviceProfile,
    cfg: CompressConfig,
    bits: Mapping[str, int | float],
    how: str,
    execution: str,
    own_costs: Mapping[str, list[TensorCost]] | None = None,
    **extra: object,
) -> dict:
    """The plan record; `own_costs`: the variant's own (structurally pruned) tensors."""
    costs = analysis.costs
    own = own_costs or costs
    act, block = KERNEL_BITS[execution], cfg.block_size
    priced = {c.name: c for c in with_bits(own[cfg.workloads[0]], bits, act, block)}
    planned = sum(c.n_elements for c in costs[cfg.workloads[0]] if c.name in analysis.choices)
    return {
        "how": how,
        "profile": profile.name,
        "relative_energy": relative_energy(own, profile, bits, act, block, reference=costs),
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
) -> Variant:
    """One compressed variant of `base` (left as it was). Plans are picked on dev accuracy (the
    test split is left to `evaluate`): `energy_ptq` is the lowest-energy candidate whose post-
    training dev accuracy drops ≤ `ptq_accuracy_budget`; `energy_qat` the lowest-energy one
    within the looser `qat_accuracy_budget`, then recovered by distillation; `size_guided`
    minimises bytes at `energy_ptq`'s predicted-loss budget. `progress(phase, done, total)`
    follows the distillation."""
    if name not in VARIANTS:
        raise ValueError(f"unknown variant {name!r}; choose from {VARIANTS}")
    a, act, block = analysis, cfg.qat.activation_bits, cfg.block_size
    profile = reserve(profile, a.activation_bytes)
    tensors = a.tensors

    def describe(
        bits: Mapping[str, int | float], how: str, execution: str, **extra: object
    ) -> dict:
        return _describe(a, profile, cfg, bits, how, execution, **extra)

    def from_candidate(chosen: Candidate, how: str, **extra: object) -> dict:
        return describe(
            chosen.plan.bits, how, "int8", loss_budget=chosen.loss_budget,
            resident=chosen.plan.resident, **extra,
        )  # fmt: skip

    def recover(clf: Classifier, bits: Mapping[str, int]) -> list[float]:
        """Quantization-aware distillation from the full-precision base model."""
        q = cfg.qat
        log(f"QAT: {q.steps} distillation steps of {q.batch_size} of {len(unlabeled)} texts")
        return distill(
            clf, bits, unlabeled, q.steps, q.batch_size, q.learning_rate, q.seed, act,
            lambda step, total, _loss: progress(f"QAT {name}", step, total), teacher=base.model,
            block_size=block,
        )  # fmt: skip

    def recovered(clf: Classifier, bits: Mapping[str, int], losses: list[float]) -> dict:
        return {
            "qat_dev_accuracy": accuracy(clf, dev_texts, dev_labels, None, act, block, bits),
            "distill_loss_first": losses[0],
            "distill_loss_last": losses[-1],
        }

    def plan(objective: str, **budgets: float) -> dict[str, int]:
        return plan_bits(
            a.costs, profile, a.choices, a.loss, objective, activation_bits=act,
            block_size=block, **budgets,
        ).bits  # fmt: skip

    clf = copy.deepcopy(base)
    ptq_index = lowest_energy_within(candidates, cfg.ptq_accuracy_budget)
    if name in ("int8_ptq", "int4_weight_only"):
        width, execution = (8, "int8") if name == "int8_ptq" else (4, "float")
        how = {
            "int8_ptq": "uniform 8-bit post-training",
            "int4_weight_only": "uniform 4-bit weights, float activations",
        }[name]
        bits = {n: width for n in tensors}
        apply_bits(clf.model, bits, block)
        return Variant(name, clf, bits, execution, describe(bits, how, execution))
    if name == "energy_ptq":
        chosen = candidates[ptq_index]
        how = f"energy-guided plan, dev drop ≤ {cfg.ptq_accuracy_budget} after post-training quantization"
        apply_bits(clf.model, chosen.plan.bits, block)
        return Variant(name, clf, dict(chosen.plan.bits), "int8", from_candidate(chosen, how))
    if name == "size_guided":
        budget = candidates[ptq_index].loss_budget
        bits = plan("bytes", loss_budget=budget)
        how = "size-guided plan (fewest bytes) at energy_ptq's predicted-loss budget"
        apply_bits(clf.model, bits, block)
        return Variant(
            name, clf, dict(bits), "int8", describe(bits, how, "int8", loss_budget=budget)
        )
    if name == "energy_qat":
        chosen = candidates[lowest_energy_within(candidates, cfg.qat_accuracy_budget)]
        losses = recover(clf, chosen.plan.bits)
        how = (
            f"energy-guided plan, dev drop ≤ {cfg.qat_accuracy_budget} before recovery, then "
            "quantization-aware distillation on unlabeled pool text"
        )
        extra = recovered(clf, chosen.plan.bits, losses)
        plan_record = from_candidate(chosen, how, ptq_dev_accuracy=chosen.dev_accuracy, **extra)
        return Variant(name, clf, dict(chosen.plan.bits), "int8", plan_record)
    if name == "structured_pruning":
        removed = choose_structure(a.structures, cfg.structured_sparsity)
        prune_structure(clf.model, removed, cfg.channel_group)
        bits = {n: 8 for n in tensors}
        pruned_dev = accuracy(clf, dev_texts, dev_labels, bits, act, block)
        losses = recover(clf, bits)
        how = (
            f"structured pruning: the {len(removed)} attention heads / {cfg.channel_group}-"
            f"channel feed-forward groups of least Fisher loss per weight "
            f"({cfg.structured_sparsity:.0%} of encoder weights) removed, the rest int8, "
            "then quantization-aware distillation on unlabeled pool text"
        )
        plan_record = describe(
            bits,
            how,
            "int8",
            own_costs=workload_costs(clf, workload_texts, cfg.workloads)[0],
            removed_heads=_by_layer(removed, "head"),
            removed_channel_groups=_by_layer(removed, "channels"),
            removal_fisher_loss=float(removed["fisher_loss"].sum()),
            pruned_dev_accuracy=pruned_dev,
            **recovered(clf, bits, losses),
        )
        return Variant(name, clf, bits, "int8", plan_record)
    # size_target: everything stored counts: unplanned tensors stay float32, planned ones
    # carry their block scales (priced in plan_bits' sizes)
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
    bits = plan("loss", size_budget=budget)
    ptq_dev = accuracy(base, dev_texts, dev_labels, bits, act, block)
    losses = recover(clf, bits)
    how = (
        f"least predicted loss with the whole model stored in 1/{cfg.size_ratio:g} of "
        "its float32 bytes, then quantization-aware distillation on unlabeled pool text"
    )
    plan_record = describe(
        bits,
        how,
        "int8",
        size_budget=budget,
        ptq_dev_accuracy=ptq_dev,
        **recovered(clf, bits, losses),
    )
    return Variant(name, clf, dict(bits), "int8", plan_record)


def _by_layer(removed: pd.DataFrame, kind: str) -> dict[str, list[int]]:
    mine = removed[removed["kind"] == kind]
    return {str(layer): sorted(group["group"].tolist()) for layer, group in mine.groupby("layer")}
