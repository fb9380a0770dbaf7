"""What the compression tests share: a hand-made device profile and tensors with known losses,
the tiny classifier's texts and labels."""

from frugal.energy.modeled import DeviceProfile, TensorCost

PROFILE = DeviceProfile("hand", 60, 10.0, 1.0, {32: 2.0, 16: 1.0, 8: 0.5}, "test")


BLOCK = 64


def hand_costs() -> list[TensorCost]:
    # (name, elements, fp32 bytes read per request, MACs): a big rarely read tensor, a small
    # hot one, a medium one, and a bias that is not planned; one row each, so one float32
    # scale per quantized tensor at BLOCK = 64 (two for "big": 200 inputs)
    return [
        TensorCost("big", "m", 200, 32, 800.0, 100.0),
        TensorCost("hot", "m", 40, 32, 1600.0, 400.0),
        TensorCost("mid", "m", 60, 32, 240.0, 50.0),
        TensorCost("bias", "m", 5, 32, 20.0, 0.0),
    ]


def scales(name: str, bits: int) -> int:
    """Bytes of float32 block scales of a hand tensor at `bits`."""
    return 0 if bits in (0, 32) else 4 * -(-{"big": 200, "hot": 40, "mid": 60}[name] // BLOCK)


LOSS = {
    ("big", 2): 0.9, ("big", 4): 0.3, ("big", 8): 0.05,
    ("hot", 2): 2.0, ("hot", 4): 0.5, ("hot", 8): 0.1,
    ("mid", 2): 0.2, ("mid", 4): 0.05, ("mid", 8): 0.01,
}  # fmt: skip


WIDTHS = [2, 4, 8, 32]


GROUP = 64  # feed-forward channels per pruning / sensitivity group (compress.channel_group)


TEXTS = [
    "Who wrote Hamlet ?",
    "How far is the Moon from the Earth ?",
    "Where is the Eiffel Tower ?",
    "What does NASA stand for ?",
    "When did the war end ?",
    "Who invented the telephone ?",
]


LABELS = ["HUM", "NUM", "LOC", "DESC", "NUM", "HUM"]


def accuracy_reference(clf, bits):
    """Predictions of the torch fake-quant reference: quantized weights (already applied) and
    int8 inputs per token and block to the quantized linear layers."""
    from frugal.compress.qat import quantized_activations
    from frugal.model.modeling import logits_of

    with quantized_activations(clf.model, 8, BLOCK, bits):
        return logits_of(clf, TEXTS).argmax(-1).numpy()
