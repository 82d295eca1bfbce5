"""The fused training step of sparse replicas (on by default, :mod:`pruneplast.kernels.fused`) and its fallback.

Both paths are checked against a reference written with plain ``torch.nn`` and ``torch.optim.Adam``
(the model's rule by hand: activation, internal noise from each replica's stream, damping times the
capped gain, the protection shift). A replica's bits do not depend on which replicas share its
ensemble, on either path, also where sparse and dense replicas are trained together (they are then
split between the paths). The operator is compiled once per machine (about half a minute the first
time, then loaded from the build folder); without a compiler the tests that need it are skipped.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from conftest import SMALL_NET

from pruneplast import rng
from pruneplast.config import TaskConfig, TrainConfig
from pruneplast.data import EnsembleData
from pruneplast.kernels import fused
from pruneplast.network import EnsembleMLP
from pruneplast.operators import prune, prune_to, train

SEEDS = [3, 4, 5]
TASK = TaskConfig(n_train=300, n_standard=100, n_clean=100)  # 300: a short last batch
CFG = TrainConfig(epochs=2, lr=1e-3, batch_size=128)
#: per replica: activation, gain, damping, protection, learning rate
MODS = [("relu", 1.0, 1.0, 0.0, 1e-3), ("tanh", 1.3, 0.8, 0.5, 2e-3), ("relu", 1.2, 0.9, 1.0, 1e-3)]


@pytest.fixture(scope="module")
def compiled():
    """The operator, built once for the session; the tests skip where it cannot be built."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(fused.ENV, "1")
        mp.delenv(fused.NO_COMPILE_ENV, raising=False)
        why = fused.why_not_compiled()
        if why is not None:
            pytest.skip(f"the fused step cannot be built here: {why}")
        if fused.load() is None:
            pytest.skip("the fused step could not be built (see the warning line)")
    return fused.load()


@pytest.fixture
def use_fused(monkeypatch, compiled):
    monkeypatch.setenv(fused.ENV, "1")
    calls = []
    step = fused.FusedStep.__call__

    def counted(self, *args, **kwargs):
        calls.append(1)
        return step(self, *args, **kwargs)

    monkeypatch.setattr(fused.FusedStep, "__call__", counted)
    return calls


def modulate(net: EnsembleMLP, mods) -> EnsembleMLP:
    """Each replica's activation, gain, damping and protection from its row of ``mods`` (as MODS)."""
    return net.set_modulation(
        activation=[a for a, *_ in mods],
        gain=[g for _, g, *_ in mods],
        damping=[d for _, _, d, *_ in mods],
        protection=[p for *_, p, _ in mods],
    )


def sparse_net(mod: bool) -> tuple[EnsembleMLP, EnsembleData]:
    net = prune(EnsembleMLP.init(SEEDS, SMALL_NET), 0.95)
    if mod:
        modulate(net, MODS)
    return net, EnsembleData.build(SEEDS, TASK)


def reference(net: EnsembleMLP, data: EnsembleData, m: int, mod: bool, sigma: float, tag: str):
    """Replica m trained by plain torch: nn.Linear layers, explicit masks, torch.optim.Adam."""
    act, gain, damping, p, lr = MODS[m] if mod else ("relu", 1.0, 1.0, 0.0, CFG.lr)
    g_eff = gain if p == 0 else min(gain, max(1.05, 1.05 + (1 - p) * (gain - 1.05)))
    scale, shift = damping * g_eff, 0.15 * p
    lins = []
    for w, b in zip(net.weights, net.biases):
        lin = nn.Linear(w.shape[2], w.shape[1])
        with torch.no_grad():
            lin.weight.copy_(w[m])
            lin.bias.copy_(b[m])
        lins.append(lin)
    masks = [mk[m].clone() for mk in net.masks]
    opt = torch.optim.Adam([t for lin in lins for t in lin.parameters()], lr=lr)
    shuffle = rng.generator(net.seeds[m], tag, "shuffle")
    noise = rng.generator(net.seeds[m], tag, "noise")
    x, y = data.x["train"][m], data.y["train"][m]
    n = x.shape[0]
    losses = []
    for _ in range(CFG.epochs):
        perm = torch.randperm(n, generator=shuffle)
        for k in range(0, n, CFG.batch_size):
            idx = perm[k : k + CFG.batch_size]
            h = x[idx]
            for i, lin in enumerate(lins):
                h = lin(h)
                if i == len(lins) - 1:
                    break
                h = torch.tanh(h) if act == "tanh" else torch.relu(h)
                if sigma > 0:
                    h = h + sigma * torch.empty(len(idx), lin.out_features).normal_(generator=noise)
                h = h * scale - shift
            opt.zero_grad()
            loss = F.cross_entropy(h, y[idx])
            losses.append(float(loss.detach()))
            loss.backward()
            opt.step()
            with torch.no_grad():
                for lin, mk in zip(lins, masks):
                    lin.weight.mul_(mk)
    return lins, losses


