"""lib.batchnorm against nn.BatchNorm2d (both modes, running statistics) and autograd."""

import pytest
import torch
import torch.nn as nn

from lib.batchnorm import batch_norm, batch_norm_backward


def _bn(C, seed=0):
    torch.manual_seed(seed)
    bn = nn.BatchNorm2d(C, momentum=0.1, eps=1e-5).double()
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-1, 1)
    return bn


def test_training_mode_and_running_statistics_match_torch():
    bn = _bn(3)
    rm, rv = bn.running_mean.clone(), bn.running_var.clone()
    for step in range(3):  # several updates of the moving averages
        x = torch.randn(4, 3, 5, 6, dtype=torch.float64) * (step + 1) + step
        expected = bn.train()(x)
        got = batch_norm(x, bn.weight, bn.bias, rm, rv, training=True)
        torch.testing.assert_close(got, expected)
        torch.testing.assert_close(rm, bn.running_mean)
        torch.testing.assert_close(rv, bn.running_var)  # the unbiased variance goes into the estimate


def test_normalises_with_the_biased_variance():
    x = torch.tensor([1.0, 3.0], dtype=torch.float64).view(2, 1, 1, 1)  # m = 2, mean 2, biased var 1
    y = batch_norm(x, torch.ones(1, dtype=torch.float64), torch.zeros(1, dtype=torch.float64), eps=0.0)
    assert y.flatten().tolist() == [-1.0, 1.0]


def test_evaluation_mode_uses_running_statistics():
    bn = _bn(4, seed=1)
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
    x = torch.randn(3, 4, 2, 2, dtype=torch.float64)
    rm, rv = bn.running_mean.clone(), bn.running_var.clone()
    torch.testing.assert_close(batch_norm(x, bn.weight, bn.bias, rm, rv, training=False), bn.eval()(x))
    assert torch.equal(rm, bn.running_mean)  # evaluation never updates them
    with pytest.raises(ValueError, match="running_mean and running_var"):
        batch_norm(x, bn.weight, bn.bias, training=False)


def test_backward_by_hand_matches_autograd():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(3, 2, 4, 4, dtype=torch.float64, generator=g, requires_grad=True)
    gamma = torch.rand(2, dtype=torch.float64, generator=g).add(0.5).requires_grad_()
    beta = torch.randn(2, dtype=torch.float64, generator=g).requires_grad_()
    dy = torch.randn(3, 2, 4, 4, dtype=torch.float64, generator=g)
    batch_norm(x, gamma, beta).backward(dy)
    dx, dgamma, dbeta = batch_norm_backward(dy, x.detach(), gamma.detach())
    torch.testing.assert_close(dx, x.grad)
    torch.testing.assert_close(dgamma, gamma.grad)
    torch.testing.assert_close(dbeta, beta.grad)
    assert torch.autograd.gradcheck(lambda a, b, c: batch_norm(a, b, c), (x, gamma, beta))
