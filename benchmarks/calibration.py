"""Is the gate calibrated? A simulated endpoint through the real impact estimator and the real gate rule.

The simulated endpoint answers held-out task t right with a known probability p_t (drawn from
U(0.2, 0.7) for each round's tasks); a lesson in the prompt adds a known true effect to every p_t
(0, +0.1, +0.2, +0.3 or −0.1). A round is what `lessonlab loop --auto-accept gated` does: one baseline
run of n tasks × k samples, one trial run per proposal (same tasks), each proposal's paired lift from
`core.impact.matched_lift`, the decisions from `core.gate.gate_decisions` — the same two functions the
loop calls. Seeded, so every run prints the same figures.

Prints `name: value` lines:
- coverage_NxK: share of rounds whose 95% interval holds the true effect (pooled over the five effects;
  _worst is the lowest single effect), for N in 5, 10, 20, 50 tasks and K in 1, 2, 4 samples; target 0.93–0.97
  wherever gate_decides_NxK is yes;
- false_accept_rounds_NxK: share of rounds with three no-effect proposals in which the gate accepts any
  (family-wise); target ≤ 0.05;
- power_E_20x4: share of rounds (the lesson plus two no-effect proposals) in which a lesson with true
  effect E is accepted (for −0.1: rejected_… too); target ≥ 0.80 for +0.3;
- rollouts_for_80pct_power_E: the fewest held-out rollouts (baseline + trial, tasks × samples each) at
  which a lesson with effect E is accepted in ≥ 80% of such rounds.
- before_*: the rule this replaced, for comparison — coverage of the old 95% percentile bootstrap, and
  false_accept_rounds for "any of three proposals with its bootstrap (or plain t) interval above 0".
`--quick` runs fewer rounds (a few seconds; figures within a few points of the full run).
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from lessonlab.core.gate import gate_decisions, too_little_data
from lessonlab.core.impact import matched_lift

TASKS = (5, 10, 20, 50)
SAMPLES = (1, 2, 4)
EFFECTS = (0.0, 0.1, 0.2, 0.3, -0.1)
PROPOSALS = 3          # the loop's --max-gated default: proposals tried per round
SEED = 20261129


class SimulatedEndpoint:
    """Held-out tasks answered right with a known probability each; a lesson shifts every probability."""

    def __init__(self, rng: np.random.Generator, n_tasks: int):
        self.rng = rng
        self.p_right = rng.uniform(0.2, 0.7, n_tasks)

    def run(self, samples: int, effect: float = 0.0) -> np.ndarray:
        """Mean reward per task over `samples` answers, with a lesson of this true effect in the prompt."""
        p = np.clip(self.p_right + effect, 0.0, 1.0)
        return self.rng.binomial(samples, p) / samples


def round_lifts(endpoint: SimulatedEndpoint, samples: int, effects: list[float]) -> list:
    """One gated round: a shared baseline run, one trial run per proposal, each proposal's paired lift."""
    baseline = endpoint.run(samples)
    rollouts = len(baseline) * samples
    return [matched_lift((endpoint.run(samples, e) - baseline).tolist(), rollouts, rollouts) for e in effects]


def coverage(n: int, k: int, rounds: int, seed: int) -> tuple[float, float]:
    """(pooled, worst effect) share of 95% intervals that hold the true effect."""
    rng = np.random.default_rng(seed)
    shares = []
    for effect in EFFECTS:
        hits = 0
        for _ in range(rounds):
            (lift,) = round_lifts(SimulatedEndpoint(rng, n), k, [effect])
            hits += lift.enough_data and lift.ci_low - 1e-9 <= effect <= lift.ci_high + 1e-9
        shares.append(hits / rounds)
    return sum(shares) / len(shares), min(shares)


