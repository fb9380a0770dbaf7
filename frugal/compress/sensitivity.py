"""Sensitivity of every plannable weight tensor (encoder linear layers, the word-embedding
table, the head) at each bit width:

* predicted: from the diagonal Fisher (`frugal.model.fisher.fisher_diagonal`: squared per-example
  gradients of the loss at the model's own predicted labels, no annotation needed), the loss
  increase of quantizing a tensor is ½ Σ F_i (q(w_i) - w_i)²; per subgroup (attention head,
  feed-forward channel group) the same sum over its own entries;
* measured: KL divergence to the full-precision outputs, loss and accuracy change on labeled
  dev text when that tensor alone is quantized.

How well the two agree is their Spearman rank correlation.

Pure: torch modules and numbers in, numbers and tables out; no Prefect, MLflow or files.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pandas as pd
import torch
from scipy.stats import spearmanr

from frugal.compress.qat import quantized_activations, quantized_weights
from frugal.model.modeling import Classifier, logits_of
from frugal.model.quantize import block_of, fake_quantize, plannable_tensors


def fisher_loss_increase(
    weight: torch.Tensor, fisher: torch.Tensor, bits: int, block_size: int
) -> float:
    """Second-order predicted loss increase ½ Σ F (q(w) - w)² of quantizing `weight` (in
    blocks of `block_size`, `frugal.model.quantize.block_of`'s)."""
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
    activation_bits: int | None = 8,
) -> pd.DataFrame:
    """One row per (tensor, bits) of `bit_choices` the tensor may take (`choices`): Fisher-
    predicted loss increase and, measured with only that tensor quantized (and its input, as
    its kernel quantizes it at `activation_bits`), the mean KL to the full-precision outputs, the change in cross-entropy and in accuracy on (`texts`,
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
        with (
            quantized_weights(clf.model, {name: bits}, block_size),
            quantized_activations(clf.model, activation_bits, block_size, {name: bits}),
        ):
            logits = logits_of(clf, texts)
        logp = torch.log_softmax(logits, -1)
        rows.append(
            {
                "tensor": name,
                "bits": bits,
                "n_elements": params[name].numel(),
                "fisher_loss": fisher_loss_increase(
                    params[name], fisher[name], bits, block_of(name, bits, block_size)
                ),
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
            block = block_of(name, bits, block_size)
            error = (fake_quantize(weight, bits, block) - weight) ** 2 * f * 0.5
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


def least_sensitive_heads(subgroups: pd.DataFrame, top: int = 5) -> list[dict]:
    """The `top` heads whose removal the Fisher predicts to cost least (candidates for head
    pruning): the narrowest width's prediction summed over a head's query, key, value and
    output. `subgroups`: as `subgroup_sensitivity` returns."""
    heads = subgroups[
        (subgroups["kind"] == "head") & (subgroups["bits"] == subgroups["bits"].min())
    ]
    if heads.empty:
        return []
    layer = heads["tensor"].str.extract(r"layer\.(\d+)\.")[0].astype(int)
    per_head = heads.assign(layer=layer).groupby(["layer", "group"])["fisher_loss"].sum()
    return [
        {"layer": int(lay), "head": int(head), "fisher_loss": float(value)}
        for (lay, head), value in per_head.nsmallest(top).items()
    ]


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
