"""Typed, frozen configuration for every protocol, with the studies' values as defaults.

Every dataclass validates itself at construction: an out-of-range or wrongly typed value raises
``ValueError`` naming the parameter and its allowed range, before any computation starts.
Defaults are the published protocol (see the book's Methods page); one comment per field.
"""

from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

ACTIVATIONS = ("relu", "tanh")
REGROWTH_METHODS = ("gradient", "random")
PRUNE_SCOPES = ("layer", "global")


# --------------------------------------------------------------------------- validators
def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_real(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def check_int(name: str, value: Any, minimum: int = 0, maximum: int | None = None) -> int:
    """An integer in [minimum, maximum]; else ``ValueError`` naming ``name`` and the range."""
    rng = f"[{minimum}, {maximum}]" if maximum is not None else f">= {minimum}"
    if not _is_int(value):
        raise ValueError(f"{name} must be an integer {rng}; got {value!r} ({type(value).__name__})")
    if value < minimum or (maximum is not None and value > maximum):
        raise ValueError(f"{name} must be an integer {rng}; got {value}")
    return int(value)


def check_real(
    name: str,
    value: Any,
    lo: float = -math.inf,
    hi: float = math.inf,
    lo_open: bool = False,
    hi_open: bool = False,
) -> float:
    """A finite real number in the interval [lo, hi] (open ends where asked)."""
    rng = f"{'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
    if not _is_real(value) or not math.isfinite(float(value)):
        raise ValueError(f"{name} must be a number in {rng}; got {value!r} ({type(value).__name__})")
    v = float(value)
    if v < lo or v > hi or (lo_open and v == lo) or (hi_open and v == hi):
        raise ValueError(f"{name} must be in {rng}; got {v}")
    return v


@dataclass(frozen=True)
class Range:
    """An allowed interval of one kind of value, shared by the engine's validation and the chapters'.

    The chapters' parameters (:mod:`pruneplast.chapters`, ``pruneplast list``, papermill and
    ``pruneplast run``) refer to these objects, and so do the engine's configurations, so a value
    the command line accepts is one the engine accepts.
    """

    lo: float
    hi: float = math.inf
    lo_open: bool = False
    hi_open: bool = False
    integer: bool = False

    def __str__(self) -> str:
        if self.integer:
            return f">= {int(self.lo)}" if math.isinf(self.hi) else f"[{int(self.lo)}, {int(self.hi)}]"
        return f"{'(' if self.lo_open else '['}{self.lo:g}, {self.hi:g}{')' if self.hi_open else ']'}"

    def check(self, name: str, value: Any):
        if self.integer:
            return check_int(name, value, int(self.lo), None if math.isinf(self.hi) else int(self.hi))
        return check_real(name, value, self.lo, self.hi, self.lo_open, self.hi_open)

    def check_list(self, name: str, value: Any) -> tuple:
        """A non-empty list of values in the range."""
        what = "integers" if self.integer else "numbers"
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) == 0:
            raise ValueError(f"{name} must be a non-empty list of {what} in {self}; got {value!r}")
        return tuple(self.check(f"{name}[{i}]", v) for i, v in enumerate(value))


#: The largest replicate seed: replicate s draws its test set from numpy RandomState(s * 1000 + 300),
#: whose seed must stay below 2**32.
MAX_SEED = (2**32 - 1 - 300) // 1000
SEED = Range(0, MAX_SEED, integer=True)
FRACTION = Range(0.0, 1.0)  # regrowth and relapse fractions, protection
SPARSITY = Range(0.0, 1.0, hi_open=True)  # pruning level: at least one weight per layer stays
SWEEP_LEVEL = Range(0.0, 0.999)  # the sparsity sweep's levels
EXPLORER_SPARSITY = Range(0.0, 0.99)  # the explorer's pruning slider and grid
REGIMEN_FRACTION = Range(0.0, 1.0, lo_open=True)  # regrowth per regimen cycle (a cycle regrows something)
LEARNING_RATE = Range(0.0, 1.0, lo_open=True)
DECAY_RATE = Range(0.0, 1.0)  # protection lost per discontinuation step
PERCENT = Range(0.0, 100.0)  # thresholds on an accuracy in %
COUNT = Range(0, integer=True)  # epochs, steps, workers
POSITIVE_COUNT = Range(1, integer=True)