@pytest.mark.parametrize("path", ["fused", "standard"])
@pytest.mark.parametrize("mod,sigma", [(False, 0.0), (True, 0.0), (True, 0.5)])
def test_training_matches_autograd_reference(request, monkeypatch, path, mod, sigma):
    """Both paths train each replica as plain torch does (ReLU and tanh, damping, capped gain,
    protection shift, one learning rate per replica, internal noise from the replica's stream)."""
    calls = request.getfixturevalue("use_fused") if path == "fused" else None
    if path == "standard":
        monkeypatch.setenv(fused.ENV, "0")
    net, data = sparse_net(mod)
    before = net.clone()
    lr = [r for *_, r in MODS] if mod else None
    train(net, data, CFG, tag="phase", sigma_int=sigma, lr=lr)
    if calls is not None:
        assert len(calls) == CFG.epochs * 3  # the fused step ran every mini-batch
    for m in range(len(SEEDS)):
        lins, _ = reference(before, data, m, mod, sigma, "phase")
        for i, lin in enumerate(lins):
            torch.testing.assert_close(net.weights[i][m], lin.weight.detach(), rtol=1e-4, atol=2e-5)
            torch.testing.assert_close(net.biases[i][m], lin.bias.detach(), rtol=1e-4, atol=2e-5)
        assert bool((net.weights[1][m][~net.masks[1][m]] == 0).all())
    assert not torch.equal(net.weights[1], before.weights[1])  # it trained


@pytest.mark.parametrize("sigma", [0.0, 0.5])
@pytest.mark.parametrize("batch", [128, 200, 7])
def test_fused_step_loss_and_gradients(compiled, sigma, batch):
    """One step: the loss of every replica and the gradient of every trainable entry, against
    autograd; for a batch of 128 samples (one block of vectors), 200 (a block, a shorter one and
    samples left over) and 7 (no whole vector)."""
    from pruneplast.kernels.fused import FusedStep

    net, data = sparse_net(True)
    assert data.x["train"].shape[1] >= batch
    x, y = data.x["train"][:, :batch], data.y["train"][:, :batch]
    noise = net.hidden_noise(batch, net.generators("t")) if sigma > 0 else None
    step = FusedStep(net, 1e-3, noise=sigma > 0, batch_size=batch)
    loss = step(x, y, sigma, noise)
    for m in range(len(SEEDS)):
        act, gain, damping, p, _ = MODS[m]
        g_eff = gain if p == 0 else min(gain, max(1.05, 1.05 + (1 - p) * (gain - 1.05)))
        ws = [(w[m] * mk[m]).double().requires_grad_(True) for w, mk in zip(net.weights, net.masks)]
        bs = [b[m].double().requires_grad_(True) for b in net.biases]
        h = x[m].double()
        for i, (w, b) in enumerate(zip(ws, bs)):
            h = h @ w.T + b
            if i < len(ws) - 1:
                h = torch.tanh(h) if act == "tanh" else torch.relu(h)
                if noise is not None:
                    h = h + sigma * noise[i][m].double()
                h = h * (damping * g_eff) - 0.15 * p
        ref = F.cross_entropy(h, y[m])
        expected = float(ref.detach())
        assert abs(float(loss[m]) - expected) <= 1e-6 * expected
        grads = torch.autograd.grad(ref, ws + bs)
        for i in range(len(ws)):
            per_w, per_b = ws[i].numel(), bs[i].numel()
            own_w = step.w_pos[i] // per_w == m
            own_b = step.b_pos[i] // per_b == m
            gw = grads[i].reshape(-1)[step.w_pos[i][own_w] - m * per_w]
            gb = grads[len(ws) + i].reshape(-1)[step.b_pos[i][own_b] - m * per_b]
            torch.testing.assert_close(step.grads[step.w_param[i][own_w]].double(), gw, rtol=1e-4, atol=1e-7)
            torch.testing.assert_close(step.grads[step.b_param[i][own_b]].double(), gb, rtol=1e-4, atol=1e-7)
            # every kept weight left out has no gradient (its unit reaches no logit)
            kept = net.masks[i][m].reshape(-1).clone()
            kept[step.w_pos[i][own_w] - m * per_w] = False
            assert bool((grads[i].reshape(-1)[kept] == 0).all())


