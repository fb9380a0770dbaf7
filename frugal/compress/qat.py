"""Fake quantization and recovery of the classifier.

* Post-training: each planned weight replaced by its quantized value (`apply_bits`), or
  temporarily (`quantized_weights`) to score a plan; the inputs of quantized linear layers
  quantized as their kernels do (`quantized_activations`): per tensor to uint8 for an 8-bit
  weight (DynamicQuantizeMatMul), per token and block to int8 for a 4-bit one (MatMulNBits).
* Recovery: quantization-aware training distilled from the full-precision model (KL on logits)
  on the pool's text, plus cross-entropy on the labels bought there; weights fake-quantized
  with a straight-through estimator and linear inputs quantized as their kernels do.

Pure: torch modules and numbers in, numbers and modules out; no Prefect, MLflow or files.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from torch.nn.utils import parametrize

from frugal.model.loop import Batcher, Optimization, train_steps
from frugal.model.modeling import Classifier, logits_of
from frugal.model.quantize import (
    block_of,
    fake_quantize,
    quantize_activations,
    quantize_activations_per_tensor,
    ste,
)
from frugal.model.runtime import FLOAT_BITS

# Activation bits the MACs run at: int8 kernels quantize activations to 8 bits; weight-only
# ("float") execution multiplies in float.
KERNEL_BITS = {"int8": 8, "float": FLOAT_BITS}
# the ort_int8 anchor: the float graph rewritten by ONNX Runtime's quantize_dynamic
ORT_DYNAMIC = "ort_dynamic"
UNLABELED = -100  # `distill`'s label index of a text nobody labeled (cross-entropy ignores it)


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
                block = block_of(name, width, block_size)
                params[name].copy_(fake_quantize(params[name], width, block))
    try:
        yield
    finally:
        with torch.no_grad():
            for name, value in saved.items():
                params[name].copy_(value)


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
    at 1-8 bits; every linear layer at 8 bits when `weight_bits` is None) while inside,
    straight-through, as its kernel does: an 8-bit weight's input per tensor to uint8
    (DynamicQuantizeMatMul), a lower width's per token and block to `bits`-bit integers
    (MatMulNBits' int8 path). Float layers keep float inputs; `bits` None leaves every
    activation in float."""

    def per_tensor(_module: torch.nn.Module, args: tuple) -> tuple:
        return (quantize_activations_per_tensor(args[0]),)

    def per_block(_module: torch.nn.Module, args: tuple) -> tuple:
        return (quantize_activations(args[0], bits, block_size),)

    handles = []
    if bits and bits < FLOAT_BITS:
        for name, module in model.named_modules():
            width = 8 if weight_bits is None else weight_bits.get(f"{name}.weight", FLOAT_BITS)
            if isinstance(module, torch.nn.Linear) and 0 < width < FLOAT_BITS:
                hook = per_tensor if width == 8 else per_block
                handles.append(module.register_forward_pre_hook(hook))
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
            block = block_of(name, width, block_size)
            parametrize.register_parametrization(module, "weight", _FakeQuant(width, block))
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
            params[name].copy_(
                fake_quantize(params[name], width, block_of(name, width, block_size))
            )


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
    return float(
        correct(clf, texts, labels, bits, activation_bits, block_size, executed_bits).mean()
    )


def correct(
    clf: Classifier,
    texts: list[str],
    labels: list[str],
    bits: Mapping[str, int] | None = None,
    activation_bits: int | None = None,
    block_size: int = 64,
    executed_bits: Mapping[str, int] | None = None,
) -> np.ndarray:
    """Whether each of `texts` gets its label, as `accuracy` scores it."""
    index = {label: i for i, label in enumerate(clf.labels)}
    y = torch.tensor([index[label] for label in labels])
    with (
        quantized_weights(clf.model, bits or {}, block_size),
        quantized_activations(
            clf.model, activation_bits, block_size, executed_bits if executed_bits else bits or {}
        ),
    ):
        predicted = logits_of(clf, texts).argmax(-1)
    return (predicted == y).numpy()


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
    labels: Sequence[int] | None = None,
    label_weight: float = 0.0,
) -> list[float]:
    """Quantization-aware training of `clf` (in place) distilled from a frozen full-precision
    model (`teacher`, default a copy of `clf` as it is now): KL(teacher ‖ student) on the
    logits of `texts`, for `steps` optimizer steps (reshuffled passes over `texts`: the cost is
    set by the step count, not by how much text there is), plus `label_weight` × the
    cross-entropy on the texts whose label index `labels` gives (`UNLABELED` for the rest: the
    pool's texts need no labels, the bought ones add theirs). Returns the loss per step. On
    return the planned weights hold their quantized values."""
    teacher = copy.deepcopy(teacher if teacher is not None else clf.model).eval()
    model = clf.model
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    batcher = Batcher(clf, texts)
    targets = torch.tensor(labels if labels is not None else [UNLABELED] * len(texts))
    if len(targets) != len(texts):
        raise ValueError(f"{len(targets)} labels for {len(texts)} texts")
    losses: list[float] = []

    def loss_of(indices: list[int], batch: dict[str, torch.Tensor]) -> torch.Tensor:
        with torch.no_grad():
            target = torch.log_softmax(teacher(**batch).logits, -1)
        logits = model(**batch).logits
        student = torch.log_softmax(logits, -1)
        loss = torch.nn.functional.kl_div(student, target, log_target=True, reduction="batchmean")
        known = targets[indices]
        if label_weight and bool((known != UNLABELED).any()):
            loss = loss + label_weight * torch.nn.functional.cross_entropy(
                logits, known, ignore_index=UNLABELED
            )
        return loss

    def after_step(step: int, loss: float) -> bool:
        losses.append(loss)
        if progress:
            progress(step, steps, loss)
        return False

    how = Optimization(learning_rate, weight_decay=0.0, warmup_fraction=0.0, batch_size=batch_size)
    with (
        quantization_aware(model, bits, block_size),
        quantized_activations(model, activation_bits, block_size, bits),
    ):
        model.eval()  # no dropout: the student should match the teacher's deployed function
        train_steps(model, batcher, loss_of, steps, how, generator, after_step)
    model.eval()
    return losses