def check_increasing(name: str, value: Sequence, count: int | None = None, at_least: int = 1) -> None:
    """Entries strictly increasing; exactly ``count`` of them, or at least ``at_least``."""
    n = len(value)
    if count is not None and n != count:
        raise ValueError(f"{name} must hold exactly {count} values in increasing order; got {list(value)}")
    if n < at_least:
        raise ValueError(f"{name} must hold at least {at_least} values; got {list(value)}")
    if any(b <= a for a, b in zip(value[:-1], value[1:])):
        raise ValueError(f"{name} must be strictly increasing; got {list(value)}")


def check_distinct(name: str, values: Sequence) -> tuple:
    """No value twice in a list of levels (an atlas choice's levels, a grid's axis, a sweep).

    Numbers count as the same when they print the same to six significant digits, as the
    levels' names, labels and table rows show them (``0.5`` and ``0.50``, ``2`` and ``2.0000001``);
    a repeat would be one experiment run twice under one name. ``ValueError`` naming ``name``.
    """
    seen: dict[str, Any] = {}
    for v in values:
        key = f"{float(v):g}" if _is_real(v) else repr(v)
        if key in seen:
            raise ValueError(
                f"{name} must not repeat a value; got {list(values)} ({seen[key]!r} and {v!r} are the same level)"
            )
        seen[key] = v
    return tuple(values)


#: Which parameters set each of study A's regimens (the chapter's names), for messages.
REGIMEN_PARAMETERS = {
    "acute moderate": ("acute_fraction", "acute_epochs"),
    "short chronic": ("chronic_cycles", "chronic_fraction", "chronic_epochs"),
    "moderate chronic": ("chronic_cycles", "chronic_fraction", "chronic_epochs"),
    "long chronic": ("chronic_cycles", "chronic_fraction", "chronic_epochs"),
    "full acute": ("full_epochs",),
    "epochs-matched control": ("acute_fraction", "chronic_cycles", "chronic_epochs"),
}


def check_distinct_regimens(
    acute_fraction: float,
    acute_epochs: int,
    chronic_fraction: float,
    chronic_epochs: int,
    chronic_cycles: Sequence[int],
    full_epochs: int,
    control: bool = True,
) -> None:
    """Study A's regimens must differ: two with the same cycles, fraction and epochs would be one
    experiment under two names. Raises naming the parameters that made them equal."""
    cyc = list(chronic_cycles)
    shapes = {"acute moderate": (1, float(acute_fraction), int(acute_epochs))}
    for label, n in zip(("short chronic", "moderate chronic", "long chronic"), cyc):
        shapes[label] = (int(n), float(chronic_fraction), int(chronic_epochs))
    shapes["full acute"] = (1, 1.0, int(full_epochs))
    if control and len(cyc) == 3:
        shapes["epochs-matched control"] = (1, float(acute_fraction), int(cyc[2]) * int(chronic_epochs))
    values = {
        "acute_fraction": acute_fraction, "acute_epochs": acute_epochs, "chronic_fraction": chronic_fraction,
        "chronic_epochs": chronic_epochs, "chronic_cycles": cyc, "full_epochs": full_epochs,
    }  # fmt: skip
    _check_distinct_shapes(shapes, REGIMEN_PARAMETERS, values)