@pytest.mark.parametrize("sigma", [0.0, 0.5])
def test_replica_alone_equals_inside_ensemble(use_fused, sigma):
    net, data = sparse_net(True)
    whole = net.clone()
    train(whole, data, CFG, tag="phase", sigma_int=sigma, lr=[r for *_, r in MODS])
    for m in range(len(SEEDS)):
        one = net.select([m])
        train(one, data.select([m]), CFG, tag="phase", sigma_int=sigma, lr=MODS[m][-1])
        for a, b in zip(whole.weights + whole.biases, one.weights + one.biases):
            assert torch.equal(a[m], b[0])


def test_threads_share_the_replicas_without_changing_a_bit(use_fused):
    """Each replica is one task of torch's thread pool: two threads give the one-thread result."""
    net, data = sparse_net(True)
    runs = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        out = net.clone()
        train(out, data, CFG, tag="phase", sigma_int=0.5, lr=[r for *_, r in MODS])
        runs.append(out)
    torch.set_num_threads(1)
    for a, b in zip(runs[0].weights + runs[0].biases, runs[1].weights + runs[1].biases):
        assert torch.equal(a, b)


def test_dense_phases_take_the_standard_path(use_fused):
    """Only phases the engine multiplies as CSR everywhere are fused; the others take the standard
    path, with the operator's pointwise kernels (their results against the path without them:
    tests/kernels/test_pointwise.py)."""
    net = prune(EnsembleMLP.init(SEEDS, SMALL_NET), 0.7)
    trained = train(net.clone(), EnsembleData.build(SEEDS, TASK), CFG, tag="phase")
    assert not use_fused
    assert not torch.equal(trained.weights[1], net.weights[1])


def test_fallback_without_compiling_warns_once(monkeypatch, capsys):
    """``PRUNEPLAST_NO_COMPILE=1``: one warning line, then the standard path, bit for bit."""
    net, data = sparse_net(False)
    monkeypatch.setenv(fused.ENV, "0")
    ref = net.clone()
    train(ref, data, CFG, tag="phase")
    monkeypatch.setattr(fused, "_loaded", {})
    monkeypatch.setenv(fused.ENV, "1")
    monkeypatch.setenv(fused.NO_COMPILE_ENV, "1")
    outs = [net.clone(), net.clone()]
    for out in outs:
        train(out, data, CFG, tag="phase")
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "PRUNEPLAST_NO_COMPILE=1" in err[0] and "standard path" in err[0]
    for out in outs:
        for x, y in zip(out.weights + out.biases, ref.weights + ref.biases):
            assert torch.equal(x, y)
    assert fused.cache_tag() == ""  # fallen back: the standard path's cache keys


