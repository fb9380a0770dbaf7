"""Quantizers: round trips, error bounds, straight-through gradients, packing."""

import pytest
import torch

from frugal.model.quantize import (
    fake_quantize,
    fake_quantize_groups,
    pack_codes,
    quantize_activations,
    ste,
    symmetric_codes,
    unpack_codes,
)


@pytest.fixture
def weight() -> torch.Tensor:
    return torch.randn(24, 64, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("block", [16, 64, 128])
def test_symmetric_per_block_error_is_at_most_half_a_step(weight, bits, block):
    codes, scale = symmetric_codes(weight, bits, block)
    blocks = -(-64 // block)
    assert scale.shape == (24, blocks)  # a short last block when 64 is not a multiple
    qmax = 2 ** (bits - 1) - 1
    assert codes.abs().max() <= qmax and torch.equal(codes, codes.round())
    error = (fake_quantize(weight, bits, block) - weight).abs()
    per_input = scale.repeat_interleave(block, dim=1)[:, :64]
    assert (error <= per_input / 2 + 1e-6).all()
    # each block's largest magnitude is represented exactly (MinMax)
    first = weight[:, : min(block, 64)]
    row_max = first.abs().argmax(dim=1)
    exact = fake_quantize(weight, bits, block).gather(1, row_max[:, None])
    assert torch.allclose(exact, first.gather(1, row_max[:, None]))


def test_smaller_blocks_quantize_more_precisely(weight):
    errors = [(fake_quantize(weight, 4, b) - weight).pow(2).mean().item() for b in (16, 32, 64)]
    assert errors == sorted(errors)


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_asymmetric_groups_error_is_at_most_half_a_group_step(weight, bits):
    groups = weight.reshape(24, -1, 16)
    step = (groups.amax(-1) - groups.amin(-1)) / (2**bits - 1)
    error = (fake_quantize_groups(weight, bits, 16) - weight).reshape(24, -1, 16).abs()
    assert (error <= step[..., None] / 2 + 1e-5).all()
    with pytest.raises(ValueError, match="multiple of group"):
        fake_quantize_groups(weight, bits, 10)


def test_more_bits_less_error_and_special_widths(weight):
    errors = [(fake_quantize(weight, b, 32) - weight).pow(2).mean().item() for b in (2, 4, 8)]
    assert errors == sorted(errors, reverse=True) and errors[-1] < 1e-4
    assert fake_quantize(weight, 32, 32) is weight
    assert not fake_quantize(weight, 0, 32).any()
    with pytest.raises(ValueError, match="bits must be one of"):
        fake_quantize(weight, 16, 32)  # float16 is not a width the runtime executes


def test_straight_through_gradients_reach_the_full_precision_weights(weight):
    w = weight.clone().requires_grad_(True)
    upstream = torch.randn_like(w)
    (ste(w, fake_quantize(w, 4, 32)) * upstream).sum().backward()
    assert torch.equal(w.grad, upstream)  # rounding is the identity backwards
    x = torch.randn(3, 5, 40, requires_grad=True)
    out = quantize_activations(x, 8, 16)  # blocks of 16, 16 and 8 inputs per token
    out.sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))
    for start in (0, 16, 32):
        part = x.detach()[..., start : start + 16]
        block_scale = part.abs().amax(-1, keepdim=True) / 127
        assert (
            (out.detach()[..., start : start + 16] - part).abs() <= block_scale / 2 + 1e-6
        ).all()


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_packing_round_trips_and_really_saves_bytes(weight, bits):
    codes, _ = symmetric_codes(weight[:, :63], bits, 32)  # odd length: the last byte is padded
    packed = pack_codes(codes, bits)
    assert packed.dtype == torch.uint8
    assert packed.numel() == -(-codes.numel() * bits // 8)
    assert torch.equal(unpack_codes(packed, bits, tuple(codes.shape)), codes)