def _check_distinct_shapes(shapes: dict[str, tuple], parameters: dict[str, tuple], values: dict) -> None:
    """Raise naming the parameters (and their values) that make two regimens of ``shapes``
    ((cycles, fraction, epochs) by label) the same experiment."""
    seen: dict[tuple, str] = {}
    for label, shape in shapes.items():
        if shape in seen:
            other = seen[shape]
            names = sorted(set(parameters[other]) | set(parameters[label]))
            given = ", ".join(f"{k}={values[k]!r}" for k in names)
            cycles, fraction, epochs = shape
            raise ValueError(
                f"{given} make the {other} and {label} regimens the same experiment ({cycles} cycle"
                f"{'s' if cycles != 1 else ''} of {100 * fraction:g}% regrowth, {epochs} "
                f"epoch{'s' if epochs != 1 else ''} each); change one of these parameters"
            )
        seen[shape] = label


#: Which parameters set each of the atlas's compact regimens (chapter 7's names).
ATLAS_REGIMEN_PARAMETERS = {
    "regrown": ("regrow_fraction",),
    "consolidated": ("regrow_fraction", "consolidation_epochs"),
    "acute moderate": ("acute_fraction", "acute_epochs"),
    "long chronic": ("chronic_cycles", "chronic_fraction", "chronic_epochs"),
}


def check_distinct_atlas_regimens(
    regrow_fraction: float,
    consolidation_epochs: int,
    acute_fraction: float,
    acute_epochs: int,
    chronic_fraction: float,
    chronic_epochs: int,
    chronic_cycles: int,
) -> None:
    """The atlas's compact regimens (regrown, consolidated, acute moderate, long chronic) must
    differ; raises naming the parameters that made two of them the same experiment."""
    values = dict(
        regrow_fraction=regrow_fraction, consolidation_epochs=consolidation_epochs, acute_fraction=acute_fraction,
        acute_epochs=acute_epochs, chronic_fraction=chronic_fraction, chronic_epochs=chronic_epochs,
        chronic_cycles=chronic_cycles,
    )  # fmt: skip
    shapes = {
        "regrown": (1, float(regrow_fraction), 0),
        "consolidated": (1, float(regrow_fraction), int(consolidation_epochs)),
        "acute moderate": (1, float(acute_fraction), int(acute_epochs)),
        "long chronic": (int(chronic_cycles), float(chronic_fraction), int(chronic_epochs)),
    }
    _check_distinct_shapes(shapes, ATLAS_REGIMEN_PARAMETERS, values)


#: A Dask scheduler's address: tcp:// or tls://, a host name, IPv4 or [IPv6] address, and a port.
_SCHEDULER = re.compile(r"^(tcp|tls)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.\-]*[A-Za-z0-9])?):(\d{1,5})$")
#: Seconds a scheduler has to accept a connection before it counts as unreachable.
SCHEDULER_PROBE_S = 3.0


def _scheduler_silence(scheme: str, host: str, port: int) -> str | None:
    """Why nothing answers as a Dask scheduler at ``host:port`` within :data:`SCHEDULER_PROBE_S`
    seconds, or None when something does. Over tcp:// a scheduler greets every new connection at
    once with its handshake (a frame count and lengths, then a msgpack message); a port that
    accepts and stays silent, or sends something else, is not one. Over tls:// the connection is
    the test (the greeting is encrypted)."""
    import socket
    import struct
    import time

    deadline = time.monotonic() + SCHEDULER_PROBE_S
    connected = False
    try:
        with socket.create_connection((host, port), timeout=SCHEDULER_PROBE_S) as conn:
            connected = True
            if scheme != "tcp":
                return None
            got = b""
            while len(got) < 16:
                conn.settimeout(max(0.01, deadline - time.monotonic()))
                chunk = conn.recv(16 - len(got))
                if not chunk:
                    return "the connection was closed without a greeting"
                got += chunk
    except TimeoutError:
        return "connected, but no Dask greeting" if connected else "no answer"
    except OSError as exc:
        return exc.strerror or str(exc)
    total, frames = struct.unpack("<QQ", got)
    if not (16 <= total < 2**24 and 1 <= frames <= 64):
        return "something answers there, but not a Dask scheduler"
    return None


