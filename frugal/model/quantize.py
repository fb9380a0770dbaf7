"""Quantizers, pruning and packed storage for weight tensors.

* Weights, symmetric MinMax per block (LLM-QAT, arXiv 2305.17888, per channel; here per block
  of `block_size` inputs of each output channel, the layout ONNX Runtime's MatMulNBits and
  GatherBlockQuantized execute): codes in [-(2^(b-1) - 1), 2^(b-1) - 1], one float32 scale per
  block; the rounding error of each weight is at most half its block's scale. An 8-bit linear
  weight runs on DynamicQuantizeMatMul, which takes one scale per output channel: its block is
  the whole row (`block_of`, block size `PER_CHANNEL`), and its codes stay within ±63
  (`PER_CHANNEL_QMAX`): the kernel multiplies uint8 activations by int8 weights and sums
  adjacent pairs in int16, which saturates past that range on this CPU (measured: errors of
  10-30% of a layer's output at ±127, none at ±63; ONNX Runtime's `reduce_range`).
* Weights, asymmetric MinMax per subgroup (AQ-BERT, arXiv 2112.14938): each row split into
  groups of `group_size` inputs, codes in [0, 2^b - 1] with a scale and zero point per group.
* Activations, as each kernel quantizes its input: 8-bit symmetric per token and block
  (MatMulNBits' int8 path), or unsigned 8-bit asymmetric over the whole tensor
  (DynamicQuantizeLinear, the first half of DynamicQuantizeMatMul).
* Straight-through estimator: the forward pass sees the quantized tensor, the backward pass
  treats rounding as the identity, so gradients reach the full-precision weights (QAT).
* Bits in {0 = pruned, 2, 4, 8, 32}; 32 leaves the tensor as it is.
* Packing: b-bit codes, 8 // b per byte, so a 4-bit tensor really takes half the bytes of an
  8-bit one on disk.

Pure torch: tensors in, tensors out.
"""

from __future__ import annotations

import torch

from frugal.model.runtime import WORD_EMBEDDINGS

BITS = (0, 2, 4, 8, 32)
INT_BITS = (2, 4, 8)
PER_CHANNEL = 0  # block size 0: one scale per output channel (the whole row)
PER_CHANNEL_QMAX = 63  # DynamicQuantizeMatMul's int8 codes: 7 bits of range (module docstring)


def block_of(name: str, bits: int, block_size: int) -> int:
    """Scale block of weight `name` at `bits`: an 8-bit linear weight runs on
    DynamicQuantizeMatMul (the fastest int8 kernel at these shapes), whose weight scales are per
    output channel; every other width, and the embedding table, in blocks of `block_size`
    (MatMulNBits, GatherBlockQuantized)."""
    return PER_CHANNEL if bits == 8 and name != WORD_EMBEDDINGS else block_size


def _block(block_size: int, length: int) -> int:
    return length if block_size == PER_CHANNEL else block_size


def _check_bits(bits: int) -> None:
    if bits not in BITS:
        raise ValueError(f"bits must be one of {BITS}, got {bits}")


