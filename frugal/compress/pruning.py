"""Structured pruning: whole attention heads and feed-forward channel groups, least Fisher
loss per weight first, cut out of the linear layers (a smaller, faster model); the variant then
stores the rest at int8 and recovers by the same distillation (`frugal.compress.qat`).

Pure: torch modules and numbers in, tables and modules out; no Prefect, MLflow or files.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import pandas as pd
import torch


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


def kept_channels(n_channels: int, group_size: int, keep: float) -> int:
    """Feed-forward channels left when a layer keeps `keep` of its `group_size`-channel groups
    (rounded to whole groups, at least one)."""
    groups = n_channels // group_size
    return max(1, groups - round(groups * (1 - keep))) * group_size


def channel_removal(
    structures: pd.DataFrame, keep: Mapping[int, float], n_channels: int, group_size: int
) -> pd.DataFrame:
    """The rows of `structure_groups` to remove so that each layer in `keep` (layer -> share
    kept) keeps that share of its feed-forward channel groups: least Fisher loss first."""
    chosen = []
    for layer, share in keep.items():
        gone = (n_channels - kept_channels(n_channels, group_size, share)) // group_size
        mine = structures[(structures["layer"] == layer) & (structures["kind"] == "channels")]
        chosen.append(mine.sort_values(["fisher_loss", "group"]).head(gone))
    if not chosen:
        return structures.iloc[:0]
    return pd.concat(chosen).sort_values(["layer", "group"])


@contextmanager
def channels_zeroed(
    model: torch.nn.Module, removed: pd.DataFrame, group_size: int
) -> Iterator[None]:
    """While inside, the feed-forward channel groups in `removed` compute nothing: their rows
    (and biases) of the intermediate layer and input columns of the output layer are zero, the
    function `prune_structure` leaves (GELU(0) = 0), at the shapes every other step expects."""
    saved = []
    with torch.no_grad():
        for row in removed.itertuples():
            layer = model.bert.encoder.layer[int(row.layer)]
            span = slice(int(row.group) * group_size, (int(row.group) + 1) * group_size)
            for tensor, index in (
                (layer.intermediate.dense.weight, (span,)),
                (layer.intermediate.dense.bias, (span,)),
                (layer.output.dense.weight, (slice(None), span)),
            ):
                saved.append((tensor, index, tensor[index].clone()))
                tensor[index] = 0
    try:
        yield
    finally:
        with torch.no_grad():
            for tensor, index, value in saved:
                tensor[index] = value