@pytest.mark.parametrize("failure", ["no compiler", "compiler fails"])
def test_a_machine_that_cannot_build_falls_back_with_one_line(monkeypatch, capsys, tmp_path, failure):
    """No compiler on the path, or a compiler whose build fails: one warning line naming why, then
    the standard path, bit for bit."""
    import torch.utils.cpp_extension as ext

    net, data = sparse_net(True)
    monkeypatch.setenv(fused.ENV, "0")
    ref = net.clone()
    train(ref, data, CFG, tag="phase", sigma_int=0.5)
    monkeypatch.setattr(fused, "_loaded", {})
    monkeypatch.setenv(fused.ENV, "1")
    monkeypatch.delenv(fused.NO_COMPILE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # nothing built there yet
    if failure == "no compiler":
        monkeypatch.setenv("CXX", "no-such-compiler-on-this-machine")
        expected = "no C++ compiler (no-such-compiler-on-this-machine) was found"
    else:
        monkeypatch.setattr(fused, "why_not_compiled", lambda: None)

        def failing(*args, **kwargs):
            raise RuntimeError("Error building extension 'pruneplast_fused'\nc++: fatal error")

        monkeypatch.setattr(ext, "load", failing)
        expected = "could not be built"
    out = net.clone()
    train(out, data, CFG, tag="phase", sigma_int=0.5)
    train(net.clone(), data, CFG, tag="phase")
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0] and err[0].endswith("training takes the standard path"), err
    for x, y in zip(out.weights + out.biases, ref.weights + ref.biases):
        assert torch.equal(x, y)
    assert fused.cache_tag() == ""


def test_machine_facts_record_the_training_path(compiled, monkeypatch):
    """Runs with and without the fused step cannot be bitwise equal: the machine key tells them
    apart, the default (the switch unset) included, and so does a machine that cannot build it."""
    from pruneplast import machine

    monkeypatch.delenv(fused.ENV, raising=False)
    default = machine.key()
    assert default["sparse_training_step"].startswith("fused:")
    monkeypatch.setenv(fused.ENV, "1")
    assert machine.key()["sparse_training_step"] == default["sparse_training_step"]
    monkeypatch.setenv(fused.ENV, "0")
    off = machine.key()
    assert off != default and off["sparse_training_step"] == "standard"
    monkeypatch.delenv(fused.ENV)
    monkeypatch.setattr(fused, "_loaded", {})
    monkeypatch.setenv(fused.NO_COMPILE_ENV, "1")
    cannot = machine.key()  # the switch unset, but nothing built: the standard path
    assert cannot["sparse_training_step"] == "standard" and cannot != default


def test_cache_keys_tell_the_paths_apart(compiled, monkeypatch):
    from pruneplast.protocols.base import cache_key

    monkeypatch.setenv(fused.ENV, "0")
    standard = cache_key("state", 1)
    monkeypatch.delenv(fused.ENV)
    assert fused.cache_tag().startswith("fused:")
    default = cache_key("state", 1)
    assert default != standard
    monkeypatch.setenv(fused.ENV, "1")
    assert cache_key("state", 1) == default


def test_the_fused_step_is_the_default(compiled, monkeypatch):
    """The switch unset: a sparse phase trains with the fused step, bit for bit as with ``PRUNEPLAST_FUSED=1``."""
    net, data = sparse_net(True)
    a, b = net.clone(), net.clone()
    monkeypatch.setenv(fused.ENV, "1")
    train(a, data, CFG, tag="phase", sigma_int=0.5)
    monkeypatch.delenv(fused.ENV)
    assert fused.replicas(net.weights, net.masks, True) == [0, 1, 2]
    train(b, data, CFG, tag="phase", sigma_int=0.5)
    for x, y in zip(a.weights + a.biases, b.weights + b.biases):
        assert torch.equal(x, y)


def test_the_paths_differ_in_the_last_bits(compiled, monkeypatch):
    """``PRUNEPLAST_FUSED=0`` is another float path for sparse phases (the float-path test of the
    book relies on it): other bits, within the summation-order difference."""
    net, data = sparse_net(True)
    runs = []
    for switch in ("1", "0"):
        monkeypatch.setenv(fused.ENV, switch)
        runs.append(train(net.clone(), data, CFG, tag="phase", sigma_int=0.5))
    pairs = list(zip(runs[0].weights + runs[0].biases, runs[1].weights + runs[1].biases))
    assert not all(torch.equal(a, b) for a, b in pairs)
    assert max(float((a - b).abs().max()) for a, b in pairs) < 1e-5


#: a mixed ensemble: 95%-sparse replicas (fused) beside 47.5%-sparse ones (standard path)
MIXED = [0.95, 0.475, 0.95, 0.475]


