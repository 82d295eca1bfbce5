"""The ensemble MLP: initialisation, and the forward pass with its modulation (methods section 2).

The forward pass is checked against the section's rule computed by hand in numpy on a tiny
2 -> 3 -> 3 -> 3 -> 2 network with hand-set weights; internal noise is checked statistically.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
from conftest import FULL, SMALL_NET, numpy_forward

from pruneplast.config import NetworkConfig
from pruneplast.network import EnsembleMLP

TINY = NetworkConfig(sizes=(2, 3, 3, 3, 2))
W = [
    np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]),
    np.eye(3),
    np.array([[1.0, -1.0, 0.0], [0.0, 0.0, 1.0], [0.5, 0.5, 0.5]]),
    np.array([[1.0, 1.0, 1.0], [1.0, -1.0, 0.0]]),
]
B = [np.array([0.0, 0.0, -1.0]), np.zeros(3), np.zeros(3), np.array([0.0, 0.5])]


def tiny_net(n_replicas: int, ws=W, bs=B, sizes=TINY) -> EnsembleMLP:
    net = EnsembleMLP.init(list(range(n_replicas)), sizes)
    for i in range(len(ws)):
        net.weights[i][:] = torch.tensor(ws[i], dtype=torch.float32)
        net.biases[i][:] = torch.tensor(bs[i], dtype=torch.float32)
    return net


def run(net: EnsembleMLP, x: np.ndarray, **kwargs) -> np.ndarray:
    xt = torch.tensor(x, dtype=torch.float32).expand(net.n_replicas, -1, -1).contiguous()
    with torch.no_grad():
        return net.forward(xt, **kwargs).double().numpy()


def test_hand_computed_case():
    # x = (1, 2): layer 1 z = (1, 2, 2); layer 2 identity; layer 3 z = (-1, 2, 2.5) -> (0, 2, 2.5);
    # logits = (0 + 2 + 2.5, 0 - 2 + 0.5) = (4.5, -1.5).
    # With gain 2: (2, 4, 4) -> (4, 8, 8) -> z = (-4, 8, 10) -> (0, 16, 20) -> (36, -15.5).
    # With gain 2 and protection 1: g_eff = min(2, max(1.05, 1.05)) = 1.05, shift 0.15:
    #   h1 = (1.05-.15, 2.1-.15, 2.1-.15) = (.9, 1.95, 1.95)
    #   h2 = (.9*1.05-.15, 1.95*1.05-.15, same) = (.795, 1.8975, 1.8975)
    #   z3 = (.795-1.8975, 1.8975, .5*(.795+2*1.8975)) = (-1.1025, 1.8975, 2.295)
    #   h3 = (0-.15, 1.8975*1.05-.15, 2.295*1.05-.15) = (-.15, 1.842375, 2.25975)
    #   logits = (-.15+1.842375+2.25975, -.15-1.842375+.5) = (3.952125, -1.492375)
    net = tiny_net(3)
    net.set_modulation(gain=2.0, index=[1, 2])
    net.set_modulation(protection=1.0, index=[2])
    out = run(net, np.array([[1.0, 2.0]]))
    np.testing.assert_allclose(out[0, 0], [4.5, -1.5], atol=1e-6)
    np.testing.assert_allclose(out[1, 0], [36.0, -15.5], atol=1e-5)
    np.testing.assert_allclose(out[2, 0], [3.952125, -1.492375], atol=1e-5)
    # the numpy reference agrees with the hand computation
    np.testing.assert_allclose(
        numpy_forward(W, B, [[1.0, 2.0]], gain=2.0, protection=1.0)[0], [3.952125, -1.492375], atol=1e-12
    )


# one replica per modulation state: (gain, damping, activation, protection)
STATES = [
    (1.0, 1.0, "relu", 0.0),  # drug off
    (1.25, 1.0, "relu", 0.0),  # ketamine-like
    (1.6, 1.0, "relu", 0.0),  # SSRI-like
    (0.85, 0.7, "tanh", 0.0),  # neurosteroid-like, scale 0.595
    (1.6, 1.0, "relu", 0.5),  # protection: g_eff = min(1.6, 1.05 + 0.5 * 0.55) = 1.325
    (1.25, 1.0, "relu", 1.0),  # full protection caps the gain at 1.05
    (1.0, 1.0, "relu", 0.9),  # gain below the cap is left alone: g_eff = 1.0
    (0.85, 0.7, "tanh", 0.6),  # everything at once
]


def test_modulation_matches_the_rule_per_replica():
    rng = np.random.RandomState(0)
    ws = [rng.randn(3, 2), rng.randn(3, 3), rng.randn(3, 3), rng.randn(2, 3)]
    bs = [rng.randn(3) * 0.5, rng.randn(3) * 0.5, rng.randn(3) * 0.5, rng.randn(2) * 0.5]
    x = rng.randn(64, 2) * 2
    net = tiny_net(len(STATES), ws, bs)
    for m, (g, d, a, p) in enumerate(STATES):
        net.set_modulation(gain=g, damping=d, activation=a, protection=p, index=[m])
    out = run(net, x)
    for m, (g, d, a, p) in enumerate(STATES):
        ref = numpy_forward(ws, bs, x, act=a, gain=g, damping=d, protection=p)
        np.testing.assert_allclose(out[m], ref, rtol=1e-5, atol=1e-5, err_msg=str(STATES[m]))
    # every modulation actually changes the pass (the check above could not pass vacuously)
    for m in range(1, len(STATES)):
        assert np.abs(out[m] - out[0]).max() > 1e-2, STATES[m]
    # reset_modulation: drug off (ReLU, gain 1, damping 1) but protection kept
    net.reset_modulation()
    out = run(net, x)
    for m, (_, _, _, p) in enumerate(STATES):
        np.testing.assert_allclose(out[m], numpy_forward(ws, bs, x, protection=p), rtol=1e-5, atol=1e-5)


def test_bias_and_gain_override():
    rng = np.random.RandomState(1)
    ws = [rng.randn(3, 2), rng.randn(3, 3), rng.randn(3, 3), rng.randn(2, 3)]
    bs = [rng.randn(3), rng.randn(3), rng.randn(3), rng.randn(2)]
    x = rng.randn(32, 2)
    net = tiny_net(2, ws, bs)
    net.set_modulation(gain=1.6, protection=0.5)
    b = torch.tensor([0.85, 0.7])
    out = run(net, x, bias=b)
    for m in range(2):
        ref = numpy_forward(ws, bs, x, gain=1.6, protection=0.5, bias=float(b[m]))
        np.testing.assert_allclose(out[m], ref, rtol=1e-5, atol=1e-5)
    # gain override (used for regrowth scores): gain 1.0 for this pass only
    out = run(net, x, gain=1.0)
    np.testing.assert_allclose(out[0], numpy_forward(ws, bs, x, gain=1.0, protection=0.5), rtol=1e-5, atol=1e-5)
    assert float(net.gain[0]) == pytest.approx(1.6)


def test_internal_noise_statistics():
    """Noise enters after the activation and before damping x gain, on hidden layers only.

    Layer 3 has zero weights and constant bias c, so h3 = (act(c) + sigma z) * scale - 0.15 p;
    the logits copy h3, so their mean and SD reveal where the noise enters.
    """
    c = np.array([0.8, -0.5, 0.3])
    ws = [np.ones((3, 2)), np.eye(3), np.zeros((3, 3)), np.vstack([np.eye(3), np.zeros((1, 3))])]
    bs = [np.zeros(3), np.zeros(3), c, np.zeros(4)]
    net = tiny_net(4, ws, bs, NetworkConfig(sizes=(2, 3, 3, 3, 4)))
    states = [
        (1.0, 1.0, "relu", 0.0, 0.5),
        (1.6, 1.0, "relu", 0.5, 0.5),
        (0.85, 0.7, "tanh", 0.0, 1.0),
        (1.25, 1.0, "relu", 0.0, 0.0),
    ]
    for m, (g, d, a, p, _) in enumerate(states):
        net.set_modulation(gain=g, damping=d, activation=a, protection=p, index=[m])
    sig = torch.tensor([s[-1] for s in states])
    n = 20_000
    out = run(net, np.zeros((n, 2)), sigma_int=sig, generators=net.generators("test"))
    for m, (g, d, a, p, s) in enumerate(states):
        g_eff = g if p == 0 else min(g, max(1.05, 1.05 + (1 - p) * (g - 1.05)))
        scale = d * g_eff
        act = np.tanh(c) if a == "tanh" else np.maximum(c, 0)
        np.testing.assert_allclose(out[m, :, :3].mean(0), act * scale - 0.15 * p, atol=0.03)
        if s > 0:
            np.testing.assert_allclose(out[m, :, :3].std(0), s * scale, rtol=0.03)
        else:
            assert out[m, :, :3].std(0).max() < 1e-6
        assert np.all(out[m, :, 3] == 0.0)  # never on the logits
    # noise is fresh every pass, and reproducible from the same seeded generators
    gens = net.generators("again")
    a1 = run(net, np.zeros((8, 2)), sigma_int=0.5, generators=gens)
    a2 = run(net, np.zeros((8, 2)), sigma_int=0.5, generators=gens)
    b1 = run(net, np.zeros((8, 2)), sigma_int=0.5, generators=net.generators("again"))
    assert not np.allclose(a1, a2)
    np.testing.assert_array_equal(a1, b1)


def test_default_init_is_pytorch_linear_per_replica():
    net = EnsembleMLP.init([3, 0], FULL)
    assert net.n_parameters() == 396_548
    assert [tuple(w.shape) for w in net.weights] == [(2, 512, 2), (2, 512, 512), (2, 256, 512), (2, 4, 256)]
    for m, s in enumerate([3, 0]):
        torch.manual_seed(s)
        ref = [nn.Linear(a, b) for a, b in zip(FULL.sizes[:-1], FULL.sizes[1:])]
        for i, lin in enumerate(ref):
            assert torch.equal(net.weights[i][m], lin.weight.detach())
            assert torch.equal(net.biases[i][m], lin.bias.detach())
    assert all(bool(mk.all()) for mk in net.masks)
    assert float(net.weight_sparsity()[0]) == 0.0


def test_clone_and_select_are_independent_copies():
    net = EnsembleMLP.init([0, 1, 2], TINY)
    c = net.clone()
    c.weights[0][0].fill_(7.0)
    c.masks[1][0].fill_(False)
    c.set_modulation(gain=2.0)
    c.meta[0]["seed"] = 99
    assert not torch.equal(net.weights[0][0], c.weights[0][0])
    assert bool(net.masks[1].all()) and float(net.gain.max()) == 1.0 and net.seeds == [0, 1, 2]
    s = net.select([2, 0, 2])
    assert s.seeds == [2, 0, 2]
    assert torch.equal(s.weights[1][0], net.weights[1][2]) and torch.equal(s.weights[1][1], net.weights[1][0])
    s.weights[1][0].zero_()
    assert not torch.equal(s.weights[1][2], s.weights[1][0])
    both = EnsembleMLP.concat([net.select([1]), net.select([0])])
    assert both.seeds == [1, 0] and torch.equal(both.biases[2][0], net.biases[2][1])


# --------------------------------------------------------------------------- sparse products
def test_sparse_layers_agree_with_dense_products():
    from pruneplast.operators import prune

    net = prune(EnsembleMLP.init([0, 1]), 0.95)
    plans = net.plans()
    assert all(p.all_sparse for p in plans)
    x = torch.randn(2, 50, 2, generator=torch.Generator().manual_seed(0))
    dense = [(type(p).dense(w.shape), (w, None), b) for p, w, b in zip(plans, net.weights, net.biases)]
    torch.testing.assert_close(net.forward(x), net.forward(x, layers=dense), rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------- live units (compact passes)
def _hand_masks():
    """One replica of 2 -> 4 -> 4 -> 3 -> 4 with every role of a unit (see the test below)."""
    m1 = torch.zeros(1, 4, 2, dtype=torch.bool)
    m1[0, 0, 0] = m1[0, 1, 1] = True  # layer-1 units 0, 1 see the input; 2, 3 do not
    m2 = torch.zeros(1, 4, 4, dtype=torch.bool)
    m2[0, 0, 0] = m2[0, 1, 2] = m2[0, 2, 1] = m2[0, 3, 3] = True
    m3 = torch.zeros(1, 3, 4, dtype=torch.bool)
    m3[0, 0, 0] = m3[0, 0, 1] = m3[0, 1, 3] = m3[0, 2, 2] = True
    m4 = torch.zeros(1, 4, 3, dtype=torch.bool)
    m4[0, :, 0] = m4[0, 1:3, 1] = True  # layer-3 unit 2 reaches no logit
    return [m1, m2, m3, m4]


def test_unit_roles_by_hand():
    from pruneplast.kernels.compact import unit_roles

    live, const = unit_roles(_hand_masks())
    # layer 1: 0 and 1 vary; 1 feeds only layer-2 unit 2, which feeds only layer-3 unit 2 (no logit)
    assert live[0][0].tolist() == [True, False, False, False]
    assert const[0][0].tolist() == [False, False, True, True]
    assert live[1][0].tolist() == [True, False, False, False]  # unit 2 varies but reaches nothing
    assert const[1][0].tolist() == [False, True, False, True]
    assert live[2][0].tolist() == [True, False, False]
    assert const[2][0].tolist() == [False, True, False]


def _hand_net():
    masks = _hand_masks()
    net = EnsembleMLP.init([0], NetworkConfig(sizes=(2, 4, 4, 3, 4)))
    net.masks = masks
    net.apply_masks()
    return net


@pytest.mark.parametrize(
    "mod",
    [{}, {"gain": 1.25, "protection": 1.0}, {"activation": "tanh", "damping": 0.7, "gain": 0.85, "protection": 0.6}],
)
def test_compact_pass_equals_full_pass(mod):
    """Live units multiplied, constant units folded into the bias: the same logits."""
    from pruneplast.config import RegrowConfig
    from pruneplast.operators import prune, regrow

    x = torch.randn(3, 40, 2, generator=torch.Generator().manual_seed(1))
    hand = _hand_net().set_modulation(**mod)
    nets = [hand]
    full = prune(EnsembleMLP.init([0, 1, 2], NetworkConfig(sizes=(2, 64, 64, 32, 4))), 0.9)
    half = full.clone()
    regrow(half, None, RegrowConfig(fraction=0.5, method="random"))
    nets += [full.set_modulation(**mod), half.set_modulation(**mod)]
    for net in nets:
        xs = x[: net.n_replicas]
        layers = net.layers(compact=True)
        torch.testing.assert_close(net.forward(xs, layers=layers), net.forward(xs), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(
            net.forward(xs, layers=layers, bias=torch.full((net.n_replicas,), 0.3)),
            net.forward(xs, bias=torch.full((net.n_replicas,), 0.3)),
            rtol=1e-5,
            atol=1e-6,
        )
    # with internal noise: the units that reach a logit, noise drawn for every unit as in the full pass
    for net in nets:
        xs = x[: net.n_replicas]
        outs = [
            net.forward(xs, sigma_int=0.7, generators=net.generators("t"), layers=layers)
            for layers in (net.layers(compact=True, noise=True), net.layers())
        ]
        torch.testing.assert_close(outs[0], outs[1], rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="without internal noise"):
        hand.forward(x[:1], layers=hand.layers(compact=True), sigma_int=0.5, generators=hand.generators("t"))
    with pytest.raises(ValueError, match="recorded activations need every unit"):
        hand.forward(x[:1], layers=hand.layers(compact=True, noise=True), record=[])


@pytest.mark.parametrize("regrown", [False, True])
def test_compact_layers_account_for_every_kept_weight(regrown):
    """Each kept weight is multiplied in a live block, folded from a constant unit, or left out
    because it leads to a unit that reaches no logit or comes from one; never two of these."""
    from pruneplast.config import RegrowConfig
    from pruneplast.kernels.compact import compact_plans, unit_roles
    from pruneplast.operators import prune, regrow

    net = prune(EnsembleMLP.init([0, 1, 2]), 0.95)
    if regrown:
        regrow(net, None, RegrowConfig(fraction=0.5, method="random"))
    live, const = unit_roles(net.masks)
    plans = compact_plans(net.masks)
    n = len(net.masks)
    for i, (p, mk) in enumerate(zip(plans, net.masks)):
        main = (
            set(p.main.positions()[1].tolist())
            if p.main.rows is not None or p.main.cols is not None
            else set(mk.reshape(-1).nonzero().squeeze(1).tolist())
        )
        fold = set(p.fold.full_kept.tolist()) if p.fold is not None else set()
        assert not main & fold
        matter_out = torch.ones(mk.shape[:2], dtype=torch.bool) if i == n - 1 else live[i] | const[i]
        matter_in = torch.ones(mk.shape[0], mk.shape[2], dtype=torch.bool) if i == 0 else live[i - 1] | const[i - 1]
        used = mk & matter_out.unsqueeze(2) & matter_in.unsqueeze(1)
        assert main | fold == set(used.reshape(-1).nonzero().squeeze(1).tolist())
        assert bool((mk.reshape(-1)[list(main | fold)]).all())
    # the big layer shrinks: ~10x at 95% (52 first-layer units see the input), less after random regrowth
    assert len(plans[1].main.positions()[1]) < int(net.masks[1].sum()) // (1.2 if regrown else 5)


@pytest.mark.parametrize("sparsity, regrown", [(0.0, False), (0.95, False), (0.95, True)])
def test_compact_write_back_puts_every_trained_weight_in_its_place(sparsity, regrown):
    """Cut out (``split``, copied as training copies them) and written back (``merge``), a compact
    layer restores exactly the kept weights it multiplies or folds, at their positions, and
    nothing else (a whole matrix of a dense network, blocks and folds of a pruned one)."""
    from pruneplast.config import RegrowConfig
    from pruneplast.kernels.compact import compact_plans, unit_roles
    from pruneplast.operators import prune, regrow

    net = EnsembleMLP.init([0, 1, 2])
    if sparsity:
        prune(net, sparsity)
    if regrown:
        regrow(net, None, RegrowConfig(fraction=0.5, method="random"))
    live, const = unit_roles(net.masks)
    n = len(net.masks)
    for i, (p, w, mk) in enumerate(zip(compact_plans(net.masks), net.weights, net.masks)):
        matter_out = torch.ones(mk.shape[:2], dtype=torch.bool) if i == n - 1 else live[i] | const[i]
        matter_in = torch.ones(mk.shape[0], mk.shape[2], dtype=torch.bool) if i == 0 else live[i - 1] | const[i - 1]
        used = mk & matter_out.unsqueeze(2) & matter_in.unsqueeze(1)
        out = torch.full_like(w, float("nan"))
        out[~used] = 0.0
        p.merge(out, *(None if t is None else t.clone() for t in p.split(w)))
        assert torch.equal(out, torch.where(used, w, 0.0))


def test_check_finite_names_the_bad_replicas_and_only_those():
    """The check sums each replica's weights first: a NaN or an inf makes the sum non-finite; finite
    weights whose sum overflows are tested entry by entry and pass."""
    net = EnsembleMLP.init([0, 1, 2, 3], SMALL_NET)
    with torch.no_grad():
        net.weights[1][0, 0, :2] = 3e38  # finite, but the sum overflows
        net.weights[2][1, 3, 0] = float("nan")
        net.biases[0][3, 5] = float("-inf")
    with pytest.raises(FloatingPointError, match=r"in 2 of 4 replicas \(seed 1, seed 3\)"):
        net.check_finite()
    with torch.no_grad():
        net.weights[2][1, 3, 0] = 0.0
        net.biases[0][3, 5] = 0.0
    net.check_finite()  # the overflowing sum alone raises nothing


def test_kept_counts_match_the_sum_of_the_mask():
    from pruneplast.kernels.layers import kept_counts

    g = torch.Generator().manual_seed(0)
    for shape in [(3, 7, 5), (2, 1, 1), (4, 300, 9)]:
        mk = torch.rand(shape, generator=g) < 0.3
        assert torch.equal(kept_counts(mk), mk.reshape(shape[0], -1).sum(1))
        assert kept_counts(mk).dtype == torch.int64
        assert torch.equal(kept_counts(mk.transpose(1, 2)), mk.reshape(shape[0], -1).sum(1))


def test_apply_masks_gives_the_bits_of_multiplying_by_the_mask():
    """Pruned weights become zero of their own sign, NaN stays NaN, kept weights keep their bits:
    each weight times its mask's 0.0 or 1.0, as torch's ``mul_`` gives it, in float32 and float64."""
    for dtype in (torch.float32, torch.float64):
        net = EnsembleMLP.init([0, 1], NetworkConfig(sizes=(2, 8, 8, 4)))
        net.weights = [w.to(dtype) for w in net.weights]
        g = torch.Generator().manual_seed(3)
        net.masks = [torch.rand(w.shape, generator=g) < 0.5 for w in net.weights]
        net.weights[1][0, 0, :4] = torch.tensor([float("nan"), float("inf"), -0.0, -2.0], dtype=dtype)
        net.masks[1][0, 0, :4] = torch.tensor([False, False, False, True])
        expected = [w.clone().mul_(m) for w, m in zip(net.weights, net.masks)]
        net.apply_masks()
        bits = torch.int32 if dtype == torch.float32 else torch.int64
        for w, e in zip(net.weights, expected):
            assert torch.equal(w.view(bits), e.view(bits))
        assert torch.isnan(net.weights[1][0, 0, 0]) and torch.isnan(net.weights[1][0, 0, 1])
        assert torch.signbit(net.weights[1][0, 0, 2]) and net.weights[1][0, 0, 3] == -2.0
