"""Stress conditions, the relapse challenge and the manic-risk proxies (methods sections 6, 7, 9).

The conditions are checked twice: their table against the methods' table, and their effect on a
network whose accuracy is known in closed form. That network passes the input through three
identity hidden layers (ReLU kept linear by an offset of 100, removed in the output bias) and
classifies by quadrant, so every noise source adds up on the two input coordinates and each
replica's accuracy is Phi((c + sign * d) / sigma) per coordinate, averaged over the labels.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import FULL, SMALL_NET
from scipy.stats import norm

from pruneplast.config import NetworkConfig, RegrowConfig, TaskConfig
from pruneplast.data import EnsembleData
from pruneplast.network import EnsembleMLP
from pruneplast.operators import prune, regrow, relapse_challenge
from pruneplast.stress import (
    CONDITIONS,
    MAIN_CONDITIONS,
    TOLERANCE_SIGMAS,
    Condition,
    accuracy,
    activation_magnitude,
    evaluate,
    manic_risk,
    structure,
    tolerance,
)

# Methods section 6: condition -> (test set, extra input noise SD, internal noise SD)
METHODS_TABLE = {
    "clean": ("clean", 0.0, 0.0),
    "standard": ("standard", 0.0, 0.0),
    "input_1.0": ("standard", 1.0, 0.0),
    "input_2.0": ("standard", 2.0, 0.0),
    "internal_mild": ("standard", 0.0, 0.3),
    "internal_moderate": ("standard", 0.0, 0.5),
    "internal_high": ("standard", 0.0, 1.0),
    "internal_severe": ("standard", 0.0, 1.5),
    "internal_extreme": ("standard", 0.0, 2.5),
    "combined": ("standard", 1.0, 0.5),
}


def test_conditions_table_matches_methods():
    for name, (split, input_sigma, sigma_int) in METHODS_TABLE.items():
        c = CONDITIONS[name]
        assert (c.split, c.input_sigma, c.sigma_int, c.biased) == (split, input_sigma, sigma_int, False), name
    b = CONDITIONS["biased"]  # section 9: standard set, N(0, 1) + b after each hidden layer
    assert (b.split, b.input_sigma, b.sigma_int, b.biased) == ("standard", 0.0, 1.0, True)
    assert set(MAIN_CONDITIONS) == set(METHODS_TABLE) - {"internal_extreme"}
    assert tuple(TOLERANCE_SIGMAS) == (0.0, 0.5, 1.0, 1.5, 2.5)


# --------------------------------------------------------------------------- closed-form network
CENTRE = 1.0  # small centres so that every condition moves the accuracy visibly
TASK = TaskConfig(n_train=10, n_standard=20_000, n_clean=1_000, centre=CENTRE)
SIGNS = np.array([[-1, -1], [1, 1], [-1, 1], [1, -1]])  # class centres' signs, labels 0..3
OFFSET = 100.0
# replicas: (gain, damping, protection)
STATES = [(1.0, 1.0, 0.0), (1.25, 1.0, 0.0), (1.6, 1.0, 0.5), (0.85, 0.7, 0.0), (1.0, 1.0, 0.6)]


def scale_shift(gain, damping, p):
    g_eff = gain if p == 0 else min(gain, max(1.05, 1.05 + (1 - p) * (gain - 1.05)))
    return damping * g_eff, 0.15 * p


def quadrant_net(states) -> EnsembleMLP:
    net = EnsembleMLP.init(list(range(len(states))), NetworkConfig(sizes=(2, 3, 3, 3, 4)))
    w4 = np.hstack([SIGNS, np.zeros((4, 1))])
    for m, (g, d, p) in enumerate(states):
        s, _ = scale_shift(g, d, p)
        net.weights[0][m] = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
        net.biases[0][m] = torch.tensor([OFFSET, OFFSET, 0.0])
        for i in (1, 2):
            net.weights[i][m] = torch.eye(3)
            net.biases[i][m] = 0.0
        net.weights[3][m] = torch.tensor(w4, dtype=torch.float32)
        net.biases[3][m] = torch.tensor(-w4 @ np.array([OFFSET * s**3, OFFSET * s**3, 0.0]), dtype=torch.float32)
        net.set_modulation(gain=g, damping=d, protection=p, index=[m])
    return net


def expected_accuracy(labels, state, input_sigma, sigma_int, bias=0.0, data_sigma=0.8):
    """Closed form: h3 / s^3 = x + 100 + n1 + n2/s + n3/s^2 + b(1 + 1/s + 1/s^2) - c(1/s + 1/s^2 + 1/s^3)."""
    s, c = scale_shift(*state)
    d = bias * (1 + 1 / s + 1 / s**2) - c * (1 / s + 1 / s**2 + 1 / s**3)
    sd = math.sqrt(data_sigma**2 + input_sigma**2 + sigma_int**2 * (1 + s**-2 + s**-4))
    if sd == 0:
        p_coord = (CENTRE + SIGNS[labels] * d > 0).astype(float)
    else:
        p_coord = norm.cdf((CENTRE + SIGNS[labels] * d) / sd)
    return 100.0 * float(np.prod(p_coord, axis=1).mean())


@pytest.fixture(scope="module")
def quadrant():
    data = EnsembleData.build([0], TASK).select([0] * len(STATES))
    # select keeps seed 0 for all; the nets' replicas are labelled 0..4, so relabel the data
    data = EnsembleData(tuple(range(len(STATES))), data.x, data.y)
    return quadrant_net(STATES), data


def test_every_condition_moves_accuracy_as_its_sigmas_predict(quadrant):
    net, data = quadrant
    labels = data.y["standard"][0].numpy()
    df = evaluate(net, data, conditions=tuple(METHODS_TABLE))
    assert len(df) == len(STATES) * len(METHODS_TABLE)
    got = df.set_index(["seed", "condition"])["value"]
    for name, (split, s_in, s_int) in METHODS_TABLE.items():
        for m, state in enumerate(STATES):
            if split == "clean":
                exp = expected_accuracy(data.y["clean"][0].numpy(), state, 0.0, 0.0, data_sigma=0.0)
            else:
                exp = expected_accuracy(labels, state, s_in, s_int)
            assert got[(m, name)] == pytest.approx(exp, abs=1.5), (name, state)
    # the sigmas are told apart: neighbouring levels differ by far more than the tolerance
    base = got.xs(0, level="seed")
    assert base["internal_moderate"] - base["internal_high"] > 5
    assert base["standard"] - base["internal_mild"] > 5


def test_tolerance_curve_uses_the_graded_sigmas(quadrant):
    net, data = quadrant
    labels = data.y["standard"][0].numpy()
    df = tolerance(net, data)
    got = df.set_index(["seed", "condition"])["value"]
    assert sorted(df.condition.unique()) == sorted(f"sigma_{s:g}" for s in TOLERANCE_SIGMAS)
    for s_int in TOLERANCE_SIGMAS:
        for m, state in enumerate(STATES):
            assert got[(m, f"sigma_{s_int:g}")] == pytest.approx(expected_accuracy(labels, state, 0.0, s_int), abs=1.5)


def test_biased_stress_uses_bias_one_minus_03p(quadrant):
    net, data = quadrant
    labels = data.y["standard"][0].numpy()
    acc = accuracy(net, data, "biased").numpy()
    for m, (g, d, p) in enumerate(STATES):
        exp = expected_accuracy(labels, (g, d, p), 0.0, 1.0, bias=1.0 * (1 - 0.3 * p))
        assert acc[m] == pytest.approx(exp, abs=1.5), (g, d, p)
        if p > 0:  # the unprotected bias would be visibly different
            assert abs(expected_accuracy(labels, (g, d, p), 0.0, 1.0, bias=1.0) - exp) > 3  # > 2 x tolerance
    # the bias parameter scales b
    acc2 = accuracy(net, data, "biased", bias=0.5).numpy()
    for m, (g, d, p) in enumerate(STATES):
        exp = expected_accuracy(labels, (g, d, p), 0.0, 1.0, bias=0.5 * (1 - 0.3 * p))
        assert acc2[m] == pytest.approx(exp, abs=1.5)
    # and it is what manic_risk reports
    mr = manic_risk(net, data).set_index(["seed", "metric"])["value"]
    for m in range(len(STATES)):
        assert mr[(m, "accuracy")] == pytest.approx(float(acc[m]))
        assert mr[(m, "gain")] == pytest.approx(STATES[m][0])


def test_noise_free_biased_condition_against_numpy():
    """A biased condition without noise is deterministic: compare with the hand rule in numpy."""
    from conftest import numpy_forward

    rng = np.random.RandomState(3)
    ws = [rng.randn(3, 2), rng.randn(3, 3), rng.randn(3, 3), rng.randn(4, 3)]
    bs = [rng.randn(3), rng.randn(3), rng.randn(3), rng.randn(4)]
    net = EnsembleMLP.init([0, 1, 2], NetworkConfig(sizes=(2, 3, 3, 3, 4)))
    for i in range(4):
        net.weights[i][:] = torch.tensor(ws[i], dtype=torch.float32)
        net.biases[i][:] = torch.tensor(bs[i], dtype=torch.float32)
    ps = [0.0, 0.5, 1.0]
    net.set_modulation(protection=ps, gain=1.3)
    data = EnsembleData.build([0, 1, 2], TaskConfig(n_train=10, n_standard=3000, n_clean=10))
    acc = accuracy(net, data, Condition("biased_quiet", sigma_int=0.0, biased=True), bias=2.0).numpy()
    for m, p in enumerate(ps):
        x, y = data.x["standard"][m].double().numpy(), data.y["standard"][m].numpy()
        ref = numpy_forward(ws, bs, x, gain=1.3, protection=p, bias=2.0 * (1 - 0.3 * p))
        assert acc[m] == pytest.approx(100 * (ref.argmax(1) == y).mean(), abs=0.05)


def test_activation_magnitude_against_numpy():
    rng = np.random.RandomState(4)
    ws = [rng.randn(3, 2), rng.randn(3, 3), rng.randn(3, 3), rng.randn(4, 3)]
    bs = [rng.randn(3), rng.randn(3), rng.randn(3), rng.randn(4)]
    net = EnsembleMLP.init([0, 1], NetworkConfig(sizes=(2, 3, 3, 3, 4)))
    for i in range(4):
        net.weights[i][:] = torch.tensor(ws[i], dtype=torch.float32)
        net.biases[i][:] = torch.tensor(bs[i], dtype=torch.float32)
    states = [(1.6, 1.0, "relu"), (0.85, 0.7, "tanh")]
    for m, (g, d, a) in enumerate(states):
        net.set_modulation(gain=g, damping=d, activation=a, index=[m])
    data = EnsembleData.build([0, 1], TaskConfig(n_train=10, n_standard=2500, n_clean=10))
    got = activation_magnitude(net, data, batch_size=1000).numpy()
    for m, (g, d, a) in enumerate(states):
        x = data.x["standard"][m].double().numpy()
        per_batch = []
        for start in range(0, 2500, 1000):
            h, layers = x[start : start + 1000], []
            for w, b in zip(ws[:3], bs[:3]):
                z = h @ w.T + b
                h = (np.tanh(z) if a == "tanh" else np.maximum(z, 0)) * d * g
                layers.append(np.abs(h).mean())
            per_batch.append(layers)
        assert got[m] == pytest.approx(np.mean(per_batch), rel=1e-5)


def test_evaluation_is_tidy_and_reproducible(quadrant):
    net, data = quadrant
    a = evaluate(net, data, conditions=("standard", "combined"), extra={"stage": "x"})
    b = evaluate(net, data, conditions=("standard", "combined"), extra={"stage": "x"})
    assert {"seed", "condition", "metric", "value", "stage"} <= set(a.columns)
    assert len(a) == 2 * len(STATES) and set(a.metric) == {"accuracy"}
    assert a.equals(b)  # noise streams are seeded by replica and condition


# --------------------------------------------------------------------------- relapse challenge
def layer_sparsity(net, m=0):
    return [1 - float(mk[m].sum()) / mk[m].numel() for mk in net.masks]


def test_relapse_challenge_from_95_percent_hits_97(full_net):
    net = prune(full_net.clone(), 0.95)
    before = [w.clone() for w in net.weights]
    old = [mk.clone() for mk in net.masks]
    s = 1 - sum(int(mk.sum()) for mk in old) / 395_264
    target = relapse_challenge(net)
    assert float(target[0]) == pytest.approx(min(s + 0.4 * (1 - s), 0.99), abs=1e-12)
    assert float(target[0]) == pytest.approx(0.97, abs=1e-4)
    for i, n in enumerate((1024, 262_144, 131_072, 1024)):
        a = before[i][0].abs().double().numpy()  # existing zeros included in the quantile
        np.testing.assert_array_equal(
            net.masks[i][0].numpy(), (a >= np.quantile(a, float(target[0]))) & old[i][0].numpy()
        )
        assert abs(layer_sparsity(net)[i] - float(target[0])) <= 1.0 / n + 1e-12
    assert round(100 * float(net.weight_sparsity()[0]), 1) == 97.0


def test_relapse_challenge_per_replica_targets_and_cap():
    net = EnsembleMLP.init([0, 1, 2], SMALL_NET)
    # replica 0 at 50%, replica 1 at 95% then 50% regrowth (47.5%), replica 2 at 99%
    a = prune(net.select([0]), 0.5)
    b = prune(net.select([1]), 0.95)
    regrow(b, None, RegrowConfig(fraction=0.5, method="random"))
    c = prune(net.select([2]), 0.99)
    ens = EnsembleMLP.concat([a, b, c])
    total = sum(mk[0].numel() for mk in ens.masks)
    s = np.array([1 - sum(int(mk[m].sum()) for mk in ens.masks) / total for m in range(3)])
    before = [w.clone() for w in ens.weights]
    target = relapse_challenge(ens).numpy()
    np.testing.assert_allclose(target, np.minimum(s + 0.4 * (1 - s), 0.99), atol=1e-12)
    assert target[2] == pytest.approx(0.99)  # capped
    for m in range(3):
        for i in range(4):
            w = before[i][m].abs().double().numpy()
            np.testing.assert_array_equal(ens.masks[i][m].numpy(), w >= np.quantile(w, target[m]))
            assert abs(layer_sparsity(ens, m)[i] - target[m]) <= 1.0 / w.size + 1e-12


def test_structure_reports_sparsities_and_gain():
    net = prune(EnsembleMLP.init([0, 1], FULL), 0.95)
    net.set_modulation(gain=[1.25, 1.6])
    s = structure(net).set_index(["seed", "condition", "metric"])["value"]
    for m in (0, 1):
        assert s[(m, "-", "weight_sparsity")] == pytest.approx(100 * (1 - 19_766 / 395_264))
        assert s[(m, "-", "parameter_sparsity")] == pytest.approx(100 * (1 - 21_050 / 396_548))
    assert s[(0, "-", "gain")] == pytest.approx(1.25) and s[(1, "-", "gain")] == pytest.approx(1.6)


# --------------------------------------------------------------------------- grouped evaluation
def test_grouped_evaluation_equals_each_replica_alone():
    """A large mixed ensemble is evaluated in groups; every replica's result is what it gets alone."""
    from pruneplast.stress import EVAL_GROUP, eval_groups

    seeds = list(range(2 * EVAL_GROUP + 3))
    net = EnsembleMLP.init(seeds, SMALL_NET)
    sparse = [s for s in seeds if s % 3 == 0]
    dense = [s for s in seeds if s % 3 != 0]
    half, most = net.select(dense), net.select(sparse)
    prune(half, 0.475)
    prune(most, 0.95)
    mixed = EnsembleMLP.concat([half, most]).select(
        [int(i) for i in torch.randperm(len(seeds), generator=torch.Generator().manual_seed(0))]
    )
    mixed.set_modulation(
        gain=[1.0 + 0.05 * (i % 4) for i in range(len(seeds))], protection=[0.1 * (i % 5) for i in range(len(seeds))]
    )
    mixed.set_modulation(activation="tanh", damping=0.7, index=[0, 5])
    data = EnsembleData.build(mixed.seeds, TaskConfig(n_train=64, n_standard=1500, n_clean=200))
    groups = eval_groups(mixed)
    assert groups is not None and sorted(i for g in groups for i in g) == list(range(len(seeds)))
    assert max(len(g) for g in groups) <= EVAL_GROUP
    kinds = [{tuple(bool(r in p.sparse_ids.tolist()) for p in mixed.plans()) for r in g} for g in groups]
    assert all(len(k) == 1 for k in kinds)  # no group mixes dense and sparse products
    for cond in ("clean", "combined", "biased"):
        together = accuracy(mixed, data, cond)
        alone = torch.cat([accuracy(mixed.select([r]), data.select([r]), cond) for r in range(len(seeds))])
        assert torch.equal(together, alone), cond
    mag = activation_magnitude(mixed, data)
    mag_alone = torch.cat([activation_magnitude(mixed.select([r]), data.select([r])) for r in range(len(seeds))])
    assert torch.allclose(mag, mag_alone, rtol=1e-6)
    assert eval_groups(half.select(range(EVAL_GROUP))) is None  # one kind, one group: no copies


