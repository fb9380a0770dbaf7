"""frugal.compress.pruning: zeroed channels score what the pruned model computes, and
structured pruning removes exactly the chosen heads and channels."""

import copy

import pytest
import torch

from frugal.compress.packed import load_float, save_compressed
from frugal.compress.qat import apply_bits
from frugal.model.fisher import fisher_diagonal
from frugal.model.modeling import token_batches
from frugal.model.quantize import plannable_tensors
from tests.compress_samples import BLOCK, GROUP, TEXTS, accuracy_reference


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
