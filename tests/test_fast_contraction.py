"""The fast path's scene contraction: nerfacto's L-infinity contraction with its norm taken as max |x| gives the
same values and gradients as nerfstudio's own, bit for bit."""

import pytest
import torch
from nerfstudio.field_components.spatial_distortions import SceneContraction

from nerftune.nerf.fast_path import use_fast_contractions


def contracted_with_gradient(contraction, positions, upstream):
    positions = positions.clone().requires_grad_()
    values = contraction(positions)
    (gradient,) = torch.autograd.grad(values, positions, upstream)
    return values, gradient


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_the_fast_contraction_is_nerfstudios_bit_for_bit(dtype):
    generator = torch.Generator().manual_seed(0)
    positions = torch.randn(4096, 16, 3, generator=generator) * 3  # inside and outside the unit cube
    positions[0, :4] = torch.tensor([[2.0, 2.0, -2.0], [3.0, -3.0, 0.1], [0.0, -0.0, 0.5], [1.0, 0.0, 0.0]])  # ties
    positions = positions.to(dtype)
    upstream = torch.randn(positions.shape, generator=generator).to(dtype)
    nerfstudio, fast = SceneContraction(order=float("inf")), SceneContraction(order=float("inf"))
    assert use_fast_contractions(torch.nn.Sequential(fast)) == 1
    assert "forward" in vars(fast) and "forward" not in vars(nerfstudio)
    expected, expected_gradient = contracted_with_gradient(nerfstudio, positions, upstream)
    values, gradient = contracted_with_gradient(fast, positions, upstream)
    assert torch.equal(values, expected) and torch.equal(gradient, expected_gradient)
    assert torch.equal(torch.signbit(gradient), torch.signbit(expected_gradient))  # signed zeros as well


def test_other_contractions_stay_nerfstudios():
    spherical = SceneContraction()  # the L2 norm (a sphere of radius 2): torch's norm is quick there
    assert use_fast_contractions(torch.nn.Sequential(spherical)) == 0 and "forward" not in vars(spherical)
