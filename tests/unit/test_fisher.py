"""The head's Fisher trace in closed form equals the expected squared gradient norm of a linear
softmax head, computed here by autograd."""

from __future__ import annotations

import numpy as np
import torch

from frugal.model.fisher import fisher_trace_scores


def test_the_closed_form_is_the_expected_squared_gradient_norm():
    torch.manual_seed(0)
    head = torch.nn.Linear(5, 3)
    features = torch.randn(4, 5)
    probs = torch.softmax(head(features), -1).detach()
    expected = []
    for x, p in zip(features, probs, strict=True):
        total = 0.0
        for label in range(3):  # E over y ~ p of ‖∇ log p(y | x)‖² over weights and bias
            head.zero_grad()
            torch.log_softmax(head(x), -1)[label].backward()
            norm = head.weight.grad.square().sum() + head.bias.grad.square().sum()
            total += float(p[label]) * float(norm)
        expected.append(total)
    scores = fisher_trace_scores(probs, features)
    assert torch.allclose(scores, torch.tensor(expected), rtol=1e-5)


def test_numpy_in_numpy_out_and_a_sure_prediction_scores_zero():
    probs = np.array([[1.0, 0.0], [0.5, 0.5]])
    features = np.array([[3.0, 4.0], [0.0, 0.0]])
    scores = fisher_trace_scores(probs, features)
    assert isinstance(scores, np.ndarray)
    assert scores.tolist() == [0.0, 0.5]  # (1 - 1)(25 + 1); (1 - 0.5)(0 + 1)
