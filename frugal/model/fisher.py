"""Fisher information of the classifier: the one place it is computed.

Two different quantities, both taken under the model's own predictions (no labels needed):

* `fisher_diagonal`: the diagonal empirical Fisher of the weights the caller names (compression:
  every plannable weight, each linear layer's weight and the word-embedding table; continual:
  the encoder's), the mean over texts of squared per-example
  gradients of the cross-entropy at the model's own predicted label. Compression predicts from
  it the loss increase of quantizing a tensor, ½ Σ F_i (q(w_i) - w_i)², and of removing a
  structure; continual updates weigh their consolidation penalty Σ F_i (θ_i - θ*_i)² by it.
* `fisher_trace_scores`: per example, the trace of the Fisher information of a softmax head's
  weights, i.e. the expected squared norm of the log-likelihood gradient with the label drawn
  from the model's own prediction (the score CCFI, arXiv 2201.01420, ranks exemplars by). For
  softmax regression on features h the gradient is (p - e_y) ⊗ [h, 1], so the trace is
  (1 - Σ p²)(‖h‖² + 1): Gini impurity times the feature norm, computed exactly rather than by
  sampling labels. Sampling scores its proxy's features with it;
  `classifier_fisher_trace_scores` scores texts under a fine-tuned classifier (the pooled
  features its head reads), for continual's exemplar memory. Largest near the decision
  boundary.

The module imports nothing from `frugal`: callers pass the model, its tokenized batches
(`frugal.model.modeling.token_batches`) and the tensor names (`frugal.model.quantize.plannable_tensors`),
so a stage that needs only the closed form depends on this file alone. torch is imported
inside the functions that run the model: sampling uses only the closed form, on numpy arrays,
and stays free of torch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


def fisher_diagonal(
    model: torch.nn.Module, batches: Iterable[Mapping[str, torch.Tensor]], names: Iterable[str]
) -> dict[str, torch.Tensor]:
    """Diagonal empirical Fisher of the parameters `names` of `model`: the mean over texts of
    squared per-example gradients of the cross-entropy at the model's own predicted label.
    `batches` hold one tokenized text each (`token_batches(clf, texts, 1)`): a larger batch
    would square the gradient of its mean, not each example's."""
    import torch

    wanted = set(names)
    params = {n: p for n, p in model.named_parameters() if n in wanted}
    fisher = {n: torch.zeros_like(p) for n, p in params.items()}
    texts = 0
    model.eval()  # no dropout: the gradient of the deployed function
    for batch in batches:
        rows = len(batch["input_ids"])
        if rows != 1:
            raise ValueError(
                f"fisher_diagonal: a batch of {rows} texts; pass one text per batch "
                "(token_batches(clf, texts, 1)) for per-example gradients"
            )
        texts += 1
        model.zero_grad(set_to_none=True)
        logits = model(**batch).logits
        loss = torch.nn.functional.cross_entropy(logits, logits.argmax(-1).detach())
        loss.backward()
        for name, param in params.items():
            if param.grad is not None:
                fisher[name] += param.grad.detach() ** 2
    model.zero_grad(set_to_none=True)
    return {name: value / max(texts, 1) for name, value in fisher.items()}


def fisher_trace_scores(
    probs: np.ndarray | torch.Tensor, features: np.ndarray | torch.Tensor
) -> np.ndarray | torch.Tensor:
    """Trace of the head's Fisher information at each example: (1 - Σ p²)(‖x‖² + 1), from the
    head's `probs` (examples × classes) and the `features` it reads (examples × dims); numpy
    arrays or torch tensors, returned as the same kind."""
    return (1.0 - (probs**2).sum(-1)) * ((features**2).sum(-1) + 1.0)


def head_inputs(
    model: torch.nn.Module, batches: Iterable[Mapping[str, torch.Tensor]]
) -> tuple[np.ndarray, np.ndarray]:
    """The features `model`'s head (`model.classifier`) reads and its softmax, one row per
    text of `batches` (`token_batches(clf, texts, 64)`), in order; eval mode, no gradient."""
    import torch

    with torch.inference_mode():
        model = model.eval()
        captured: list[torch.Tensor] = []
        hook = model.classifier.register_forward_hook(lambda _m, args, _o: captured.append(args[0]))
        features, probs = [], []
        try:
            for batch in batches:
                probs.append(torch.softmax(model(**batch).logits.float(), -1))
                features.append(captured.pop().float())
        finally:
            hook.remove()
        if not features:
            return np.zeros((0, model.classifier.in_features)), np.zeros((0, model.num_labels))
        return torch.cat(features).numpy(), torch.cat(probs).numpy()


def classifier_fisher_trace_scores(
    model: torch.nn.Module, batches: Iterable[Mapping[str, torch.Tensor]]
) -> np.ndarray:
    """Trace of each text's Fisher information over the parameters of `model`'s head:
    (1 - ‖p‖²)(‖h‖² + 1), h the pooled features the head reads, p its softmax (`head_inputs`)."""
    features, probs = head_inputs(model, batches)
    return fisher_trace_scores(probs, features)
