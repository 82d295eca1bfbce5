"""Study B, first half: three routes out of the pruned state (Methods sections 2, 5, 6, 7, 9).

Every treatment starts from its replicate's own 95%-pruned network:

* untreated: the pruned network as it is;
* ketamine-like: gain 1.25; 50% gradient-guided regrowth (scores at gain 1.0); 15 epochs of
  masked Adam at lr 5e-4 with the gain on (47.5% weight sparsity);
* SSRI-like: mask fixed; 100 epochs at lr 1e-5; during epoch e (0..E-1) internal noise
  sigma = 0.5 (1 - e/(E-1)) is on in training and the gain is 1 + 0.6 e/(E-1); 1.6 afterwards;
* neurosteroid-like: mask fixed; tanh, damping 0.7, gain 0.85; 10 epochs at lr 5e-4.
  Off drug: ReLU, damping 1.0, gain 1.0, same weights.

Treatments whose training has no schedule and the same number of epochs train as one ensemble
(one learning rate per replica); the SSRI-like schedule sets noise and gain for a whole ensemble,
so it trains on its own. Training streams are keyed on each replica's seed and a tag, so the
grouping never changes a result beyond float rounding. Evaluations run with the drug on
(``drug='on'``) unless labelled ``drug='off'``; every table is tidy (one row per replica x
condition x metric), accuracies in %.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Iterable, Mapping, Sequence

import pandas as pd

from .. import arms, parallel
from ..arms import TreatmentConfig
from ..config import BASELINE, NetworkConfig, PruneConfig, RegrowConfig, RunConfig, TrainConfig, check_choice
from ..data import EnsembleData
from ..network import EnsembleMLP
from ..operators import regrow, relapse_challenge, train
from ..results import fmt_sd_ci, fmt_study, summarise
from ..stress import TOLERANCE_SIGMAS, evaluate, manic_risk, structure, tolerance, tolerance_condition
from .base import _key, baseline, cache_dir, load_state, pruned, save_state

#: Conditions of the efficacy table (Methods section 6), drug on; extreme stress is the tolerance
#: curve's sigma 2.5 point.
EFFICACY_CONDITIONS = ("clean", "standard", "combined")
#: Conditions of the neurosteroid-like network off drug (extreme = internal noise SD 2.5).
OFF_DRUG_CONDITIONS = ("combined", tolerance_condition(2.5), "biased")
#: The manic-risk panel: (title, experiment, condition, metric, study table).
MANIC_PANELS = (
    ("biased-stress accuracy (%)", "manic_risk", "biased", "accuracy", "biased_accuracy"),
    ("activation magnitude", "manic_risk", "-", "activation_magnitude", "activation_magnitude"),
    ("gain", "manic_risk", "-", "gain", "gain"),
)


# --------------------------------------------------------------------------- configuration
def configs(
    names: Iterable[str] | None = None,
    epochs: Mapping[str, int] | None = None,
    regrow_fraction: float | None = None,
    decay_rates: Mapping[str, float] | None = None,
) -> dict[str, TreatmentConfig]:
    """The registered configuration of each named treatment arm (every arm where ``names`` is
    None), with optional overrides.

    ``epochs`` maps a treatment name to its training epochs (e.g. a shorter quick profile);
    ``regrow_fraction`` overrides the ketamine-like regrowth fraction; ``decay_rates`` maps a
    treatment name to its protection decay per step after discontinuation. Unknown names raise
    ``ValueError``; out-of-range values raise it from :class:`TreatmentConfig`.
    """
    for key, mapping in (("epochs", epochs), ("decay_rates", decay_rates)):
        for name in mapping or {}:
            check_choice(f"{key} key", name, arms.names())
    out = {}
    for name in arms.names() if names is None else names:
        cfg = arms.arm(name)
        if epochs and name in epochs and name != "untreated":
            cfg = dataclasses.replace(cfg, epochs=epochs[name])
        if decay_rates and name in decay_rates:
            cfg = dataclasses.replace(cfg, decay_rate=decay_rates[name])
        if regrow_fraction is not None and cfg.regrow_fraction > 0:
            cfg = dataclasses.replace(cfg, regrow_fraction=regrow_fraction)
        out[name] = cfg
    return out


def course_schedule(cfg: TreatmentConfig) -> tuple[Callable[[int], float], Callable[[int], float]]:
    """(sigma(e), gain(e)) of a scheduled course of ``cfg.epochs`` epochs, e = 0, 1, ... (the
    SSRI-like arm's noise taper and gain ramp)

    sigma = noise_start (1 - f) and gain = gain_start + (gain - gain_start) f with
    f = min(e / (E - 1), 1) (f = 1 after the course; E = 1 gives f = 0 in its only epoch).
    """
    n = cfg.epochs
    g0 = cfg.gain if cfg.gain_start is None else cfg.gain_start

    def frac(e: int) -> float:
        if e >= n:
            return 1.0
        return min(e / (n - 1), 1.0) if n > 1 else 0.0

    return (lambda e: cfg.noise_start * (1.0 - frac(e))), (lambda e: g0 + (cfg.gain - g0) * frac(e))


def scheduled(cfg: TreatmentConfig) -> bool:
    """Whether a treatment's training sets noise or gain per epoch (then it trains alone)."""
    return cfg.course == "scheduled"


def drug_on(net: EnsembleMLP, cfg: TreatmentConfig, index: Sequence[int] | None = None) -> EnsembleMLP:
    """Switch a treatment's modulation on (gain, damping, activation), in place."""
    return net.set_modulation(gain=cfg.gain, damping=cfg.damping, activation=cfg.activation, index=index)


# --------------------------------------------------------------------------- treating
def _course(
    net: EnsembleMLP, data: EnsembleData, epochs: int, lr: list[float], schedule: TreatmentConfig | None = None
) -> EnsembleMLP:
    """Train one ensemble's treatment course in place and return it.

    ``lr``: one learning rate per replica. ``schedule``: a scheduled treatment's configuration (the
    SSRI-like noise taper and gain ramp, :func:`course_schedule`; its drug is switched on at the end
    value afterwards), or None for a course at constant modulation.
    """

    def done(epoch: int, current: EnsembleMLP) -> None:
        parallel.report(current.n_replicas)

    sigma, gain = course_schedule(schedule) if schedule is not None else (0.0, None)
    train(
        net,
        data,
        TrainConfig(epochs=epochs, lr=lr[0]),
        tag="treatment",
        lr=lr,
        sigma_int=sigma,
        gain=gain,
        on_epoch_end=done,
        progress=False,
    )
    if schedule is not None:
        drug_on(net, schedule)  # the gain stays at its end value after the course
    return net


def treat(
    depressed: EnsembleMLP,
    data: EnsembleData,
    cfgs: Mapping[str, TreatmentConfig],
    progress: bool | None = None,
    workers: int = 1,
) -> dict[str, EnsembleMLP]:
    """Apply every treatment to copies of the pruned ensemble ``depressed`` (M replicas).

    Returns name -> ensemble of M replicas (``meta['treatment']`` set), drug modulation on.
    ``workers``: processes the courses train in side by side (:func:`pruneplast.parallel.run_jobs`;
    0: one per CPU core, always 1 on a GPU); ensembles for which
    :func:`~pruneplast.parallel.splits_well` holds are split into one part per worker. The split
    changes only the order of floating-point sums.
    """
    _check_data(depressed, data)
    workers = parallel.resolve_workers(workers, str(depressed.device))
    m = depressed.n_replicas
    states: dict[str, EnsembleMLP] = {}
    for name, cfg in cfgs.items():
        net = depressed.clone()
        for d in net.meta:
            d["treatment"] = name
        drug_on(net, cfg)
        if cfg.regrow_fraction > 0:  # scores are taken at gain 1.0 by gradient_scores
            regrow(net, data, RegrowConfig(fraction=cfg.regrow_fraction), tag="regrow")
        states[name] = net
    # Unscheduled treatments with equal epochs train together (one lr per replica); a scheduled one
    # (noise and gain set per epoch for the whole ensemble) trains alone.
    groups: dict[int, list[str]] = {}
    for name, cfg in cfgs.items():
        if cfg.epochs > 0 and not scheduled(cfg):
            groups.setdefault(cfg.epochs, []).append(name)
    jobs: list = []
    names: list[list[str]] = []
    epochs: list[int] = []
    for ep, group in groups.items():
        lr = [cfgs[n].lr for n in group for _ in range(m)]
        jobs.append(
            (
                EnsembleMLP.concat([states[n] for n in group]),
                data.select(list(range(m)) * len(group)),
                False,
                lambda idx, ep=ep, lr=lr: (ep, [lr[i] for i in idx]),
            )
        )
        names.append(group)
        epochs.append(ep)
    for name, cfg in cfgs.items():
        if cfg.epochs > 0 and scheduled(cfg):
            jobs.append(
                (states[name], data, cfg.noise_start > 0, lambda idx, cfg=cfg: (cfg.epochs, [cfg.lr] * len(idx), cfg))
            )
            names.append([name])
            epochs.append(cfg.epochs)
    for group, parts in zip(
        names, parallel.run_ensembles(jobs, _course, workers, "treatment courses", epochs, progress)
    ):
        trained = EnsembleMLP.concat(parts)
        for k, n in enumerate(group):
            states[n] = trained.select(range(k * m, (k + 1) * m))
    return states


def treated(
    run: RunConfig,
    cfgs: Mapping[str, TreatmentConfig],
    baseline_config: TrainConfig = BASELINE,
    prune_config: PruneConfig = PruneConfig(),
    network: NetworkConfig = NetworkConfig(),
    cache: bool = True,
    workers: int = 1,
) -> tuple[dict[str, EnsembleMLP], EnsembleData]:
    """Each replicate's baseline, pruned and treated: (name -> ensemble, data).

    Cached on disk like the baselines (keyed by seeds, task, every configuration, the number of
    worker processes of :func:`treat` and the package source), so the longitudinal chapter reuses
    the treatment chapter's states.
    """
    workers = parallel.resolve_workers(workers, run.device)
    base, data = baseline(run, baseline_config, network, cache=cache)
    path = (
        cache_dir()
        / "treated"
        / (
            _key(
                run.seeds,
                run.task,
                baseline_config,
                prune_config,
                network,
                [_protocol(c) for c in cfgs.values()],
                {"workers": workers},
            )
            + ".pt"
        )
    )
    saved = load_state(path) if cache else None
    if saved is not None:
        return {n: EnsembleMLP.from_state_dict(s, run.device) for n, s in saved.items()}, data
    states = treat(pruned(base, prune_config), data, cfgs, progress=run.progress, workers=workers)
    if cache:
        save_state({n: s.to("cpu").state_dict() for n, s in states.items()}, path)
    return states, data


def _protocol(cfg: TreatmentConfig) -> dict:
    """An arm's fields that change a result (its label and colour do not)."""
    d = dataclasses.asdict(cfg)
    for k in ("label", "colour", "off_drug"):
        d.pop(k)
    return d


# --------------------------------------------------------------------------- evaluating
def joint(states: Mapping[str, EnsembleMLP], data: EnsembleData) -> tuple[EnsembleMLP, EnsembleData]:
    """All treatments' replicas as one ensemble (treatments in order) and its data."""
    nets = list(states.values())
    m = nets[0].n_replicas
    return EnsembleMLP.concat(nets), data.select(list(range(m)) * len(nets))


def evaluate_treatments(
    states: Mapping[str, EnsembleMLP], data: EnsembleData, tolerance_sigmas: Sequence[float] = TOLERANCE_SIGMAS
) -> pd.DataFrame:
    """Every chapter-5 measurement, tidy; columns add ``experiment``, ``treatment`` and ``drug``.

    experiments: ``efficacy`` (sparsity, kept weights, gain; clean, standard, combined),
    ``tolerance`` (standard set at each internal-noise SD), ``manic_risk`` (biased accuracy,
    activation magnitude, gain), ``acute_relapse`` (combined before and after the second pruning
    wave, the drop in points, the sparsity reached) and ``off_drug`` (each arm registered with
    ``off_drug=True``, the neurosteroid-like one in the studies: modulation reset, same weights).
    """
    net, d = joint(states, data)
    for meta in net.meta:
        meta["drug"] = "on" if meta["treatment"] != "untreated" else "none"
    frames = [
        _with(structure(net), "efficacy"),
        _with(evaluate(net, d, EFFICACY_CONDITIONS), "efficacy"),
        _with(tolerance(net, d, tolerance_sigmas), "tolerance"),
        _with(manic_risk(net, d), "manic_risk"),
        _with(acute_relapse(net, d), "acute_relapse"),
    ]
    for name, state in states.items():
        if name not in arms.names() or not arms.arm(name).off_drug:
            continue
        off = state.clone().reset_modulation()
        for meta in off.meta:
            meta["drug"] = "off"
        frames.append(_with(evaluate(off, data, OFF_DRUG_CONDITIONS), "off_drug"))
        frames.append(_with(manic_risk(off, data).query("metric != 'accuracy'"), "off_drug"))
    return pd.concat(frames, ignore_index=True)


def acute_relapse(net: EnsembleMLP, data: EnsembleData) -> pd.DataFrame:
    """The relapse challenge with the modulation on: combined accuracy (%) before and after,
    ``relapse_drop`` = before - after (points), and the weight sparsity (%) reached."""
    before = evaluate(net, data, ["combined"])
    hit = net.clone()
    relapse_challenge(hit)
    after = evaluate(hit, data, ["combined"])
    rows = before.assign(metric="accuracy_before")
    rows_after = after.assign(metric="accuracy_after")
    drop = after.assign(metric="relapse_drop", value=before["value"].to_numpy() - after["value"].to_numpy())
    sp = structure(hit).query("metric == 'weight_sparsity'").assign(condition="combined", metric="sparsity_after")
    return pd.concat([rows, rows_after, drop, sp], ignore_index=True)


def _with(df: pd.DataFrame, experiment: str) -> pd.DataFrame:
    out = df.copy()
    out.insert(0, "experiment", experiment)
    return out


def _check_data(net: EnsembleMLP, data: EnsembleData) -> None:
    if list(data.seeds) != net.seeds:
        raise ValueError(f"data holds replicas {list(data.seeds)} but the network holds {net.seeds}")


# --------------------------------------------------------------------------- tables
#: Rows of the study's tables: (table name in paper_results.yaml, experiment, condition, metric).
TABLE_ROWS = (
    ("sparsity", "efficacy", "-", "weight_sparsity"),
    ("clean", "efficacy", "clean", "accuracy"),
    ("standard", "efficacy", "standard", "accuracy"),
    ("combined", "efficacy", "combined", "accuracy"),
    ("sigma_0.5", "tolerance", "sigma_0.5", "accuracy"),
    ("sigma_1.0", "tolerance", "sigma_1", "accuracy"),
    ("sigma_1.5", "tolerance", "sigma_1.5", "accuracy"),
    ("sigma_2.5", "tolerance", "sigma_2.5", "accuracy"),
    ("gain", "manic_risk", "-", "gain"),
    ("biased_accuracy", "manic_risk", "biased", "accuracy"),
    ("activation_magnitude", "manic_risk", "-", "activation_magnitude"),
    ("acute_relapse_drop", "acute_relapse", "combined", "relapse_drop"),
)


#: What readers see for each row of the study's tables.
MEASURE_LABELS = {
    "sparsity": "weight sparsity (%)",
    "clean": "clean accuracy (%)",
    "standard": "standard accuracy (%)",
    "combined": "combined-stress accuracy (%)",
    "sigma_0.5": "accuracy, internal noise SD 0.5 (%)",
    "sigma_1.0": "accuracy, internal noise SD 1.0 (%)",
    "sigma_1.5": "accuracy, internal noise SD 1.5 (%)",
    "sigma_2.5": "accuracy, internal noise SD 2.5 (%)",
    "gain": "gain",
    "biased_accuracy": "biased-stress accuracy (%)",
    "activation_magnitude": "activation magnitude (mean |h|)",
    "acute_relapse_drop": "acute relapse drop (points)",
}


def comparison_long(
    df: pd.DataFrame, paper_tables: Mapping, rows=TABLE_ROWS, treatments: Sequence[str] | None = None
) -> pd.DataFrame:
    """:func:`comparison_table` in long form for reading: one row per measure and arm, columns
    'ours' (mean ± SD [95% CI]) and 'study' (mean ± SD), measures and arms by their labels."""
    wide = comparison_table(df, paper_tables, rows, treatments)
    arms_shown = [c.removesuffix(", ours") for c in wide.columns if c.endswith(", ours")]
    out = []
    for measure, r in wide.iterrows():
        for t in arms_shown:
            out.append(
                {
                    "measure": MEASURE_LABELS.get(str(measure), str(measure)),
                    "treatment": arms.label(t),
                    "ours": r[f"{t}, ours"],
                    "study": r[f"{t}, study"],
                }
            )
    return pd.DataFrame(out).set_index(["measure", "treatment"])


def comparison_table(
    df: pd.DataFrame, paper_tables: Mapping, rows=TABLE_ROWS, treatments: Sequence[str] | None = None
) -> pd.DataFrame:
    """Ours (mean ± SD [95% CI] over seeds) beside the study's (mean ± SD), one row per measure.

    ``paper_tables`` is study B's ``tables`` mapping (each row keyed by arm name); ``treatments``
    defaults to the arms present in ``df``, in registry order. An arm the study lacks shows "—".
    """
    treatments = _arms_in(df) if treatments is None else list(treatments)
    out = []
    for table_name, exp, cond, metric in rows:
        sel = df[(df.experiment == exp) & (df.condition == cond) & (df.metric == metric)]
        s = summarise(sel, ["treatment"]).set_index("treatment")
        digits = 3 if metric == "activation_magnitude" else 2 if metric == "gain" else 1
        row = {"measure": table_name}
        for t in treatments:
            row[f"{t}, ours"] = fmt_sd_ci(s.loc[t], digits) if t in s.index else "—"
            row[f"{t}, study"] = fmt_study(paper_tables[table_name].get(t), digits)
        out.append(row)
    return pd.DataFrame(out).set_index("measure")


def off_drug_table(df: pd.DataFrame, paper_off: Mapping, name: str = "neurosteroid") -> pd.DataFrame:
    """One arm on and off drug (the study's: neurosteroid-like), ours beside the study's off-drug values."""
    rows = []
    for key, cond in (("combined", "combined"), ("extreme", "sigma_2.5"), ("biased", "biased")):
        on = df[
            (df.treatment == name)
            & (df.drug == "on")
            & (df.condition == cond)
            & (df.metric == "accuracy")
            & df.experiment.isin(["efficacy", "tolerance", "manic_risk"])
        ]
        off = df[
            (df.experiment == "off_drug") & (df.treatment == name) & (df.condition == cond) & (df.metric == "accuracy")
        ]
        s_on, s_off = summarise(on, ["treatment"]).iloc[0], summarise(off, ["treatment"]).iloc[0]
        rows.append(
            {
                "condition": key,
                "on drug, ours": fmt_sd_ci(s_on),
                "off drug, ours": fmt_sd_ci(s_off),
                "off drug, study": fmt_study(paper_off[key]) if name == "neurosteroid" else "—",
            }
        )
    return pd.DataFrame(rows).set_index("condition")


def summary(
    df: pd.DataFrame, experiment: str, condition: str, metric: str, treatments: Sequence[str] | None = None
) -> pd.DataFrame:
    """Mean, SD, n and 95% CI per treatment (index, in registry order) of one measure."""
    sel = df[(df.experiment == experiment) & (df.condition == condition) & (df.metric == metric)]
    s = summarise(sel, ["treatment"]).set_index("treatment")
    order = _arms_in(df) if treatments is None else list(treatments)
    return s.reindex([t for t in order if t in s.index])


def _arms_in(df: pd.DataFrame) -> list[str]:
    """The arms with rows in ``df``: registered ones in registry order, then any others."""
    present = list(dict.fromkeys(df["treatment"]))
    return [t for t in arms.names() if t in present] + [t for t in present if t not in arms.names()]


def paper_value(paper_tables: Mapping, table_name: str, name: str) -> float:
    """The study's mean for one treatment in one of its tables (nan where it reports none)."""
    v = paper_tables[table_name].get(name)
    return float("nan") if v is None else float(v[0])


def tolerance_frame(df: pd.DataFrame) -> pd.DataFrame:
    """The tolerance rows with a numeric ``sigma`` column (internal-noise SD)."""
    tol = df[(df.experiment == "tolerance") & (df.metric == "accuracy")].copy()
    tol["sigma"] = tol["condition"].str.removeprefix("sigma_").astype(float)
    return tol


def paper_tolerance(paper_tables: Mapping, name: str) -> tuple[list[float], list[float]]:
    """The study's tolerance curve of one treatment: (sigmas, mean accuracy %); sigma 0 = standard."""
    keys = {0.0: "standard", 0.5: "sigma_0.5", 1.0: "sigma_1.0", 1.5: "sigma_1.5", 2.5: "sigma_2.5"}
    return list(keys), [paper_value(paper_tables, k, name) for k in keys.values()]
