"""Quantizers: round trips, error bounds, straight-through gradients, pruning, packing."""

import pytest
import torch

from frugal.quantize import (
    fake_quantize,
    fake_quantize_groups,
    magnitude_prune,
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
def test_symmetric_per_channel_error_is_at_most_half_a_step(weight, bits):
    codes, scale = symmetric_codes(weight, bits)
    qmax = 2 ** (bits - 1) - 1
    assert codes.abs().max() <= qmax and torch.equal(codes, codes.round())
    error = (fake_quantize(weight, bits) - weight).abs()
    assert (error <= scale[:, None] / 2 + 1e-6).all()
    # each row's largest magnitude is represented exactly (MinMax)
    row_max = weight.abs().argmax(dim=1)
    exact = fake_quantize(weight, bits).gather(1, row_max[:, None])
    assert torch.allclose(exact, weight.gather(1, row_max[:, None]))
    assert fake_quantize(weight, bits)[0].unique().numel() <= 2 * qmax + 1


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_asymmetric_groups_error_is_at_most_half_a_group_step(weight, bits):
    groups = weight.reshape(24, -1, 16)
    step = (groups.amax(-1) - groups.amin(-1)) / (2**bits - 1)
    error = (fake_quantize_groups(weight, bits, 16) - weight).reshape(24, -1, 16).abs()
    assert (error <= step[..., None] / 2 + 1e-5).all()
    with pytest.raises(ValueError, match="multiple of group"):
        fake_quantize_groups(weight, bits, 10)


def test_more_bits_less_error_and_special_widths(weight):
    errors = [(fake_quantize(weight, b) - weight).pow(2).mean().item() for b in (2, 4, 8, 16)]
    assert errors == sorted(errors, reverse=True) and errors[-1] < 1e-6
    assert fake_quantize(weight, 32) is weight
    assert not fake_quantize(weight, 0).any()
    with pytest.raises(ValueError, match="bits must be one of"):
        fake_quantize(weight, 3)


def test_straight_through_gradients_reach_the_full_precision_weights(weight):
    w = weight.clone().requires_grad_(True)
    upstream = torch.randn_like(w)
    (ste(w, fake_quantize(w, 4)) * upstream).sum().backward()
    assert torch.equal(w.grad, upstream)  # rounding is the identity backwards
    x = torch.randn(3, 5, 8, requires_grad=True)
    out = quantize_activations(x, 8)
    out.sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))
    token_scale = x.detach().abs().amax(-1, keepdim=True) / 127
    assert ((out - x).abs() <= token_scale / 2 + 1e-6).all()


def test_magnitude_pruning_zeroes_the_smallest(weight):
    pruned = magnitude_prune(weight, 0.75)
    assert (pruned == 0).float().mean().item() == pytest.approx(0.75, abs=1 / weight.numel())
    kept = pruned != 0
    assert weight.abs()[kept].min() >= weight.abs()[~kept].max()
    assert torch.equal(pruned[kept], weight[kept])


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_packing_round_trips_and_really_saves_bytes(weight, bits):
    codes, _ = symmetric_codes(weight[:, :63], bits)  # odd length: the last byte is padded
    packed = pack_codes(codes, bits)
    assert packed.dtype == torch.uint8
    assert packed.numel() == -(-codes.numel() * bits // 8)
    assert torch.equal(unpack_codes(packed, bits, tuple(codes.shape)), codes)
