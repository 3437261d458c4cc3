"""The gate's decision rule: which of one round's proposals the held-out data accepts, rejects or holds.

Pure statistics, no model calls: the loop (core/loop.py) and benchmarks/calibration.py call the same
`gate_decisions`. Each proposal has a paired held-out lift (core.impact.matched_lift: per-task difference
with − without, paired t over tasks). The proposals tried in one round form one family: Holm's step-down
procedure at FAMILY_ALPHA (two-sided) keeps the chance that a round accepts any lesson with no effect at
or below FAMILY_ALPHA / 2. The j-th strongest proposal (j = 0, 1, …) of m is judged on its
(1 − FAMILY_ALPHA / (m − j)) interval; once one is not decided, the weaker ones are held too.
"""
from __future__ import annotations

from dataclasses import dataclass

from lessonlab.core.impact import Lift, rollouts_to_settle

FAMILY_ALPHA = 0.05     # two-sided error rate per round, over all proposals tried in it
MIN_TASKS = 5           # held-out tasks scored in both runs before the gate decides anything
MIN_ROLLOUTS = 12       # held-out rollouts per arm before the gate decides (6 tasks × 2 samples)


@dataclass
class GateDecision:
    """What the gate did with one proposal, on which interval, and why."""

    decision: str                  # accepted | rejected | held
    why: str
    confidence: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None


def too_little_data(lift: Lift, min_tasks: int = MIN_TASKS, min_rollouts: int = MIN_ROLLOUTS) -> str:
    """'' when the gate may decide on this lift, else why not and roughly how many more rollouts it needs."""
    arm = min(lift.n_with, lift.n_without)
    if lift.n_units >= min_tasks and arm >= min_rollouts and lift.enough_data and lift.lift is not None:
        return ""
    per_task = arm / lift.n_units if lift.n_units else 1.0
    more_tasks = max(0, min_tasks - lift.n_units)
    more = max(2 * more_tasks * max(1.0, per_task), 2 * (min_rollouts - arm), 2)
    return (f"too little data: {lift.n_units} held-out task(s) and {arm} rollout(s) per arm scored in both runs; "
            f"the gate decides from {min_tasks} tasks and {min_rollouts} rollouts per arm "
            f"(about {int(round(more))} more rollouts)")


def gate_decisions(lifts: list[Lift], min_tasks: int = MIN_TASKS, *, min_rollouts: int = MIN_ROLLOUTS,
                   family_alpha: float = FAMILY_ALPHA) -> list[GateDecision]:
    """One decision per lift (same order): Holm over the lifts the gate has enough data to judge."""
    decisions: list[GateDecision | None] = [None] * len(lifts)
    judged = []
    for i, lift in enumerate(lifts):
        short = too_little_data(lift, min_tasks, min_rollouts)
        if short:
            decisions[i] = GateDecision("held", short)
        else:
            judged.append(i)
    m = len(judged)
    stopped = False
    for rank, i in enumerate(sorted(judged, key=lambda i: (lifts[i].p_value, i))):
        confidence = 1.0 - family_alpha / (m - rank)
        decisions[i] = _judge(lifts[i], confidence, m, stopped)
        stopped = stopped or decisions[i].decision == "held"
    return [d for d in decisions if d is not None]


def _judge(lift: Lift, confidence: float, m: int, stopped: bool) -> GateDecision:
    """Accept, reject or hold one lift on its Holm-level interval (held when a stronger one was held)."""
    if lift.std_error:
        low, high = lift.interval(confidence)
    else:
        low = high = lift.lift
    level = f"{100 * confidence:.1f}% CI" + (f" (Holm over {m} proposals)" if m > 1 else "")
    figures = f"paired held-out lift {lift.lift:+.3f}, {level} [{low:+.3f}, {high:+.3f}] over {lift.n_units} tasks"

    def held(reason: str) -> GateDecision:
        advice = rollouts_to_settle(lift, confidence)
        more = f"; too little data: about {advice} more rollouts would settle it" if advice else ""
        return GateDecision("held", f"{figures}: {reason}{more}", confidence, low, high)

    if lift.lift == 0 and low == high == 0:
        return GateDecision("held", f"{figures}: a tie, no difference at all", confidence, low, high)
    if stopped:
        return held("a proposal with stronger evidence was not decided, so Holm stops here")
    if low > 0:
        return GateDecision("accepted", f"{figures}: the whole interval is above 0", confidence, low, high)
    if high < 0:
        return GateDecision("rejected", f"{figures}: the whole interval is below 0 (it lowers held-out reward)",
                            confidence, low, high)
    return held("the interval includes 0, so the data does not show a gain")
