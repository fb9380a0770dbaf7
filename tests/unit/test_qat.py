"""frugal.compress.qat: distillation keeps quantized weights quantized, follows the teacher
and learns the bought labels."""

import copy

import pytest
import torch

from frugal.compress.qat import apply_bits, distill
from frugal.model.quantize import fake_quantize, plannable_tensors
from tests.compress_samples import BLOCK, TEXTS


def test_distillation_leaves_quantized_weights_and_follows_the_teacher(clf):
    from frugal.model.modeling import logits_of

    def kl_to_teacher(model_clf) -> float:
        teacher = torch.log_softmax(logits_of(clf, TEXTS), -1)
        student = torch.log_softmax(logits_of(model_clf, TEXTS), -1)
        return float((teacher.exp() * (teacher - student)).sum(-1).mean())

    bits = {name: 2 for name in plannable_tensors(clf.model)}
    post_training = copy.deepcopy(clf)
    apply_bits(post_training.model, bits, BLOCK)
    student = copy.deepcopy(clf)
    losses = distill(
        student, bits, TEXTS, steps=17, batch_size=3, learning_rate=1e-4, seed=0, block_size=BLOCK
    )
    assert len(losses) == 17  # a step count, across reshuffled passes over the 6 texts
    assert kl_to_teacher(student) < kl_to_teacher(post_training)
    params = dict(student.model.named_parameters())
    name = "bert.encoder.layer.1.attention.self.query.weight"
    assert torch.allclose(params[name], fake_quantize(params[name], 2, BLOCK), atol=1e-6)
    assert not torch.equal(params[name], dict(clf.model.named_parameters())[name])


def test_distillation_learns_the_bought_labels_beside_the_teacher(clf):
    """Cross-entropy on the labeled texts pulls the student towards their labels, against the
    teacher; texts marked UNLABELED add nothing to it."""
    from frugal.compress.qat import UNLABELED
    from frugal.model.modeling import logits_of

    teacher = logits_of(clf, TEXTS).argmax(-1)
    wanted = [(int(t) + 1) % len(clf.labels) for t in teacher]  # never the teacher's class
    labels = wanted[:4] + [UNLABELED] * 2
    bits = {name: 8 for name in plannable_tensors(clf.model)}

    def cross_entropy(weight: float) -> float:
        student = copy.deepcopy(clf)
        distill(
            student, bits, TEXTS, steps=12, batch_size=3, learning_rate=1e-3, seed=0,
            block_size=BLOCK, labels=labels, label_weight=weight,
        )  # fmt: skip
        logits = logits_of(student, TEXTS[:4])
        return float(torch.nn.functional.cross_entropy(logits, torch.tensor(wanted[:4])))

    assert cross_entropy(5.0) < cross_entropy(0.0)
    with pytest.raises(ValueError, match="2 labels for 6 texts"):
        distill(clf, bits, TEXTS, 1, 3, 1e-3, 0, labels=[0, 1], label_weight=1.0)