def mixed_net() -> tuple[EnsembleMLP, EnsembleData]:
    seeds = [3, 4, 5, 6]
    net = EnsembleMLP.init(seeds, SMALL_NET)
    prune_to(net, torch.tensor(MIXED, dtype=torch.float64))
    modulate(net, MODS + MODS[:1])
    return net, EnsembleData.build(seeds, TASK)


@pytest.mark.parametrize("switch", ["default", "0"])
@pytest.mark.parametrize("sigma", [0.0, 0.5])
def test_a_replica_trained_alone_equals_it_inside_a_mixed_ensemble(compiled, monkeypatch, switch, sigma):
    """Sparse and dense replicas trained together: each replica's bits are those it gets alone (with
    its own noise, mini-batch order and learning rate), with the fused step on (the sparse replicas
    take it, the others the standard path) and off (all on the standard path)."""
    if switch == "0":
        monkeypatch.setenv(fused.ENV, "0")
    else:
        monkeypatch.delenv(fused.ENV, raising=False)
    net, data = mixed_net()
    lrs = [r for *_, r in MODS + MODS[:1]]
    assert fused.replicas(net.weights, net.masks, True) == ([] if switch == "0" else [0, 2])
    calls = []
    step = fused.FusedStep.__call__

    def counted(self, x, *args, **kwargs):
        calls.append(x.shape[0])
        return step(self, x, *args, **kwargs)

    monkeypatch.setattr(fused.FusedStep, "__call__", counted)
    whole = net.clone()
    gains = lambda epoch: 1.0 + 0.1 * epoch  # noqa: E731 - a schedule, set on every replica
    train(whole, data, CFG, tag="phase", sigma_int=sigma, lr=lrs, gain=gains)
    assert calls == ([] if switch == "0" else [2] * CFG.epochs * 3)  # the two sparse replicas, every batch
    assert torch.allclose(whole.gain, torch.full((4,), 1.1))
    for m in range(len(MIXED)):
        one = net.select([m])
        train(one, data.select([m]), CFG, tag="phase", sigma_int=sigma, lr=lrs[m], gain=gains)
        for a, b in zip(whole.weights + whole.biases, one.weights + one.biases):
            assert torch.equal(a[m], b[0]), (m, switch)
    for mk, w in zip(whole.masks, whole.weights):
        assert bool((w[~mk] == 0).all())


def test_a_built_operator_needs_no_compiler(compiled, monkeypatch):
    """Once built for this source, torch and processor, the operator is loaded without compiling."""
    monkeypatch.setattr(fused, "_loaded", {})
    monkeypatch.setenv("CXX", "no-such-compiler-on-this-machine")
    monkeypatch.delenv(fused.ENV, raising=False)
    assert fused.load() is not None and fused.path().startswith("fused:")


def test_concurrent_builds_compile_once(monkeypatch, tmp_path):
    """Processes (here threads, each with its own lock handle) that need the operator at the same
    time: one compiles, into a temporary folder renamed into place; the others wait and load it."""
    import threading
    import time

    import torch.utils.cpp_extension as ext

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    compiled_in = []

    def compile_once(name, sources, extra_cflags, build_directory, verbose):
        compiled_in.append(build_directory)
        time.sleep(0.3)
        (Path(build_directory) / f"{name}.so").write_text("built")
        return "compiled"

    monkeypatch.setattr(ext, "load", compile_once)
    monkeypatch.setattr(fused, "_import", lambda name, library: f"loaded {library.read_text()}")
    (fused.build_root() / ".x.999.tmp").mkdir(parents=True)  # what a killed build leaves
    got = []
    threads = [threading.Thread(target=lambda: got.append(fused._build("x"))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(compiled_in) == 1 and ".tmp" in compiled_in[0]
    assert sorted(got) == ["compiled", "loaded built", "loaded built"]
    assert sorted(p.name for p in fused.build_root().iterdir()) == ["x", "x.lock"]
    assert fused._build("x") == "loaded built"


@pytest.mark.parametrize("value", ["yes", "2", "true"])
def test_switch_values_are_checked(monkeypatch, value):
    net, data = sparse_net(False)
    monkeypatch.setenv(fused.ENV, value)
    with pytest.raises(ValueError, match="PRUNEPLAST_FUSED must be 0 or 1"):
        train(net, data, CFG, tag="phase")
