"""What each claim's number depends on: the paragraph a chapter prints under a claim that its run
does not reproduce (``scorecard.chapter_verdicts``), beside the failed tests with their numbers.

Each text names the mechanism or the protocol choice that moves the quantity and the chapter that
shows it; none states a number (the numbers come from the run)."""

from __future__ import annotations

#: Study A reported one replicate, study B the mean of ten: said once for every single-value claim.
SINGLE_REPLICATE = (
    "Study A reports one replicate, so its number is one draw from a distribution like the one our "
    "seeds trace; a study value outside our prediction interval is a draw our model would rarely give."
)
#: Relapse and manic-switch indicators are 0 or 100 per replicate.
INDICATOR = (
    "A relapse indicator is 0 or 100 per replicate, so a share over a handful of replicates moves in "
    "large steps and its interval is wide; the study's share rests on its own handful."
)

REASONS: dict[str, str] = {
    "A1_pruned_combined": (
        "The 95%-pruned network sits at the foot of the cliff, where combined-stress accuracy depends "
        "on which few weights each replicate keeps; chapter 2 shows the spread over seeds. " + SINGLE_REPLICATE
    ),
    "A2_cliff": (
        "Where the cliff falls depends on the task's noise and the network's width (chapter 7 moves "
        "both): a curve whose collapse starts a few points of sparsity earlier or later puts the study's "
        "values at 90% and 93% outside our intervals while the shape, a steep fall between 90% and 95%, "
        "can still hold. " + SINGLE_REPLICATE
    ),
    "A3_recovered_combined": (
        "Recovery depends on the consolidation schedule and on which weights the gradient ranks first; "
        "chapter 2 compares gradient-guided with random regrowth and chapter 3 the consolidation length. "
        + SINGLE_REPLICATE
    ),
    "A4_consolidation_gain_extreme": (
        "The gain from consolidation is read at the noisiest condition, where accuracies are furthest "
        "from the ceiling and vary most between replicates and between the data sets they are trained on "
        "(chapter 2's data-set comparison). " + SINGLE_REPLICATE
    ),
    "A5_relapse_vanishes": (
        "The relapse drop after long consolidation is a difference of two accuracies near the ceiling, "
        "a fraction of a point either way, beside a spread over seeds of the same size; it depends on "
        "the consolidation lengths chapter 3 varies. " + SINGLE_REPLICATE
    ),
    "A6_iterative_sparsity": (
        "The sparsity the long chronic regimen ends at follows from its number of cycles and each "
        "cycle's regrowth fraction, and from how many weights each layer keeps after rounding; chapter 4 "
        "lists each regimen's schedule."
    ),
    "A7_iterative_extreme_gain": (
        "The iterative regimens' advantage under extreme noise is a difference between two networks, "
        "each on the steep part of the cliff, so it inherits the spread of both. " + SINGLE_REPLICATE
    ),
    "A8_iterative_relapse": (
        "A difference of relapse drops between two regimens is small beside the spread of each over "
        "seeds. " + SINGLE_REPLICATE
    ),
    "B1_ketamine_extreme": (
        "The ketamine-like arm's advantage under extreme noise comes from gradient-guided regrowth and "
        "its gain; both act on a network whose accuracy under extreme noise varies with the pruned state "
        "it starts from (chapter 5 shows the per-seed values)."
    ),
    "B3_ketamine_sparsity": (
        "The sparsity left after regrowth follows from the regrowth fraction and from how the pruned "
        "network's zero weights are counted (weights only, biases apart; chapter 5)."
    ),
    "B4_neurosteroid_combined": (
        "The neurosteroid-like arm's combined-stress accuracy is near the ceiling, where a small shift "
        "of the mean is many standard errors when the replicates agree closely."
    ),
    "B6_ssri_extreme": (
        "Under extreme noise the SSRI-like arm's accuracy depends on its noisy course's random draws and "
        "on the pruned state it starts from; chapter 5 shows the per-seed values."
    ),
    "B8_ssri_biased": (
        "The biased-stress test shifts every input towards one class: a network whose decision "
        "boundaries lie just inside or just outside the shifted cloud scores near chance or near the "
        "ceiling, so the mean over seeds depends on how many fall on each side (the discussion chapter "
        "and chapter 7 show how fragile this is)."
    ),
    "B9_ssri_gain": (
        "The gain is a setting of the SSRI-like course, not something the network learns: a run that "
        "does not reproduce it did not apply the setting, a fault of the code rather than of the model."
    ),
    "B10_all_near_ceiling": (
        "Near the ceiling, arms that differ by a fraction of a point fall on either side of the claim's "
        "bound depending on how closely the replicates agree; chapter 7 changes the task's difficulty "
        "and shows whether the claim holds there."
    ),
    "B2_ketamine_no_manic_relapse": INDICATOR,
    "B5_neurosteroid_relapse": INDICATOR
    + " The neurosteroid-like arm's protection decays after the course, so its relapse share depends "
    "on the decay rate and the maintenance durations chapter 6 runs.",
    "B7_ssri_relapse": INDICATOR + " The SSRI-like arm's relapse depends on the maintenance durations chapter 6 runs.",
    "B11_maintenance_negligible": (
        "Whether maintenance matters is read from relapse shares across durations, each a 0-or-100 "
        "indicator per replicate; with few replicates a real but small effect and none look alike."
    ),
}


def reason(claim_id: str) -> str:
    """What ``claim_id``'s number depends on (every registered claim has one; a test checks it)."""
    try:
        return REASONS[claim_id]
    except KeyError:
        raise KeyError(f"claim {claim_id!r} has no entry in pruneplast.claims.reasons.REASONS") from None