def check_scheduler(name: str, value: Any, probe: bool = True) -> str:
    """'' (this machine) or a Dask scheduler address 'tcp://host:port' / 'tls://host:port'.

    The one check of a scheduler address (the chapters' ``scheduler`` parameter, ``pruneplast
    sweep --scheduler``, :mod:`pruneplast.parallel`): a wrong form is a ``ValueError`` naming
    ``name``; with ``probe``, an address where nothing accepts a connection within
    :data:`SCHEDULER_PROBE_S` seconds is a ``RuntimeError`` naming it, before any work starts.
    """
    m = _SCHEDULER.match(value) if isinstance(value, str) else None
    if not isinstance(value, str) or (value and (m is None or not 1 <= int(m.group(3)) <= 65535)):
        raise ValueError(
            f"{name} must be '' or a Dask scheduler address 'tcp://host:port' or 'tls://host:port' "
            f"(e.g. 'tcp://127.0.0.1:8786'); got {value!r}"
        )
    if value and probe and m is not None:
        why = _scheduler_silence(m.group(1), m.group(2).strip("[]"), int(m.group(3)))
        if why is not None:
            raise RuntimeError(
                f"{name}: could not reach the Dask scheduler at {value!r} within {SCHEDULER_PROBE_S:g} s ({why}); "
                "start it (dask scheduler) or give '' to run on this machine"
            )
    return value


def check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value


def check_config(name: str, value: Any, kind: type) -> Any:
    """``value`` when it is a ``kind`` (one of the configurations below), else a ``ValueError`` naming
    ``name``: a protocol given a bare number where it takes a configuration fails before any work."""
    if not isinstance(value, kind):
        raise ValueError(f"{name} must be a {kind.__name__}; got {type(value).__name__} {value!r}")
    return value


def check_seeds(name: str, value: Any) -> tuple[int, ...]:
    """A non-empty sequence of distinct non-negative integer replicate seeds (a list, tuple, range,
    or a one-dimensional numpy array or torch tensor of integers); returned as Python ints."""
    if getattr(value, "ndim", None) == 1 and hasattr(value, "tolist"):  # numpy array, torch tensor
        value = value.tolist()
    if _is_int(value) or isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ValueError(f"{name} must be a non-empty list of distinct integers >= 0 (replicate seeds); got {value!r}")
    seeds = tuple(SEED.check(f"{name}[{i}]", s) for i, s in enumerate(value))
    if len(seeds) == 0:
        raise ValueError(f"{name} must contain at least 1 replicate seed; got 0")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"{name} must not repeat a seed; got {list(seeds)}")
    return seeds


def check_fractions(name: str, value: Any, lo: float = 0.0, hi: float = 1.0) -> tuple[float, ...]:
    return Range(lo, hi).check_list(name, value)


def check_int_list(name: str, value: Any, minimum: int = 0) -> tuple[int, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) == 0:
        raise ValueError(f"{name} must be a non-empty list of integers >= {minimum}; got {value!r}")
    return tuple(check_int(f"{name}[{i}]", v, minimum) for i, v in enumerate(value))


def check_device(name: str, value: Any) -> str:
    """'cpu', or a CUDA device ('cuda', 'cuda:N') that exists here; proven by allocating on it."""
    if value == "cpu":  # the default needs no torch (a command line's checks end before torch loads)
        return value
    import torch

    usage = "'cpu' or 'cuda' ('cuda:N' for the N-th GPU)"
    if not isinstance(value, str):
        raise ValueError(f"{name} must be {usage}; got {value!r}")
    try:
        dev = torch.device(value)
    except (RuntimeError, ValueError):
        raise ValueError(f"{name} must be {usage}; got {value!r}") from None
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"{name}={value!r}: the engine runs on {usage} only")
    if dev.type == "cpu":
        if dev.index not in (None, 0):
            raise ValueError(f"{name}={value!r}: there is one CPU device, 'cpu'")
        return value
    if not torch.cuda.is_available():
        raise ValueError(f"{name}={value!r} but CUDA is not available here; use 'cpu'")
    n = torch.cuda.device_count()
    if dev.index is not None and dev.index >= n:
        raise ValueError(f"{name}={value!r} but this machine has {n} CUDA device(s) (cuda:0 to cuda:{n - 1})")
    try:
        torch.zeros(1, device=dev)
    except RuntimeError as exc:
        raise ValueError(f"{name}={value!r} cannot be used: {exc}") from None
    return value


