"""Pruning, regrowth and masked training (methods sections 3, 4, 5), against independent references.

References: ``numpy.quantile`` for thresholds, the published kept-weight counts, plain
``nn.Sequential`` + ``torch.optim.Adam`` for training, and a per-replica brute-force |grad|
accumulation followed by a top-k for gradient-guided regrowth.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from conftest import SMALL_NET, SMALL_TASK, linears, reference_module
from scipy import stats

from pruneplast import rng
from pruneplast.config import PruneConfig, RegrowConfig, TaskConfig, TrainConfig
from pruneplast.data import EnsembleData
from pruneplast.network import EnsembleMLP
from pruneplast.operators import gradient_scores, prune, regrow, train
from pruneplast.stress import evaluate, manic_risk, structure

LAYER_SIZES = (1_024, 262_144, 131_072, 1_024)
KEPT_95 = (52, 13_108, 6_554, 52)  # published counts at 95% per layer
RESTORED = (486, 124_518, 62_259, 486)  # weights reinstated by 50% regrowth from 95%


def kept(net: EnsembleMLP, m: int = 0) -> tuple[int, ...]:
    return tuple(int(mk[m].sum()) for mk in net.masks)


def absw(net: EnsembleMLP, i: int, m: int = 0) -> np.ndarray:
    return net.weights[i][m].abs().double().numpy()


# --------------------------------------------------------------------------- pruning
def test_95_percent_keeps_the_published_counts(full_net):
    net = prune(full_net.clone(), 0.95)
    assert kept(net) == KEPT_95
    # the quantile rule with distinct magnitudes keeps n - floor(0.95 (n - 1)) - 1 per layer
    assert KEPT_95 == tuple(n - math.floor(0.95 * (n - 1)) - 1 for n in LAYER_SIZES)
    assert round(100 * float(net.weight_sparsity()[0]), 1) == 95.0
    assert round(100 * float(net.parameter_sparsity()[0]), 1) == 94.7
    assert 100 * float(net.weight_sparsity()[0]) == pytest.approx(100 * (1 - sum(KEPT_95) / 395_264))
    assert 100 * float(net.parameter_sparsity()[0]) == pytest.approx(100 * (1 - (sum(KEPT_95) + 1_284) / 396_548))
    s = structure(net).set_index(["condition", "metric"])["value"]
    assert round(s[("-", "weight_sparsity")], 1) == 95.0
    assert round(s[("-", "parameter_sparsity")], 1) == 94.7
    assert tuple(int(s[(f"layer_{i}", "kept_weights")]) for i in range(1, 5)) == KEPT_95
    # pruned weights are exactly zero, kept ones untouched, biases never pruned
    for i in range(4):
        w, w0, mk = net.weights[i][0], full_net.weights[i][0], net.masks[i][0]
        assert bool((w[~mk] == 0).all()) and torch.equal(w[mk], w0[mk])
        assert torch.equal(net.biases[i], full_net.biases[i])


@pytest.mark.parametrize("method", ["random", "gradient"])
def test_half_regrowth_restores_the_published_counts(full_net, score_data, method):
    net = prune(full_net.clone(), 0.95)
    grown = regrow(net, score_data.select([0]), RegrowConfig(fraction=0.5, method=method))
    assert tuple(int(g.sum()) for g in grown) == RESTORED
    assert kept(net) == tuple(k + r for k, r in zip(KEPT_95, RESTORED))
    assert RESTORED == tuple((n - k) // 2 for k, n in zip(KEPT_95, LAYER_SIZES))  # floor(0.5 n_pruned)
    assert sum(RESTORED) == 187_749
    assert round(100 * float(net.weight_sparsity()[0]), 1) == 47.5
    assert round(100 * float(net.parameter_sparsity()[0]), 1) == 47.3


def test_global_scope_uses_one_threshold(full_net):
    net = prune(full_net.clone(), PruneConfig(sparsity=0.95, scope="global"))
    allw = np.concatenate([absw(full_net, i).ravel() for i in range(4)])
    thr = np.quantile(allw, 0.95)
    n = allw.size
    assert sum(kept(net)) == n - math.floor(0.95 * (n - 1)) - 1 == 19_764
    for i in range(4):
        np.testing.assert_array_equal(net.masks[i][0].numpy(), absw(full_net, i) >= thr)
    # one threshold, not four: the per-layer shares differ from 5% (the input layer's weights
    # are larger, so it keeps far more than 5%)
    assert kept(net) != KEPT_95
    assert kept(net)[0] / 1024 > 0.2


@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.5, 0.9, 0.93, 0.99])
def test_threshold_is_numpy_linear_quantile_per_layer(sparsity):
    net = EnsembleMLP.init([0, 5], SMALL_NET)
    before = [w.clone() for w in net.weights]
    prune(net, sparsity)
    for i in range(4):
        for m in range(2):
            a = before[i][m].abs().double().numpy()
            thr = np.quantile(a, sparsity, method="linear")
            np.testing.assert_array_equal(net.masks[i][m].numpy(), a >= thr)


def test_masks_only_shrink_and_quantile_counts_existing_zeros():
    net = EnsembleMLP.init([1], SMALL_NET)
    prune(net, 0.5)
    m50 = [mk.clone() for mk in net.masks]
    prune(net, 0.3)  # the 0.3-quantile of |W| with half zeros is 0: nothing more is pruned
    assert all(torch.equal(a, b) for a, b in zip(m50, net.masks))
    w50 = [w.clone() for w in net.weights]
    prune(net, 0.8)
    for i in range(4):
        a = w50[i][0].abs().double().numpy()  # zeros included
        expect = (a >= np.quantile(a, 0.8)) & m50[i][0].numpy()
        np.testing.assert_array_equal(net.masks[i][0].numpy(), expect)
        assert not bool((net.masks[i] & ~m50[i]).any())
        assert bool((net.weights[i][~net.masks[i]] == 0).all())


# --------------------------------------------------------------------------- regrowth
def brute_force_scores(net: EnsembleMLP, data: EnsembleData, m: int, tag="regrow", n_batches=30, bsz=128):
    """Sum of |dL/dW| at pruned positions over the first 30 shuffled mini-batches, replica m alone.

    A plain nn.Sequential with explicit zeros at pruned positions, gain 1, no noise.
    """
    model = reference_module(net, m)
    perm = torch.randperm(data.x["train"].shape[1], generator=rng.generator(net.seeds[m], tag, "scores"))
    scores = [torch.zeros_like(w[m]) for w in net.weights]
    for k in range(n_batches):
        idx = perm[k * bsz : (k + 1) * bsz]
        model.zero_grad()
        F.cross_entropy(model(data.x["train"][m][idx]), data.y["train"][m][idx]).backward()
        for s, lin, mk in zip(scores, linears(model), net.masks):
            s += lin.weight.grad.abs() * (~mk[m])
    return scores


def assert_top_k(grown: torch.Tensor, score: torch.Tensor, pruned: torch.Tensor, k: int, rtol=1e-4) -> bool:
    """``grown`` is the top-k of ``score`` among ``pruned``; exact unless scores tie at the k-th.

    Returns True when the comparison was exact (a clear gap at the boundary).
    """
    assert not bool((grown & ~pruned).any()), "grew a kept position"
    assert int(grown.sum()) == k
    vals = score[pruned].sort(descending=True).values
    vk = float(vals[k - 1])
    nxt = float(vals[k]) if k < vals.numel() else -math.inf
    tol = rtol * max(abs(vk), 1e-12)
    if vk - nxt > 2 * tol:
        assert torch.equal(grown, pruned & (score >= vk - tol))
        return True
    assert bool(grown[pruned & (score > vk + tol)].all())
    assert not bool(grown[pruned & (score < vk - tol)].any())
    return False


@pytest.fixture(scope="module")
def pruned_small(score_data):
    net = EnsembleMLP.init([0, 1], SMALL_NET)
    train(net, score_data, TrainConfig(epochs=1), tag="baseline")
    return prune(net, 0.9)


def test_gradient_scores_match_brute_force(pruned_small, score_data):
    net = pruned_small.clone()
    net.set_modulation(gain=1.25)  # scores must be computed at gain 1.0
    scores = gradient_scores(net, score_data, RegrowConfig())
    for m in range(2):
        ref = brute_force_scores(net, score_data, m)
        for i in range(4):
            torch.testing.assert_close(scores[i][m], ref[i], rtol=1e-4, atol=1e-7)
            assert bool((scores[i][m][net.masks[i][m]] == 0).all())
            assert float(ref[i].max()) > 0


@pytest.mark.parametrize("fraction", [0.2, 0.5])
def test_gradient_regrowth_picks_top_k_and_keeps_kept_weights(pruned_small, score_data, fraction):
    net = pruned_small.clone()
    before_w = [w.clone() for w in net.weights]
    before_m = [mk.clone() for mk in net.masks]
    grown = regrow(net, score_data, RegrowConfig(fraction=fraction, method="gradient"))
    exact = []
    new = []
    for m in range(2):
        ref = brute_force_scores(pruned_small, score_data, m)
        for i in range(4):
            pruned = ~before_m[i][m]
            k = max(1, math.floor(fraction * int(pruned.sum())))
            exact.append(assert_top_k(grown[i][m], ref[i], pruned, k))
            assert torch.equal(net.masks[i][m], before_m[i][m] | grown[i][m])
            kept_pos = before_m[i][m]
            assert torch.equal(net.weights[i][m][kept_pos], before_w[i][m][kept_pos])  # untouched
            assert bool((net.weights[i][m][~net.masks[i][m]] == 0).all())
            new.append(net.weights[i][m][grown[i][m]])
    if fraction == 0.2:  # scores mostly well separated at the boundary: exact sets were checked
        assert sum(exact) >= len(exact) - 2, exact
    new = torch.cat(new).double().numpy()
    assert new.size > 1000
    assert abs(new.std() - 0.03) < 0.003 and abs(new.mean()) < 0.003
    assert stats.kstest(new / 0.03, "norm").pvalue > 1e-3


def test_new_weights_scale_on_the_full_network(full_net):
    net = prune(full_net.clone(), 0.95)
    before = [w.clone() for w in net.weights]
    grown = regrow(net, None, RegrowConfig(fraction=0.5, method="random"))
    new = torch.cat([w[g] for w, g in zip(net.weights, grown)]).double().numpy()
    assert new.size == sum(RESTORED) == 187_749
    assert abs(new.std() - 0.03) < 5e-4  # SE of the SD is ~5e-5
    assert abs(new.mean()) < 5e-4
    assert 0.49 < (new > 0).mean() < 0.51  # random sign
    assert stats.kstest(new / 0.03, "norm").pvalue > 1e-3
    for w, w0, g in zip(net.weights, before, grown):
        assert torch.equal(w[~g], w0[~g])  # kept (and still-pruned) weights unchanged


def test_random_regrowth_picks_pruned_positions_with_right_count():
    net = prune(EnsembleMLP.init([0, 1, 2], SMALL_NET), 0.9)
    before_m = [mk.clone() for mk in net.masks]
    grown = regrow(net, None, RegrowConfig(fraction=0.3, method="random"))
    for i in range(4):
        for m in range(3):
            n_pruned = int((~before_m[i][m]).sum())
            assert int(grown[i][m].sum()) == max(1, math.floor(0.3 * n_pruned))
            assert not bool((grown[i][m] & before_m[i][m]).any())
        assert not torch.equal(grown[i][0], grown[i][1])  # each replica draws its own positions
    # tiny fractions still regrow at least one connection per layer
    net = prune(EnsembleMLP.init([0], SMALL_NET), 0.9)
    grown = regrow(net, None, RegrowConfig(fraction=0.001, method="random"))
    assert [int(g.sum()) for g in grown] == [max(1, math.floor(0.001 * int((~g).sum()))) for g in grown]
    assert [int(g.sum()) for g in grown][0] == 1


def test_random_regrowth_is_roughly_uniform_over_pruned_positions():
    net = prune(EnsembleMLP.init(list(range(40)), (SMALL_NET)), 0.9)
    grown = regrow(net, None, RegrowConfig(fraction=0.5, method="random"))
    # layer 2: every replica regrows half its pruned positions; the chosen positions' share
    # among pruned positions must be ~0.5 regardless of the weight's former magnitude
    g, pruned = grown[1], ~net.masks[1] | grown[1]
    share_per_row = g.sum(2).double() / pruned.sum(2).double()
    assert abs(float(share_per_row.mean()) - 0.5) < 0.01
    assert float(share_per_row.std()) < 0.15


# --------------------------------------------------------------------------- training
def test_masked_training_keeps_zeros_and_trains_biases():
    data = EnsembleData.build([0, 1], SMALL_TASK)
    net = prune(EnsembleMLP.init([0, 1], SMALL_NET), 0.8)
    before = net.clone()
    train(net, data, TrainConfig(epochs=2, lr=1e-3))
    for i in range(4):
        assert bool((net.weights[i][~net.masks[i]] == 0).all())
        assert torch.equal(net.masks[i], before.masks[i])
        assert not torch.equal(net.biases[i], before.biases[i])
        mk = net.masks[i]
        assert not torch.equal(net.weights[i][mk], before.weights[i][mk])
    assert bool((net.biases[-1] != before.biases[-1]).all())  # every output bias trained


@pytest.mark.parametrize("n_train,sparsity", [(512, 0.7), (600, 0.7), (600, 0.95)])  # 600: a short last batch
def test_training_matches_plain_torch_adam(n_train, sparsity):
    """At 70% every layer multiplies densely; at 95% the sparse products (CSR kernel) are used."""
    task = TaskConfig(n_train=n_train, n_standard=100, n_clean=100)
    data = EnsembleData.build([3, 4], task)
    net = prune(EnsembleMLP.init([3, 4], SMALL_NET), sparsity)
    assert all(p.all_sparse for p in net.plans()) == (sparsity > 0.9)
    cfg = TrainConfig(epochs=3, lr=1e-3, batch_size=128)
    refs = [reference_module(net, m) for m in range(2)]
    masks = [[mk[m].clone() for mk in net.masks] for m in range(2)]
    train(net, data, cfg, tag="phase")
    for m, model in enumerate(refs):
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        gen = rng.generator(net.seeds[m], "phase", "shuffle")
        x, y = data.x["train"][m], data.y["train"][m]
        for _ in range(cfg.epochs):
            perm = torch.randperm(n_train, generator=gen)
            for k in range(0, n_train, cfg.batch_size):
                idx = perm[k : k + cfg.batch_size]
                opt.zero_grad()
                F.cross_entropy(model(x[idx]), y[idx]).backward()
                opt.step()
                with torch.no_grad():
                    for lin, mk in zip(linears(model), masks[m]):
                        lin.weight.mul_(mk)
        for i, lin in enumerate(linears(model)):
            torch.testing.assert_close(net.weights[i][m], lin.weight.detach(), rtol=1e-4, atol=2e-5)
            torch.testing.assert_close(net.biases[i][m], lin.bias.detach(), rtol=1e-4, atol=2e-5)


# --------------------------------------------------------------------------- ensemble axis
ENSEMBLE_SEEDS = [0, 1, 2]
EVAL_CONDITIONS = ("clean", "standard", "input_2.0", "internal_high", "internal_extreme", "combined")


def pipeline(net: EnsembleMLP, data: EnsembleData):
    """Train, prune, regrow, train with a noise and gain schedule, then evaluate with noise."""
    train(net, data, TrainConfig(epochs=2, lr=1e-3), tag="baseline")
    prune(net, 0.9)
    regrow(net, data, RegrowConfig(fraction=0.3, method="gradient"))
    train(
        net,
        data,
        TrainConfig(epochs=2, lr=5e-4),
        tag="treatment",
        sigma_int=lambda e: 0.4 * (1 - e),
        gain=lambda e: 1.0 + 0.2 * e,
    )
    net.set_modulation(protection=0.5)
    frames = [evaluate(net, data, EVAL_CONDITIONS), manic_risk(net, data)]
    return net, pd.concat(frames, ignore_index=True).set_index(["seed", "condition", "metric"])["value"]


@pytest.fixture(scope="module")
def ensemble_run():
    data = EnsembleData.build(ENSEMBLE_SEEDS, SMALL_TASK)
    return pipeline(EnsembleMLP.init(ENSEMBLE_SEEDS, SMALL_NET), data)


def test_ensemble_equals_replicas_run_one_at_a_time(ensemble_run):
    net, res = ensemble_run
    for m, s in enumerate(ENSEMBLE_SEEDS):
        one, res1 = pipeline(EnsembleMLP.init([s], SMALL_NET), EnsembleData.build([s], SMALL_TASK))
        for i in range(4):
            assert torch.equal(net.masks[i][m], one.masks[i][0])
            torch.testing.assert_close(net.weights[i][m], one.weights[i][0], rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(net.biases[i][m], one.biases[i][0], rtol=1e-5, atol=1e-6)
        mine = res.xs(s, level="seed")
        assert len(mine) == len(res1) == len(EVAL_CONDITIONS) + 3
        # accuracies on 1,000 test points: allow at most one borderline argmax flip
        np.testing.assert_allclose(
            mine.sort_index().to_numpy(), res1.xs(s, level="seed").sort_index().to_numpy(), atol=0.1 + 1e-9
        )


@pytest.mark.slow
def test_a_dense_ensemble_trains_to_the_bits_of_its_parts():
    """Unpruned replicas (a baseline) train to the same bits in one ensemble as split into parts,
    however the parts fall: so a seed's cached baseline does not depend on the seeds trained with
    it, and a baseline can be split over worker processes. (Before the output biases were updated
    one replica at a time, replicas 4 and 9 of this run differed by up to 4e-9: their biases fell in
    Adam's scalar tail in one layout and its vector blocks in the other.)"""
    seeds = list(range(10))
    data = EnsembleData.build(seeds, TaskConfig(n_train=1280, n_standard=100, n_clean=100))
    cfg = TrainConfig(epochs=10, lr=1e-3, batch_size=128)
    whole = train(EnsembleMLP.init(seeds), data, cfg, progress=False)  # (tests run on one thread)
    parts = [train(EnsembleMLP.init(p), data.select(p), cfg, progress=False) for p in (seeds[:5], seeds[5:])]
    joined = EnsembleMLP.concat(parts)
    for a, b in zip(whole.weights + whole.biases, joined.weights + joined.biases):
        assert torch.equal(a, b)


def test_adam_updates_each_replica_in_one_piece():
    """Adam's pieces: a stacked tensor whose replicas' entries fall outside whole vector blocks is
    updated one slice a replica; a flat tensor of replicas' kept entries (CSR layers) one run a
    replica, never one piece an entry (which made a 95%-sparse step of the standard path take a
    second); the whole tensor where every run fills whole blocks, or replicas interleave."""
    from pruneplast.kernels.adam import Adam

    flat = torch.zeros(20 + 13 + 7)
    owner = torch.tensor([0] * 20 + [1] * 13 + [2] * 7)
    biases = torch.zeros(3, 4)
    blocks = torch.zeros(32)
    mixed = torch.zeros(6)
    opt = Adam(
        [flat, biases, blocks, mixed],
        1e-3,
        owners=[owner, None, torch.tensor([0] * 16 + [1] * 16), torch.tensor([0, 1, 0, 1, 0, 1])],
    )
    assert opt.pieces == [[20, 13, 7], [1, 1, 1], None, None]
    grads = [torch.randn(t.shape, generator=torch.Generator().manual_seed(i)) for i, t in enumerate(opt.params)]
    opt.step(grads)
    # each piece as its own tensor: the same update
    alone = torch.zeros(13)
    Adam([alone], 1e-3).step([grads[0][20:33].clone()])
    assert torch.equal(flat[20:33], alone)


@pytest.mark.slow
def test_a_sparse_step_of_the_standard_path_takes_milliseconds(monkeypatch):
    """Ten 95%-sparse replicas on the standard path: well under 100 ms a step (about 15 here)."""
    import time

    from pruneplast.kernels import fused

    monkeypatch.setenv(fused.ENV, "0")
    seeds = list(range(10))
    net = prune(EnsembleMLP.init(seeds), PruneConfig(sparsity=0.95))
    data = EnsembleData.build(seeds, TaskConfig(n_train=20 * 128, n_standard=100, n_clean=100))
    t = time.perf_counter()
    train(net, data, TrainConfig(epochs=1, lr=1e-3, batch_size=128), progress=False)
    assert (time.perf_counter() - t) / 20 < 0.1


def test_replicas_do_not_leak(ensemble_run):
    base_net, base_res = ensemble_run
    # (a) replica 1 gets other data (train and test sets)
    data = EnsembleData.build(ENSEMBLE_SEEDS, SMALL_TASK)
    other = EnsembleData.build([7], SMALL_TASK)
    for split in data.x:
        data.x[split][1] = other.x[split][0]
        data.y[split][1] = other.y[split][0]
    net_a, res_a = pipeline(EnsembleMLP.init(ENSEMBLE_SEEDS, SMALL_NET), data)
    # (b) replica 1 starts with a different mask
    net_b = EnsembleMLP.init(ENSEMBLE_SEEDS, SMALL_NET)
    gen = torch.Generator().manual_seed(0)
    for mk in net_b.masks:
        mk[1] &= torch.rand(mk[1].shape, generator=gen) < 0.5
    net_b.apply_masks()
    net_b, res_b = pipeline(net_b, EnsembleData.build(ENSEMBLE_SEEDS, SMALL_TASK))
    for net, res in ((net_a, res_a), (net_b, res_b)):
        for m in (0, 2):
            for i in range(4):
                assert torch.equal(net.masks[i][m], base_net.masks[i][m])
                torch.testing.assert_close(net.weights[i][m], base_net.weights[i][m], rtol=0, atol=1e-6)
            s = ENSEMBLE_SEEDS[m]
            np.testing.assert_allclose(
                res.xs(s, level="seed").to_numpy(), base_res.xs(s, level="seed").to_numpy(), atol=1e-9
            )
        # replica 1 itself did change: the comparison above is not vacuous
        assert not torch.allclose(net.weights[1][1], base_net.weights[1][1])


# --------------------------------------------------------------------------- live units
@pytest.mark.parametrize("regrown", [False, True])
@pytest.mark.parametrize(
    "mod",
    [{}, {"gain": 1.25, "protection": 1.0}, {"activation": "tanh", "damping": 0.7, "gain": 0.85, "protection": 1.0}],
)
def test_compact_training_equals_full_training(pruned_small, score_data, regrown, mod):
    """A noise-free phase on the live units only trains every weight as multiplying them all does.

    Weights whose unit reaches no logit are left out of the compact pass; their gradient is zero,
    so they stay exactly as they were in both.
    """
    from pruneplast.kernels.compact import unit_roles

    net = pruned_small.clone()
    if regrown:
        regrow(net, score_data, RegrowConfig(fraction=0.5))
    net.set_modulation(**mod)
    live, const = unit_roles(net.masks)
    assert int(const[0].sum()) > 0 and int((~(live[2] | const[2])).sum()) > 0  # both shortcuts are used
    data = score_data
    cfg = TrainConfig(epochs=2, lr=1e-3)
    a, b = net.clone(), net.clone()
    train(a, data, cfg, tag="phase")  # noise-free: compact by default
    train(b, data, cfg, tag="phase", compact=False)
    for i in range(4):
        torch.testing.assert_close(a.weights[i], b.weights[i], rtol=1e-4, atol=2e-5)
        torch.testing.assert_close(a.biases[i], b.biases[i], rtol=1e-4, atol=2e-5)
        assert bool((a.weights[i][~a.masks[i]] == 0).all())
    assert not torch.equal(a.weights[1], net.weights[1])  # it trained
    dead = ~(live[2] | const[2])  # last hidden layer's units that reach no logit: inputs untouched
    assert torch.equal(a.weights[2][dead], net.weights[2][dead]) and torch.equal(
        b.weights[2][dead], net.weights[2][dead]
    )


def test_compact_training_with_internal_noise_equals_full_training(pruned_small, score_data):
    """With noise every unit varies: only the units that reach no logit are left out, the noise is
    drawn for every unit as in the full pass, and the training is the same."""
    from pruneplast.kernels.compact import unit_roles

    net = pruned_small.clone().set_modulation(gain=1.3)
    live, const = unit_roles(net.masks, noise=True)
    assert all(int(c.sum()) == 0 for c in const) and int((~live[2]).sum()) > 0
    cfg = TrainConfig(epochs=2, lr=1e-3)
    sched = dict(sigma_int=lambda e: 0.5 * (1 - e), gain=lambda e: 1.0 + 0.3 * e)  # noisy, then noise-free
    a, b = net.clone(), net.clone()
    train(a, score_data, cfg, tag="phase", **sched)
    train(b, score_data, cfg, tag="phase", compact=False, **sched)
    for i in range(4):
        torch.testing.assert_close(a.weights[i], b.weights[i], rtol=1e-4, atol=2e-5)
        torch.testing.assert_close(a.biases[i], b.biases[i], rtol=1e-4, atol=2e-5)
    assert not torch.equal(a.weights[1], net.weights[1])


def test_compact_must_be_a_bool():
    data = EnsembleData.build([0], SMALL_TASK)
    net = prune(EnsembleMLP.init([0], SMALL_NET), 0.9)
    with pytest.raises(ValueError, match="compact must be True or False"):
        train(net, data, TrainConfig(epochs=1, lr=1e-3), compact="yes")
