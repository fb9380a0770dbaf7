"""The one training loop (`frugal.model.loop`): batches, passes, stopping and the schedule."""

from __future__ import annotations

import pytest
import torch

from frugal.model.loop import Batcher, Optimization, train_steps
from frugal.model.modeling import Classifier

TEXTS = ["what is a bird", "who wrote hamlet", "how far is the moon from the earth", "why", "when"]


def _batcher(tokenizer, max_length: int = 16) -> Batcher:
    return Batcher(Classifier(torch.nn.Identity(), tokenizer, ["a"], max_length), TEXTS)


def test_each_pass_is_a_fresh_permutation_in_batches(tokenizer):
    passes = _batcher(tokenizer).passes(2, torch.Generator().manual_seed(0))
    first = [next(passes) for _ in range(3)]
    second = [next(passes) for _ in range(3)]
    assert [len(b) for b in first] == [2, 2, 1]
    assert sorted(sum(first, [])) == sorted(sum(second, [])) == list(range(len(TEXTS)))
    assert first != second  # reshuffled


def test_a_batch_is_padded_to_its_longest_text_and_truncated_to_the_max_length(tokenizer):
    batch = _batcher(tokenizer, max_length=6).batch([3, 2])
    assert batch["input_ids"].shape == (2, 6)  # "how far ..." truncated to 6 tokens
    assert batch["attention_mask"][0].tolist() == [1, 1, 1, 0, 0, 0]  # [CLS] why [SEP], padded
    short = _batcher(tokenizer).batch([3, 4])
    assert short["input_ids"].shape == (2, 3)


def _fit(tokenizer, steps: int, after_step=lambda *_: False, warmup: float = 0.5) -> list[float]:
    """Steps of a one-weight model pulled toward 1; returns the weight after each step."""
    model = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.zeros_(model.weight)
    seen: list[float] = []

    def loss_of(indices, batch):
        assert batch["input_ids"].shape[0] == len(indices)
        return ((model.weight - 1.0) ** 2).sum()

    def after(step, loss):
        seen.append(model.weight.item())
        return after_step(step, loss)

    how = Optimization(learning_rate=0.1, weight_decay=0.0, warmup_fraction=warmup, batch_size=2)
    taken = train_steps(model, _batcher(tokenizer), loss_of, steps, how, torch.Generator(), after)
    assert taken == len(seen)
    return seen


def test_the_loop_runs_the_planned_steps_across_passes(tokenizer):
    weights = _fit(tokenizer, steps=7)  # 3 batches per pass: 3 passes
    assert len(weights) == 7
    assert weights[-1] > 0.1  # it learned


def test_the_loop_stops_when_asked(tokenizer):
    assert len(_fit(tokenizer, steps=7, after_step=lambda step, _: step == 2)) == 2


def test_the_rate_warms_up_from_zero_then_decays_linearly(tokenizer):
    weights = _fit(tokenizer, steps=4, warmup=0.5)
    updates = [b - a for a, b in zip([0.0, *weights[:-1]], weights, strict=True)]
    # Adam's first steps move a weight by about its learning rate: 0.1 × (0, 1/2, 1, 1/2)
    assert updates == pytest.approx([0.0, 0.05, 0.1, 0.05], abs=1e-3)