def symmetric_codes(
    weight: torch.Tensor, bits: int, block_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(integer codes, scales) of symmetric MinMax quantization per block of `block_size`
    consecutive inputs of each output row (ONNX Runtime's MatMulNBits / GatherBlockQuantized
    layout; `PER_CHANNEL`: DynamicQuantizeMatMul's, one scale a row, codes within ±63). Codes have the weight's shape; scales are (rows, blocks). A row whose length is
    not a multiple of `block_size` has a short last block (padded with zeros when packed)."""
    if bits not in INT_BITS:
        raise ValueError(f"integer codes need bits in {INT_BITS}, got {bits}")
    qmax = PER_CHANNEL_QMAX if block_size == PER_CHANNEL else 2 ** (bits - 1) - 1
    rows = weight.reshape(weight.shape[0], -1)
    length = rows.shape[1]
    block_size = _block(block_size, length)
    blocks = -(-length // block_size)
    padded = torch.nn.functional.pad(rows, (0, blocks * block_size - length))
    grouped = padded.reshape(rows.shape[0], blocks, block_size)
    scale = grouped.abs().amax(dim=2, keepdim=True).clamp(min=1e-12) / qmax
    codes = torch.clamp(torch.round(grouped / scale), -qmax, qmax)
    codes = codes.reshape(rows.shape[0], -1)[:, :length]
    return codes.reshape(weight.shape), scale.reshape(rows.shape[0], blocks)


def dequantize(codes: torch.Tensor, scale: torch.Tensor, block_size: int) -> torch.Tensor:
    """Inverse of `symmetric_codes`: codes × their block's scale."""
    rows = codes.reshape(codes.shape[0], -1)
    per_input = scale.repeat_interleave(_block(block_size, rows.shape[1]), dim=1)[
        :, : rows.shape[1]
    ]
    return (rows * per_input).reshape(codes.shape)


def scale_count(shape: tuple[int, ...] | torch.Size, block_size: int) -> int:
    """Number of float32 scales a (rows, inputs) weight carries at `block_size`."""
    rows = int(shape[0])
    length = int(torch.Size(shape).numel()) // max(rows, 1)
    return rows * -(-length // max(_block(block_size, length), 1))


def fake_quantize(weight: torch.Tensor, bits: int, block_size: int) -> torch.Tensor:
    """The tensor as a `bits`-bit weight computes (block-wise symmetric for 2/4/8 bits, zeros
    for 0 = pruned, unchanged for 32)."""
    _check_bits(bits)
    if bits == 32:
        return weight
    if bits == 0:
        return torch.zeros_like(weight)
    codes, scale = symmetric_codes(weight, bits, block_size)
    return dequantize(codes, scale, block_size)


def fake_quantize_groups(weight: torch.Tensor, bits: int, group_size: int) -> torch.Tensor:
    """Asymmetric MinMax per subgroup of `group_size` consecutive inputs of each row."""
    if bits not in INT_BITS:
        raise ValueError(f"group quantization needs bits in {INT_BITS}, got {bits}")
    rows = weight.reshape(weight.shape[0], -1)
    if rows.shape[1] % group_size:
        raise ValueError(f"row length {rows.shape[1]} is not a multiple of group {group_size}")
    groups = rows.reshape(rows.shape[0], -1, group_size)
    low = groups.amin(dim=-1, keepdim=True)
    high = groups.amax(dim=-1, keepdim=True)
    levels = 2**bits - 1
    scale = ((high - low) / levels).clamp(min=1e-12)
    zero = torch.round(-low / scale)
    codes = torch.clamp(torch.round(groups / scale) + zero, 0, levels)
    return ((codes - zero) * scale).reshape(weight.shape)


def ste(weight: torch.Tensor, quantized: torch.Tensor) -> torch.Tensor:
    """Straight-through: forward value `quantized`, gradient of the identity to `weight`."""
    return weight + (quantized - weight).detach()


def quantize_activations(x: torch.Tensor, bits: int, block_size: int) -> torch.Tensor:
    """Symmetric fake quantization of activations per token and block of `block_size`
    inputs (one scale each: what MatMulNBits' int8 path does to its input), straight-through
    in the backward pass."""
    qmax = 2 ** (bits - 1) - 1
    length = x.shape[-1]
    blocks = -(-length // block_size)
    padded = torch.nn.functional.pad(x, (0, blocks * block_size - length))
    grouped = padded.reshape(*x.shape[:-1], blocks, block_size)
    scale = grouped.detach().abs().amax(dim=-1, keepdim=True).clamp(min=1e-8) / qmax
    quantized = (torch.clamp(torch.round(grouped / scale), -qmax, qmax) * scale).reshape(
        *x.shape[:-1], -1
    )[..., :length]
    return ste(x, quantized)


def quantize_activations_per_tensor(x: torch.Tensor) -> torch.Tensor:
    """Fake quantization of a whole activation tensor to uint8, asymmetric, its range widened
    to hold 0, rounding half to even: ONNX Runtime's DynamicQuantizeLinear, which
    DynamicQuantizeMatMul applies to its input on every call. Straight-through backwards."""
    low = torch.clamp(x.detach().amin(), max=0.0)
    high = torch.clamp(x.detach().amax(), min=0.0)
    scale = torch.clamp((high - low) / 255.0, min=1e-12)
    zero = torch.clamp(torch.round(-low / scale), 0, 255)
    quantized = (torch.clamp(torch.round(x / scale) + zero, 0, 255) - zero) * scale
    return ste(x, quantized)


def pack_codes(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """Signed codes in [-(2^(b-1) - 1), 2^(b-1) - 1] packed 8 // b per byte (uint8, flat)."""
    if bits not in INT_BITS:
        raise ValueError(f"packing needs bits in {INT_BITS}, got {bits}")
    offset = 2 ** (bits - 1) - 1
    unsigned = (codes.flatten().to(torch.int16) + offset).to(torch.uint8)
    per_byte = 8 // bits
    pad = (-unsigned.numel()) % per_byte
    unsigned = torch.cat([unsigned, unsigned.new_zeros(pad)]).reshape(-1, per_byte)
    packed = torch.zeros(unsigned.shape[0], dtype=torch.uint8)
    for slot in range(per_byte):
        packed |= unsigned[:, slot] << (slot * bits)
    return packed


def unpack_codes(packed: torch.Tensor, bits: int, shape: tuple[int, ...]) -> torch.Tensor:
    """Inverse of `pack_codes`: signed codes (float32) of `shape`."""
    offset = 2 ** (bits - 1) - 1
    per_byte = 8 // bits
    mask = 2**bits - 1
    slots = [(packed >> (slot * bits)) & mask for slot in range(per_byte)]
    unsigned = torch.stack(slots, dim=1).flatten()
    n = int(torch.Size(shape).numel())
    return (unsigned[:n].to(torch.float32) - offset).reshape(shape)


def plannable_tensors(model: torch.nn.Module) -> list[str]:
    """Weights whose bit width the planner chooses: every linear layer's weight and the
    word-embedding table. Biases, norms and position tables stay at full precision (they are
    under 1% of the bytes)."""
    names = []
    for module_name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) or module_name.endswith("word_embeddings"):
            names.append(f"{module_name}.weight")
    return names
