"""The one training loop and its batcher: fine-tuning (`frugal.model.training`), continual updates
(`frugal.continual.methods`) and quantization-aware distillation (`frugal.compress.qat`) all step
through `train_steps`; each brings only its loss.

The loop: AdamW (no weight decay on biases and LayerNorm weights), linear warm-up then linear
decay to zero over the planned steps, gradients clipped to norm 1, reshuffled passes over the
examples from a seeded generator. Texts are tokenized once and padded per batch to the batch's
longest text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from transformers import get_linear_schedule_with_warmup

from frugal.model.modeling import Classifier

NO_DECAY = ("bias", "LayerNorm.weight")


class Batcher:
    """Texts tokenized once as `clf` reads them (truncated to its max length)."""

    def __init__(self, clf: Classifier, texts: list[str]) -> None:
        self._tokenizer = clf.tokenizer
        self._ids = clf.tokenizer(
            list(texts), truncation=True, max_length=clf.max_length, padding=False
        )["input_ids"]

    def __len__(self) -> int:
        return len(self._ids)

    def batch(self, indices: list[int]) -> dict[str, torch.Tensor]:
        """The texts at `indices`, padded to the longest of them."""
        return self._tokenizer.pad(
            {"input_ids": [self._ids[i] for i in indices]}, return_tensors="pt"
        )

    def passes(self, batch_size: int, generator: torch.Generator) -> Iterator[list[int]]:
        """Batches of indices, pass after pass, each pass a fresh permutation (drawn only when
        the pass starts, so a loop that stops draws nothing more)."""
        while True:
            order = torch.randperm(len(self), generator=generator).tolist()
            for start in range(0, len(order), batch_size):
                yield order[start : start + batch_size]


@dataclass(frozen=True)
class Optimization:
    """How the loop steps: the params sections' `learning_rate`, `weight_decay` and
    `warmup_fraction` (a share of the planned steps), and `batch_size`."""

    learning_rate: float
    weight_decay: float
    warmup_fraction: float
    batch_size: int


Loss = Callable[[list[int], dict[str, torch.Tensor]], torch.Tensor]
# after each optimizer step: (step, loss) -> True to stop early
AfterStep = Callable[[int, float], bool]


def train_steps(
    model: torch.nn.Module,
    batcher: Batcher,
    loss_of: Loss,
    steps: int,
    how: Optimization,
    generator: torch.Generator,
    after_step: AfterStep = lambda *_: False,
) -> int:
    """Up to `steps` optimizer steps on `loss_of(indices, batch)` over `batcher`'s passes, in
    the model's current train/eval mode. Returns the steps taken (fewer if `after_step` asks
    to stop)."""
    named = list(model.named_parameters())
    groups = [
        {
            "params": [p for n, p in named if not n.endswith(NO_DECAY)],
            "weight_decay": how.weight_decay,
        },
        {"params": [p for n, p in named if n.endswith(NO_DECAY)], "weight_decay": 0.0},
    ]
    # the fused kernel: the same update, ~5x faster a step here than the default foreach one
    # (the 11.7 M-row word-embedding table makes the optimizer ~15% of a fine-tuning step)
    optimizer = torch.optim.AdamW(groups, lr=how.learning_rate, fused=True)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(how.warmup_fraction * steps), steps)
    step = 0
    if steps <= 0:
        return step
    for indices in batcher.passes(how.batch_size, generator):
        loss = loss_of(indices, batcher.batch(indices))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        if after_step(step, loss.item()) or step >= steps:
            break
    return step
