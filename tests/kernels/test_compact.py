"""Compact layers' products over each replica's own units (``pruneplast/kernels/compact.py``).

A compact block is padded to the ensemble's largest replica; its dense products run over each
replica's own rows and columns (``ragged_linear``), so that a replica's sums, and so its trained
weights, do not depend on the replicas beside it.
"""

from __future__ import annotations

import pytest
import torch

from pruneplast.config import RegrowConfig, TaskConfig, TrainConfig
from pruneplast.data import EnsembleData
from pruneplast.kernels import compact, fused, pointwise
from pruneplast.network import EnsembleMLP
from pruneplast.operators import prune, regrow, train

ROWS, COLS = (7, 0, 16, 3), (16, 5, 11, 0)  # each replica's own block of a (4, 16, 16) padded one


def _block(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    m, r_, k_ = len(ROWS), max(ROWS), max(COLS)
    w = torch.randn(m, r_, k_, generator=g)
    valid = torch.zeros(m, r_, k_, dtype=torch.bool)
    for i, (r, k) in enumerate(zip(ROWS, COLS)):
        valid[i, :r, :k] = True
    kept = valid & (torch.rand(m, r_, k_, generator=g) < 0.6)
    w = w * kept  # pruned and padded entries are zero, as a compact block holds them
    h = torch.randn(m, 9, k_, generator=g)
    b = torch.randn(m, r_, generator=g)
    return w, h, b, kept


def _ragged(w, h, b, mask, use_op: bool, monkeypatch):
    monkeypatch.setenv(fused.ENV, "1" if use_op else "0")
    w, h, b = (t.clone().requires_grad_(True) for t in (w, h, b))
    z = compact.ragged_linear(h, w, b, (ROWS, COLS), mask)
    gz = torch.randn(z.shape, generator=torch.Generator().manual_seed(5))
    grads = torch.autograd.grad(z, (w, h, b), gz)
    return z.detach(), grads, gz


@pytest.mark.parametrize("use_op", [False, True])
def test_ragged_products_equal_the_padded_products_with_masked_gradients(use_op, monkeypatch):
    """The logits of each replica's own rows equal the padded batched product's; padded rows hold
    their bias; the gradients equal the padded product's, masked at the weights, and are zero at
    padded inputs and at pruned or padded weights."""
    if use_op and (fused.why_not_compiled() is not None or fused.load() is None):
        pytest.skip("the compiled operator cannot be built here")
    w, h, b, kept = _block()
    z, (gw, gh, gb), gz = _ragged(w, h, b, kept, use_op, monkeypatch)
    ref_w, ref_h, ref_b = (t.clone().requires_grad_(True) for t in (w, h, b))
    ref = torch.baddbmm(ref_b.unsqueeze(2), ref_w, ref_h.transpose(1, 2)).transpose(1, 2)
    rw, rh, rb = torch.autograd.grad(ref, (ref_w, ref_h, ref_b), gz)
    for i, (r, k) in enumerate(zip(ROWS, COLS)):
        torch.testing.assert_close(z[i, :, :r], ref[i, :, :r].detach())
        assert torch.equal(z[i, :, r:], b[i, r:].expand(z.shape[1], -1))  # padded rows: their bias
        torch.testing.assert_close(gh[i, :, :k], rh[i, :, :k])
        assert not gh[i, :, k:].any()  # padded inputs
    torch.testing.assert_close(gw, rw * kept)
    assert not gw[~kept].any()  # pruned and padded weights
    assert torch.equal(gb, rb)  # each row's sum over the batch, as autograd's


def test_the_compiled_ragged_products_give_the_python_loops_bits(monkeypatch):
    """The operator runs the same ATen calls as the Python loops (the path without it): the same bits."""
    if fused.why_not_compiled() is not None or fused.load() is None:
        pytest.skip("the compiled operator cannot be built here")
    w, h, b, kept = _block(3)
    for mask in (kept, None):
        z0, g0, _ = _ragged(w, h, b, mask, False, monkeypatch)
        z1, g1, _ = _ragged(w, h, b, mask, True, monkeypatch)
        assert torch.equal(z0, z1)
        assert all(torch.equal(x, y) for x, y in zip(g0, g1))


@pytest.mark.parametrize("use_op", [False, True])
def test_a_replica_trains_to_the_same_bits_in_any_ensemble(use_op, monkeypatch):
    """Replicas of the book's network 95%-pruned and half regrown by gradient (the ketamine-like
    kind: 47.5% sparse, first-layer units without input stay without, so the live units differ in
    number and the compact blocks are padded to the largest replica), trained as one ensemble, in
    two halves and alone: the same bits, on the path with the compiled operator and on the one
    without. (Multiplied over the padded blocks, replicas 0 and 1 trained alongside 2 and 3 ended
    up to 3e-6 from the same replicas trained alone.)"""
    if use_op and (fused.why_not_compiled() is not None or fused.load() is None):
        pytest.skip("the compiled operator cannot be built here")
    monkeypatch.setenv(fused.ENV, "1" if use_op else "0")
    net = prune(EnsembleMLP.init([0, 1, 2, 3]), 0.95)
    data = EnsembleData.build(net.seeds, TaskConfig(n_train=4 * 64, n_standard=50, n_clean=50))
    regrow(net, data, RegrowConfig(fraction=0.5))
    ragged = [p.main.extent for p in net.plans(compact=True) if p.main.ragged]
    assert ragged and any(len(set(rows)) > 1 or len(set(cols)) > 1 for rows, cols in ragged)  # padded blocks
    shapes = [p.main.mask.shape for p in net.plans(compact=True)]
    assert all(  # these parts' blocks are padded otherwise than the whole ensemble's
        [p.main.mask.shape[1:] for p in net.select(idx).plans(compact=True)] != [s[1:] for s in shapes]
        for idx in ([0, 1], [1])
    )
    cfg = TrainConfig(epochs=1, lr=1e-3, batch_size=64)
    whole = train(net.clone(), data, cfg, progress=False)
    for idx in ([0, 1], [2, 3], [1], [3]):
        part = train(net.select(idx), data.select(idx), cfg, progress=False)
        for mine, theirs in zip(part.weights + part.biases, whole.weights + whole.biases):
            assert torch.equal(mine, theirs[idx])
    assert any(not torch.equal(a, b) for a, b in zip(whole.weights, net.weights))  # it trained


def test_the_activation_taken_with_the_products_gives_the_separate_passes_bits(monkeypatch):
    """The compiled operator's products with the hidden layer's ``relu(z) * scale - shift`` taken
    replica by replica (and its gradient at z before each replica's backward products) give the
    bits of the products followed by the separate one-pass activation: the output and the
    gradients at the weights, inputs and bias."""
    if fused.why_not_compiled() is not None or fused.load() is None:
        pytest.skip("the compiled operator cannot be built here")
    monkeypatch.setenv(fused.ENV, "1")
    w, h, b, kept = _block(7)
    mask = kept
    m = w.shape[0]
    scale = torch.tensor([0.5, 1.25, 0.8, 1.0])
    shift = torch.tensor([0.1, 0.0, 0.3, 0.05])
    g = torch.randn(m, h.shape[1], w.shape[1], generator=torch.Generator().manual_seed(11))
    outs = []
    for together in (True, False):
        wg, hg, bg = (t.clone().requires_grad_(True) for t in (w, h, b))
        if together:
            out = compact.ragged_linear(hg, wg, bg, (ROWS, COLS), mask, (scale, shift))
        else:
            z = compact.ragged_linear(hg, wg, bg, (ROWS, COLS), mask)
            out = pointwise.relu_modulate(z, scale.view(m, 1, 1), shift.view(m, 1, 1))
        outs.append((out.detach(), torch.autograd.grad(out, (wg, hg, bg), g)))
    (o1, g1), (o2, g2) = outs
    assert (o2 < 0).any() and (o2 > 0).any()  # the ReLU cut some units and passed others
    assert torch.equal(o1, o2)
    assert all(torch.equal(x, y) for x, y in zip(g1, g2))


def test_a_modulated_phase_takes_the_activation_with_the_products_bit_for_bit(monkeypatch):
    """A 47.5%-sparse ensemble with gain and protection (the ketamine-like course's kind) trained
    with the activation taken with the ragged products and with it taken in its own pass: the
    same bits, and the first path was taken."""
    if fused.why_not_compiled() is not None or fused.load() is None:
        pytest.skip("the compiled operator cannot be built here")
    monkeypatch.setenv(fused.ENV, "1")
    net = prune(EnsembleMLP.init([0, 1, 2]), 0.95)
    data = EnsembleData.build(net.seeds, TaskConfig(n_train=3 * 64, n_standard=50, n_clean=50))
    regrow(net, data, RegrowConfig(fraction=0.5))
    net = net.with_protection(torch.tensor([0.2, 0.0, 0.4]))
    cfg = TrainConfig(epochs=1, lr=1e-3, batch_size=64)
    taken = []
    original = compact.CompactLayer.forward_activated

    def counting(self, *args):
        out = original(self, *args)
        taken.append(out is not None)
        return out

    monkeypatch.setattr(compact.CompactLayer, "forward_activated", counting)
    together = train(net.clone(), data, cfg, progress=False)
    assert taken and all(taken)
    monkeypatch.setattr(compact.CompactLayer, "forward_activated", lambda self, *args: None)
    apart = train(net.clone(), data, cfg, progress=False)
    for x, y in zip(together.weights + together.biases, apart.weights + apart.biases):
        assert torch.equal(x, y)
    assert any(not torch.equal(a, b) for a, b in zip(together.weights, net.weights))  # it trained
