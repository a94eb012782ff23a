import pytest
import torch
import torch.nn.functional as F

from bayesncl.core.nonneg import NON_NEGATIVE, NONNEG_MAPS, get_nonneg, rep_relu


def test_registry_names():
    assert set(NONNEG_MAPS) == {
        "identity",
        "relu",
        "rep_relu",
        "gelu",
        "leakyrelu",
        "softplus",
        "sigmoid",
        "exp",
    }


def test_rep_relu_forward_is_relu_and_gradient_is_gelu_derivative():
    z = torch.linspace(-4, 4, 101, dtype=torch.float64, requires_grad=True)
    out = rep_relu(z)
    torch.testing.assert_close(out, F.relu(z.detach()))
    (grad,) = torch.autograd.grad(out.sum(), z)
    x = z.detach().clone().requires_grad_(True)
    (gelu_grad,) = torch.autograd.grad(F.gelu(x).sum(), x)
    torch.testing.assert_close(grad, gelu_grad)
    # closed form: GELU'(z) = Phi(z) + z * phi(z)
    normal = torch.distributions.Normal(0.0, 1.0)
    zz = z.detach()
    torch.testing.assert_close(grad, normal.cdf(zz) + zz * normal.log_prob(zz).exp())
    assert (grad[zz < 0] != 0).all()  # negative pre-activations keep a gradient


@pytest.mark.parametrize("name", sorted(NON_NEGATIVE))
def test_non_negative_maps_are_non_negative(name):
    z = torch.randn(64, 32) * 5
    assert (get_nonneg(name)(z) >= 0).all()


def test_leakyrelu_slope_and_identity():
    z = torch.tensor([-1.0, 2.0])
    torch.testing.assert_close(get_nonneg("leakyrelu")(z), torch.tensor([-0.01, 2.0]))
    assert get_nonneg("identity")(z) is z


def test_unknown_name_lists_valid_ones():
    with pytest.raises(ValueError, match=r"nonneg='relu6'.*rep_relu"):
        get_nonneg("relu6")
