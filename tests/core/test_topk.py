import pytest
import torch

from bayesncl.core.topk import topk_mask


def test_keeps_k_largest_per_row():
    z = torch.tensor([[0.1, 0.9, 0.5, 0.3], [4.0, 1.0, 2.0, 3.0]])
    out = topk_mask(z, 2)
    torch.testing.assert_close(out, torch.tensor([[0.0, 0.9, 0.5, 0.0], [4.0, 0.0, 0.0, 3.0]]))


def test_gradient_only_through_kept_entries():
    z = torch.randn(8, 16, requires_grad=True)
    out = topk_mask(z, 3)
    out.sum().backward()
    kept = out.detach() != 0
    assert torch.equal(z.grad != 0, kept)
    assert (kept.sum(1) == 3).all()


def test_k_equal_dim_is_identity():
    z = torch.randn(2, 5)
    assert torch.equal(topk_mask(z, 5), z)


@pytest.mark.parametrize("k", [0, -1, 17, 2.5, True])
def test_k_out_of_range(k):
    with pytest.raises(ValueError, match=r"topk_k=.* must be an integer in 1\.\.16"):
        topk_mask(torch.randn(2, 16), k)
