"""Quantizers, pruning and packed storage for weight tensors.

* Weights, symmetric MinMax per output channel (LLM-QAT, arXiv 2305.17888): codes in
  [-(2^(b-1) - 1), 2^(b-1) - 1], one scale per row; the rounding error of each weight is at
  most half its row's scale.
* Weights, asymmetric MinMax per subgroup (AQ-BERT, arXiv 2112.14938): each row split into
  groups of `group_size` inputs, codes in [0, 2^b - 1] with a scale and zero point per group.
* Activations: 8-bit symmetric per token (one scale per row of the last dimension).
* Straight-through estimator: the forward pass sees the quantized tensor, the backward pass
  treats rounding as the identity, so gradients reach the full-precision weights (QAT).
* Bits in {0 = pruned, 2, 4, 8, 16, 32}; 16 is float16, 32 leaves the tensor as it is.
* Packing: b-bit codes, 8 // b per byte, so a 4-bit tensor really takes half the bytes of an
  8-bit one on disk.

Pure torch: tensors in, tensors out.
"""

from __future__ import annotations

import torch

BITS = (0, 2, 4, 8, 16, 32)
INT_BITS = (2, 4, 8)


def _check_bits(bits: int) -> None:
    if bits not in BITS:
        raise ValueError(f"bits must be one of {BITS}, got {bits}")


def symmetric_codes(weight: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(integer codes, per-row scale) of symmetric MinMax quantization per output channel."""
    if bits not in INT_BITS:
        raise ValueError(f"integer codes need bits in {INT_BITS}, got {bits}")
    qmax = 2 ** (bits - 1) - 1
    rows = weight.reshape(weight.shape[0], -1)
    scale = rows.abs().amax(dim=1, keepdim=True).clamp(min=1e-12) / qmax
    codes = torch.clamp(torch.round(rows / scale), -qmax, qmax)
    return codes.reshape(weight.shape), scale.reshape(-1)


def fake_quantize(weight: torch.Tensor, bits: int) -> torch.Tensor:
    """The tensor as a `bits`-bit weight would compute (per-channel symmetric for 2/4/8 bits,
    float16 for 16, zeros for 0 = pruned, unchanged for 32)."""
    _check_bits(bits)
    if bits == 32:
        return weight
    if bits == 16:
        return weight.to(torch.float16).to(weight.dtype)
    if bits == 0:
        return torch.zeros_like(weight)
    codes, scale = symmetric_codes(weight, bits)
    return (codes.reshape(weight.shape[0], -1) * scale[:, None]).reshape(weight.shape)


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


def quantize_activations(x: torch.Tensor, bits: int = 8) -> torch.Tensor:
    """Symmetric per-token fake quantization of activations (one scale per last-dim row),
    straight-through in the backward pass."""
    qmax = 2 ** (bits - 1) - 1
    scale = x.detach().abs().amax(dim=-1, keepdim=True).clamp(min=1e-8) / qmax
    return ste(x, torch.clamp(torch.round(x / scale), -qmax, qmax) * scale)


def magnitude_prune(weight: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Zero the `sparsity` share of entries with the smallest magnitude (ties kept)."""
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    k = int(round(sparsity * weight.numel()))
    if k == 0:
        return weight
    threshold = weight.abs().flatten().kthvalue(k).values
    return torch.where(weight.abs() > threshold, weight, torch.zeros_like(weight))


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