def test_protection_grid_shares_noise_and_equals_separate_tests(quadrant):
    net, data = quadrant
    grid = [0.0, 0.5, [0.1 * (i + 1) for i in range(net.n_replicas)], 1.0]
    together = accuracy(net, data, "biased", protections=grid)
    assert together.shape == (len(grid), net.n_replicas)
    for row, p in zip(together, grid):
        alone = accuracy(net.clone().set_modulation(protection=p), data, "biased")
        assert torch.equal(row, alone)
    # the network's own protection is left as it was
    assert torch.equal(accuracy(net, data, "biased", protections=[net.protection]), accuracy(net, data, "biased")[None])
    with pytest.raises(ValueError, match="protection"):
        accuracy(net, data, "biased", protections=[1.5])
    with pytest.raises(ValueError, match="one per replica"):
        accuracy(net, data, "biased", protections=[[0.1] * (net.n_replicas + 1)])


def test_regrowth_selectivity_tells_gradient_from_random_regrowth():
    from conftest import SMALL_TASK, small_trained

    from pruneplast.config import RegrowConfig
    from pruneplast.operators import regrow
    from pruneplast.stress import regrowth_selectivity

    net, data = small_trained(SMALL_TASK, epochs=2)
    shares = {}
    for method in ("gradient", "random"):
        before = net.clone()
        after = net.clone()
        cfg = RegrowConfig(fraction=0.3, method=method)
        grown = regrow(after, data, cfg, tag="regrow")
        df = regrowth_selectivity(before, grown, data, cfg, tag="regrow", extra={"arm": method})
        assert list(df.seed) == [0, 1] and set(df.metric) == {"regrowth_selectivity"}
        shares[method] = df.value.to_numpy()
    assert np.allclose(shares["gradient"], 100.0, atol=1e-9)
    # random positions capture far less of the gradient mass than the top 30% of positions do
    assert (shares["random"] < 60).all(), shares["random"]
    nothing = regrowth_selectivity(
        net, [torch.zeros_like(m) for m in net.masks], data, RegrowConfig(fraction=0.3), extra={"arm": "none"}
    )
    assert nothing.empty and "value" in nothing.columns