def decide_rounds(n: int, k: int, effects: list[float], rounds: int, seed: int) -> list[list[str]]:
    """The gate's decisions over many simulated rounds with proposals of these true effects."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(rounds):
        lifts = round_lifts(SimulatedEndpoint(rng, n), k, effects)
        out.append([d.decision for d in gate_decisions(lifts)])
    return out


def gate_decides(n: int, k: int) -> bool:
    """Whether the gate is willing to decide at n tasks × k samples (else it holds, saying so)."""
    return not too_little_data(matched_lift([0.5] * n, n * k, n * k))


def percentile_bootstrap(diffs: list[float], rng: np.random.Generator, samples: int = 1000) -> tuple[float, float]:
    """The 95% percentile bootstrap interval the impact estimator used before (for the before_* figures)."""
    means = np.sort(rng.choice(np.asarray(diffs), size=(samples, len(diffs))).mean(axis=1))
    return means[int(0.025 * (samples - 1))], means[int(round(0.975 * (samples - 1)))]


def before(rounds: int) -> None:
    """Coverage of the old bootstrap, and the old rule's family-wise false accepts, at the sizes the issue measured."""
    for n, k in ((5, 1), (6, 2), (20, 2), (20, 4)):
        rng = np.random.default_rng(SEED + 17 + n * k)
        hits = boot_any = t_any = 0
        for _ in range(rounds):
            endpoint = SimulatedEndpoint(rng, n)
            baseline = endpoint.run(k)
            diffs = [(endpoint.run(k, e) - baseline).tolist() for e in (0.3, 0.0, 0.0, 0.0)]
            low, high = percentile_bootstrap(diffs[0], rng)
            hits += low - 1e-9 <= 0.3 <= high + 1e-9
            boot_any += any(percentile_bootstrap(d, rng)[0] > 0 for d in diffs[1:])
            t_any += any(matched_lift(d, n * k, n * k).ci_low > 0 for d in diffs[1:])
        print(f"before_bootstrap_coverage_{n}x{k}: {hits / rounds:.3f}")
        print(f"before_bootstrap_false_accept_rounds_{n}x{k}: {boot_any / rounds:.3f}")
        print(f"before_t_without_holm_false_accept_rounds_{n}x{k}: {t_any / rounds:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, for a fast look")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per figure (default 2000, quick 300)")
    args = parser.parse_args()
    rounds = args.rounds or (300 if args.quick else 2000)
    power_rounds = max(100, rounds // 4)
    started = time.perf_counter()
    print(f"rounds_per_figure: {rounds}")
    for n in TASKS:
        for k in SAMPLES:
            pooled, worst = coverage(n, k, rounds, SEED + 100 * n + k)
            print(f"coverage_{n}x{k}: {pooled:.3f}")
            print(f"coverage_{n}x{k}_worst: {worst:.3f}")
            print(f"gate_decides_{n}x{k}: {'yes' if gate_decides(n, k) else 'no (holds: too little data)'}")
    for n, k in [(6, 2), *((n, k) for n in TASKS for k in SAMPLES)]:
        decided = decide_rounds(n, k, [0.0] * PROPOSALS, rounds, SEED + 7 + 100 * n + k)
        share = sum("accepted" in d for d in decided) / rounds
        print(f"false_accept_rounds_{n}x{k}: {share:.3f}")
    for effect in EFFECTS:
        decided = decide_rounds(20, 4, [effect] + [0.0] * (PROPOSALS - 1), rounds, SEED + 11 + int(effect * 100))
        print(f"power_{effect:+.1f}_20x4: {sum(d[0] == 'accepted' for d in decided) / rounds:.3f}")
        if effect < 0:
            print(f"rejected_{effect:+.1f}_20x4: {sum(d[0] == 'rejected' for d in decided) / rounds:.3f}")
    for effect in (0.1, 0.2, 0.3):
        print(f"rollouts_for_80pct_power_{effect:+.1f}: {rollouts_for_power(effect, power_rounds)}")
    before(rounds)
    print(f"seconds: {time.perf_counter() - started:.1f}")


def rollouts_for_power(effect: float, rounds: int) -> str:
    """The fewest rollouts (2 × tasks × samples) at which the lesson is accepted in ≥ 80% of rounds."""
    best = None
    for k in SAMPLES:
        for n in (5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50, 60, 80, 100, 130, 160, 200):
            if best is not None and 2 * n * k >= best[0]:
                break
            decided = decide_rounds(n, k, [effect] + [0.0] * (PROPOSALS - 1), rounds, SEED + 13 + n * k)
            if sum(d[0] == "accepted" for d in decided) / rounds >= 0.8:
                best = (2 * n * k, n, k)
                break
    if best is None:
        return "over 2000"
    return f"{best[0]} ({best[1]} tasks × {best[2]} sample{'s' if best[2] != 1 else ''}, both runs)"


if __name__ == "__main__":
    main()