# --------------------------------------------------------------------------- task and network
#: Where a replicate's data sets come from (Methods section 1). ``'per_replicate'``: replicate
#: seed s draws its train / standard / clean sets from RandomState s*1000+100 / +200 / +300
#: (study B). ``'shared'``: every replicate trains and is tested on the one data set of
#: RandomState 100 / 200 / 300, so replicates differ only by initialisation and random streams
#: (study A). Replicate 0 has the same data under both schemes.
DATA_SETS = ("shared", "per_replicate")
DATA_SET_LABELS = {"shared": "one shared data set (study A)", "per_replicate": "a data set per replicate (study B)"}


@dataclass(frozen=True)
class TaskConfig:
    """The four-class Gaussian task (Methods section 1)."""

    n_train: int = 12_000  # training samples per replicate
    n_standard: int = 4_000  # standard test samples
    n_clean: int = 2_000  # clean test samples (sigma 0: the class centres)
    sigma: float = 0.8  # class spread of train and standard sets
    centre: float = 3.0  # centres at (+-3, +-3)
    data_sets: str = "per_replicate"  # 'per_replicate' (study B) or 'shared' (study A); see DATA_SETS

    def __post_init__(self) -> None:
        if self.data_sets not in DATA_SETS:
            raise ValueError(f"data_sets={self.data_sets!r} must be one of " + ", ".join(map(repr, DATA_SETS)))
        check_int("n_train", self.n_train, 1)
        check_int("n_standard", self.n_standard, 1)
        check_int("n_clean", self.n_clean, 1)
        check_real("sigma", self.sigma, 0.0, 100.0)
        check_real("centre", self.centre, 0.0, 100.0, lo_open=True)


@dataclass(frozen=True)
class NetworkConfig:
    """The masked multilayer perceptron (Methods section 2)."""

    sizes: tuple[int, ...] = (2, 512, 512, 256, 4)  # input, three hidden layers, four logits

    def __post_init__(self) -> None:
        if not isinstance(self.sizes, (tuple, list)) or len(self.sizes) < 2:
            raise ValueError(f"sizes must be a list of >= 2 layer widths; got {self.sizes!r}")
        object.__setattr__(self, "sizes", tuple(check_int(f"sizes[{i}]", s, 1) for i, s in enumerate(self.sizes)))

    @property
    def n_weights(self) -> int:
        return sum(a * b for a, b in zip(self.sizes[:-1], self.sizes[1:]))

    @property
    def n_biases(self) -> int:
        return sum(self.sizes[1:])


#: Bytes a weight takes while it trains: the weight and its gradient (float32), Adam's two moments
#: (float32), the trainable copy (float32) and its mask (bool); a bias takes the same less the mask.
TRAINING_BYTES_PER_WEIGHT = 4 + 4 + 8 + 4 + 1
TRAINING_BYTES_PER_BIAS = 4 + 4 + 8 + 4


def memory_estimate(network: NetworkConfig, replicas: int) -> int:
    """Bytes that training ``replicas`` replicas of ``network`` holds at least (weights, masks,
    gradients and Adam's state; activations come on top)."""
    return replicas * (network.n_weights * TRAINING_BYTES_PER_WEIGHT + network.n_biases * TRAINING_BYTES_PER_BIAS)


def memory_limit(device: str = "cpu") -> tuple[int, str]:
    """(bytes, what) of the memory an ensemble on ``device`` can use: the machine's RAM, or the GPU's."""
    if str(device).startswith("cuda"):
        import torch

        props = torch.cuda.get_device_properties(torch.device(device))
        return int(props.total_memory), f"the GPU {props.name} has"
    try:
        import psutil

        total = int(psutil.virtual_memory().total)
    except ImportError:  # pragma: no cover - psutil is a dependency
        import os

        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return total, "this machine has"


