"""The compiled pointwise kernels of the standard path (:mod:`pruneplast.kernels.pointwise`).

``relu_modulate`` gives torch's bits forward and backward; the fold gives torch's gradient at the
weights bit for bit and its sums to float precision. A training phase with the operator on equals
the phase with it off bit for bit where no fold is taken, and to the last bits where one is; the
kernels are used only where they serve (training, CPU, float32, the operator on).
"""

from __future__ import annotations

import pytest
import torch
from conftest import SMALL_NET

from pruneplast.config import TaskConfig, TrainConfig
from pruneplast.data import EnsembleData
from pruneplast.kernels import fused, pointwise
from pruneplast.network import EnsembleMLP
from pruneplast.operators import prune, train

SEEDS = [3, 4, 5]
TASK = TaskConfig(n_train=300, n_standard=100, n_clean=100)
CFG = TrainConfig(epochs=2, lr=1e-3, batch_size=128)


@pytest.fixture(scope="module")
def op():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(fused.ENV, "1")
        mp.delenv(fused.NO_COMPILE_ENV, raising=False)
        if fused.why_not_compiled() is not None or fused.load() is None:
            pytest.skip("the compiled operator cannot be built here")
    return fused.load()


@pytest.fixture
def on(monkeypatch, op):
    """The operator on, with a count of each kernel's calls."""
    monkeypatch.setenv(fused.ENV, "1")
    calls = {"relu_modulate": 0, "fold": 0}
    for name, fn in (("relu_modulate", pointwise.relu_modulate), ("fold", pointwise.fold)):

        def counted(*args, _fn=fn, _name=name):
            out = _fn(*args)
            calls[_name] += out is not None
            return out

        monkeypatch.setattr(pointwise, name, counted)
    return calls


def layouts(m=3, b=37, n=21, seed=0):
    """z (M, B, N) laid out sample-major and unit-major, with zeros, negative zeros and large values."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(m, b, n, generator=g) * 3
    z.view(-1)[::7] = 0.0
    z.view(-1)[::11] = -0.0
    return [z.clone(), z.transpose(1, 2).contiguous().transpose(1, 2)]


@pytest.mark.parametrize("layout", [0, 1])
def test_relu_modulate_gives_torchs_bits(op, layout):
    z0 = layouts()[layout]
    scale = torch.tensor([1.0, 0.83, 1.27]).view(3, 1, 1)
    shift = torch.tensor([0.0, 0.15, 0.075]).view(3, 1, 1)
    g = torch.randn(z0.shape)
    za, zb = z0.clone().requires_grad_(True), z0.clone().requires_grad_(True)
    ha = pointwise.relu_modulate(za, scale, shift)
    assert ha is not None and ha.stride() == za.stride()
    hb = torch.relu(zb) * scale - shift
    assert torch.equal(ha, hb)
    assert torch.equal(torch.signbit(ha), torch.signbit(hb))
    (ga,) = torch.autograd.grad(ha, za, g)
    (gb,) = torch.autograd.grad(hb, zb, g)
    assert torch.equal(ga, gb)
    # a gradient laid out otherwise than z is taken in z's layout
    (gc,) = torch.autograd.grad(
        pointwise.relu_modulate(za, scale, shift), za, g.transpose(1, 2).contiguous().transpose(1, 2)
    )
    assert torch.equal(gc, gb)


def test_fold_gradients_and_sums(op):
    g = torch.Generator().manual_seed(1)
    m, r, c = 3, 40, 32
    mask = torch.rand(m, r, c, generator=g) < 0.5
    t0 = torch.randn(m, r, c, generator=g) * mask
    c0 = torch.randn(m, 1, c, generator=g)
    up = torch.randn(m, r, generator=g)
    ta, ca = t0.clone().requires_grad_(True), c0.clone().requires_grad_(True)
    tb, cb = t0.clone().requires_grad_(True), c0.clone().requires_grad_(True)
    sa = pointwise.fold(ta, ca, mask)
    sb = (tb * cb).sum(2)
    torch.testing.assert_close(sa, sb, rtol=1e-6, atol=1e-6)
    gta, gca = torch.autograd.grad(sa, (ta, ca), up)
    gtb, gcb = torch.autograd.grad(sb, (tb, cb), up)
    assert torch.equal(gta, gtb * mask.float())  # the masked gradient, as the standard path masks it
    torch.testing.assert_close(gca, gcb, rtol=1e-6, atol=1e-6)
    assert bool((gta[~mask] == 0).all())


def test_not_used_off_the_training_cpu_path(op, monkeypatch):
    z = torch.randn(2, 5, 16)
    s, sh = torch.ones(2, 1, 1) * 0.5, torch.zeros(2, 1, 1)
    with torch.no_grad():
        assert pointwise.relu_modulate(z, s, sh) is None
    assert pointwise.relu_modulate(z.double(), s.double(), sh.double()) is None
    assert pointwise.relu_modulate(z, s, sh) is not None
    monkeypatch.setenv(fused.ENV, "0")
    assert pointwise.relu_modulate(z, s, sh) is None
    assert (
        pointwise.fold(
            torch.randn(2, 3, 16, requires_grad=True), torch.randn(2, 1, 16), torch.ones(2, 3, 16, dtype=torch.bool)
        )
        is None
    )


def modulated(net: EnsembleMLP) -> EnsembleMLP:
    return net.set_modulation(gain=[1.0, 1.3, 1.2], damping=[1.0, 0.8, 0.9], protection=[0.0, 0.5, 1.0])


def test_a_dense_phase_with_modulation_is_bit_for_bit(on, monkeypatch):
    """No constant units (unpruned): only relu_modulate is taken, and it changes no bit."""
    net = modulated(EnsembleMLP.init(SEEDS, SMALL_NET))
    data = EnsembleData.build(SEEDS, TASK)
    a, b = net.clone(), net.clone()
    train(a, data, CFG, tag="phase")
    assert on["relu_modulate"] > 0 and on["fold"] == 0
    monkeypatch.setenv(fused.ENV, "0")
    train(b, data, CFG, tag="phase")
    for x, y in zip(a.weights + a.biases, b.weights + b.biases):
        assert torch.equal(x, y)


def test_a_pruned_phase_with_folds_agrees_and_keeps_pruned_weights_at_zero(on, monkeypatch):
    """Pruned on the dense path: constant units are folded by the kernel; pruned weights never move,
    and the phase agrees with the one without the operator to the last bits."""
    net = modulated(prune(EnsembleMLP.init(SEEDS, SMALL_NET), 0.75))
    data = EnsembleData.build(SEEDS, TASK)
    a, b = net.clone(), net.clone()
    train(a, data, CFG, tag="phase")
    assert on["fold"] > 0 and on["relu_modulate"] > 0
    monkeypatch.setenv(fused.ENV, "0")
    train(b, data, CFG, tag="phase")
    for x, y in zip(a.weights + a.biases, b.weights + b.biases):
        torch.testing.assert_close(x, y, rtol=0, atol=1e-5)
    for w, mk in zip(a.weights, a.masks):
        assert bool((w[~mk] == 0).all())