def test_regrowth_selectivity_is_the_rounded_exact_sum_on_any_thread_count(full_net):
    """Per layer, the sums are the exact sums of the scores rounded once (an independent sum of
    fractions), so the share is the same, bit for bit, on one thread and on two."""
    from fractions import Fraction

    from pruneplast import parallel
    from pruneplast.operators import gradient_scores
    from pruneplast.stress import regrowth_selectivity

    before = prune(full_net.clone(), 0.95)
    data = EnsembleData.build([0], TaskConfig(n_train=256, n_standard=100, n_clean=100))
    cfg = RegrowConfig(fraction=0.5, method="random", score_batches=2)
    grown = regrow(before.clone(), data, cfg, tag="regrow")
    values = []
    for n in (1, 2):
        with parallel.threads(n):
            values.append(regrowth_selectivity(before, grown, data, cfg, tag="regrow").value.tolist())
    assert values[0] == values[1]
    hit = total = 0.0
    for s, m, g in zip(gradient_scores(before, data, cfg, "regrow"), before.masks, grown):
        k = int(g[0].sum())
        if k:
            hit += float(sum(map(Fraction, s[0][g[0]].tolist())))
            total += float(sum(map(Fraction, torch.topk(s[0][~m[0]], k).values.tolist())))
    assert values[0] == [100 * hit / total]