def check_memory(network: NetworkConfig, replicas: int, device: str = "cpu", name: str = "sizes") -> None:
    """``ValueError`` naming ``name`` and giving the estimate and the limit when ``replicas`` of
    ``network`` cannot fit (:func:`memory_estimate`)."""
    need = memory_estimate(network, replicas)
    limit, what = memory_limit(device)
    if need > limit:
        hidden = network.sizes[1:-1]
        shape = (
            f"{len(hidden)} hidden layers of up to {max(hidden, default=0):,} units" if hidden else "no hidden layer"
        )
        raise ValueError(
            f"{name}: a network of {shape} ({network.n_weights:,} weights per replica) needs about "
            f"{need / 1e9:,.1f} GB to train {replicas} replica{'s' if replicas != 1 else ''} (weights, masks, "
            f"gradients, Adam state), but {what} {limit / 1e9:,.1f} GB; use fewer or narrower layers"
        )


# --------------------------------------------------------------------------- operators
@dataclass(frozen=True)
class TrainConfig:
    """One phase of masked Adam training (Methods section 3)."""

    epochs: int = 20  # baseline ("childhood") epochs
    lr: float = 1e-3  # Adam learning rate, default betas (0.9, 0.999) and eps 1e-8
    batch_size: int = 128  # mini-batch size, reshuffled each epoch

    def __post_init__(self) -> None:
        check_int("epochs", self.epochs, 0)
        LEARNING_RATE.check("lr", self.lr)
        check_int("batch_size", self.batch_size, 1)


BASELINE = TrainConfig(epochs=20, lr=1e-3)  # baseline training
CONSOLIDATION = TrainConfig(epochs=15, lr=5e-4)  # fine-tuning after regrowth


@dataclass(frozen=True)
class PruneConfig:
    """One-shot magnitude pruning (Methods section 4)."""

    sparsity: float = 0.95  # fraction of each weight matrix set to zero
    scope: str = "layer"  # 'layer': threshold per matrix; 'global': one threshold over all

    def __post_init__(self) -> None:
        SPARSITY.check("sparsity", self.sparsity)
        check_choice("scope", self.scope, PRUNE_SCOPES)


@dataclass(frozen=True)
class RegrowConfig:
    """Regrowth of pruned connections (Methods section 5)."""

    fraction: float = 0.5  # fraction of the currently pruned positions reinstated, per layer
    method: str = "gradient"  # 'gradient' (top accumulated |dL/dW|) or 'random' control
    score_batches: int = 30  # training mini-batches whose |grad| is accumulated
    init_std: float = 0.03  # new weights ~ N(0, init_std^2)

    def __post_init__(self) -> None:
        FRACTION.check("fraction", self.fraction)
        check_choice("method", self.method, REGROWTH_METHODS)
        check_int("score_batches", self.score_batches, 1)
        check_real("init_std", self.init_std, 0.0, 10.0)


@dataclass(frozen=True)
class RelapseConfig:
    """The relapse challenge, a second pruning wave (Methods section 7)."""

    fraction: float = 0.4  # share of the still-present weights removed
    max_sparsity: float = 0.99  # cap on the target sparsity

    def __post_init__(self) -> None:
        FRACTION.check("fraction", self.fraction)
        check_real("max_sparsity", self.max_sparsity, 0.0, 1.0, hi_open=True)


# --------------------------------------------------------------------------- longitudinal
# (Treatment arms and their registry: pruneplast.arms.)
@dataclass(frozen=True)
class MaintenanceConfig:
    """Longitudinal maintenance and discontinuation (Methods section 9)."""

    durations: tuple[int, ...] = (25, 50, 100, 150, 200, 300)  # maintenance epochs tested
    lr: float = 1e-6  # maintenance learning rate
    protection: float = 1.0  # mood-stabiliser protection during maintenance
    decay_steps: int = 50  # protection decay steps after discontinuation
    threshold: float = 60.0  # manic relapse if biased-stress accuracy (%) is below this
    bias: float = 1.0  # positive bias of the biased-stress test, before protection

    def __post_init__(self) -> None:
        object.__setattr__(self, "durations", POSITIVE_COUNT.check_list("durations", self.durations))
        LEARNING_RATE.check("lr", self.lr)
        FRACTION.check("protection", self.protection)
        COUNT.check("decay_steps", self.decay_steps)
        PERCENT.check("threshold", self.threshold)
        check_real("bias", self.bias, 0.0, 100.0)


