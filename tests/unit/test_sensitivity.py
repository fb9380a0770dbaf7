"""frugal.compress.sensitivity: measures grow as bits shrink, their agreement, and the heads
that can take the narrowest width."""

import pandas as pd
import pytest

from frugal.compress.sensitivity import (
    least_sensitive_heads,
    sensitivity_agreement,
    sensitivity_table,
    subgroup_sensitivity,
)
from frugal.model.fisher import fisher_diagonal
from frugal.model.modeling import token_batches
from frugal.model.quantize import plannable_tensors
from tests.compress_samples import BLOCK, GROUP, LABELS, TEXTS


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