@dataclass(frozen=True)
class RunConfig:
    """What every experiment needs besides the protocol: replicates, device, progress bars."""

    seeds: tuple[int, ...] = tuple(range(10))  # replicate seeds (study B used 0..9)
    device: str = "cpu"  # 'cpu' or 'cuda'
    progress: bool | None = None  # None: show bars only on a terminal
    eval_batch: int = 1000  # evaluation batch size
    task: TaskConfig = field(default_factory=TaskConfig)  # the data of every replicate

    def __post_init__(self) -> None:
        object.__setattr__(self, "seeds", check_seeds("seeds", self.seeds))
        check_device("device", self.device)
        if self.progress is not None and not isinstance(self.progress, bool):
            raise ValueError(f"progress must be True, False or None; got {self.progress!r}")
        check_int("eval_batch", self.eval_batch, 1)
        if not isinstance(self.task, TaskConfig):
            raise ValueError(f"task must be a TaskConfig; got {type(self.task).__name__}")


@dataclass(frozen=True)
class ModelChoices:
    """The choices the studies fixed and the robustness atlas changes, as parameters of the
    reproduction chapters (``hidden``, ``task_sigma``, ``prune_scope``, ``lr_factor``,
    ``regrow_init_std``); the defaults are the studies'. The data-set scheme is
    :attr:`TaskConfig.data_sets`, a parameter of its own."""

    hidden: tuple[int, ...] = (512, 512, 256)  # hidden-layer widths: the network is 2-<hidden>-4
    task_sigma: float = 0.8  # class spread of the task's training and standard sets
    prune_scope: str = "layer"  # 'layer' (one magnitude threshold per matrix) or 'global'
    lr_factor: float = 1.0  # every learning rate (baseline, consolidation, treatments) times this
    regrow_init_std: float = 0.03  # SD of regrown weights

    def __post_init__(self) -> None:
        if isinstance(self.hidden, (str, bytes)) or not isinstance(self.hidden, (tuple, list)) or not self.hidden:
            raise ValueError(f"hidden must be a non-empty list of layer widths (>= 1); got {self.hidden!r}")
        object.__setattr__(self, "hidden", tuple(self.network.sizes[1:-1]))
        check_memory(self.network, 1, name="hidden")
        TaskConfig(sigma=self.task_sigma)
        PruneConfig(scope=self.prune_scope)
        check_real("lr_factor", self.lr_factor, 0.0, 100.0, lo_open=True)
        RegrowConfig(init_std=self.regrow_init_std)

    @property
    def network(self) -> NetworkConfig:
        return NetworkConfig((2, *self.hidden, 4))

    def task(self, data_sets: str = "per_replicate") -> TaskConfig:
        return TaskConfig(sigma=self.task_sigma, data_sets=data_sets)

    def prune(self, sparsity: float) -> PruneConfig:
        return PruneConfig(sparsity=sparsity, scope=self.prune_scope)

    def regrow(self, fraction: float) -> RegrowConfig:
        """Gradient-guided regrowth of ``fraction`` of the pruned positions under this choice."""
        return RegrowConfig(fraction=fraction, init_std=self.regrow_init_std)

    def lr(self, lr: float) -> float:
        """A learning rate of the protocol under this choice (times ``lr_factor``)."""
        return lr * self.lr_factor

    def train(self, epochs: int, lr: float) -> TrainConfig:
        return TrainConfig(epochs=epochs, lr=self.lr(lr))
