"""The headless loop: run the train split → reflect → (optionally) gate proposals on held-out reruns → repeat.

Without the gate the loop stops after the first reflection: proposals wait for a person. With the gate,
an `add` or `retire` proposal is tried on a held-out rerun with it and one without it (same tasks, same
seed, so the comparison is matched per task) and accepted only when the data shows a gain: the lower
end of the 95% bootstrap interval of the per-task difference is above 0, over at least
`gate_min_tasks` held-out tasks (see gate_decision). A tie is held for a person, as are proposals with
a leakage flag and `edit`/`merge` proposals.
"""
from __future__ import annotations

import asyncio
import random
import threading
from dataclasses import dataclass, field
from typing import Callable

from lessonlab.core import lessons as L
from lessonlab.core.impact import Lift, paired_lift
from lessonlab.core.reflection import ReflectionError, reflect
from lessonlab.core.runs.runner import create_run, execute_run
from lessonlab.core.settings import Endpoint, Settings
from lessonlab.core.lessons.snapshots import Snapshot, base_prompt, current_snapshot, snapshot_for_lessons
from lessonlab.core.tasks.suites import Suite
from lessonlab.core.storage.workspace import Workspace


@dataclass
class LoopOptions:
    """How the loop runs."""

    rounds: int = 1
    samples: int = 2
    limit: int | None = None
    gated: bool = False
    max_gated: int = 3
    gate_min_tasks: int = 5      # held-out tasks the gate needs before it accepts (or rejects) anything
    concurrency: int = 4
    max_tokens: int | None = None
    seed: int | None = None
    trust_verifiers: bool = False


@dataclass
class RoundResult:
    """One round: the train run, the reflection and what the gate decided."""

    round: int
    run_id: str
    train_reward: float | None
    reflection_id: str | None = None
    reflection_status: str = "—"
    n_pending: int = 0
    heldout_reward: float | None = None          # held-out mean under the lessons in force at the end of the round
    heldout_baseline: float | None = None        # held-out mean before any proposal of this round
    accepted: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)  # left pending for a person, with the reason noted on them
    gate: list[dict] = field(default_factory=list)


@dataclass
class LoopResult:
    """Every round and how the loop ended."""

    rounds: list[RoundResult]
    message: str
    failed: bool = False
    needs_review: bool = False

    def to_dict(self) -> dict:
        return {"rounds": [r.__dict__ for r in self.rounds], "message": self.message, "failed": self.failed,
                "needs_review": self.needs_review}


def _run(ws, suite, tasks, split, endpoint, url, snapshot: Snapshot, options: LoopOptions, seed, note, cancel):
    run_id = create_run(ws, suite, tasks, endpoint=endpoint, snapshot=snapshot, samples=options.samples,
                        split=split, limit=options.limit, concurrency=options.concurrency,
                        params={"max_tokens": options.max_tokens}, seed=seed,
                        trust_verifiers=options.trust_verifiers, kind="loop", note=note)
    result = asyncio.run(execute_run(ws, run_id, endpoint, base_url=url, cancel=cancel))
    return run_id, result


def run_loop(ws: Workspace, settings: Settings, suite: Suite, endpoint: Endpoint, url: str | None,
             reflector: Endpoint, reflect_url: str | None, options: LoopOptions, *,
             log: Callable[[str], None] = lambda message: None, cancel: threading.Event | None = None) -> LoopResult:
    """Run the loop for `options.rounds` rounds (or until it needs a person); return a round-by-round record."""
    train = suite.select("train", options.limit)
    heldout = suite.select("heldout", options.limit)
    if not train:
        raise L.LessonError(f"suite {suite.name!r} has no train tasks")
    if options.gated and not heldout:
        raise L.LessonError(f"suite {suite.name!r} has no held-out tasks; the gate needs them")
    rounds: list[RoundResult] = []
    # One seed for every held-out run of the loop, so a baseline under an unchanged snapshot is reused.
    gate_seed = options.seed if options.seed is not None else random.randrange(2**31)
    baselines: dict[str, tuple] = {}
    for number in range(1, options.rounds + 1):
        if cancel is not None and cancel.is_set():
            return LoopResult(rounds, "cancelled", failed=True)
        snapshot = current_snapshot(ws, settings, suite.name)
        log(f"round {number}: running {len(train)} train task(s) × {options.samples} under {snapshot.id} "
            f"({snapshot.lesson_count} lesson(s))")
        # A new train seed each round: an unchanged snapshot still shows the reflection new samples.
        train_seed = options.seed + number - 1 if options.seed is not None else None
        run_id, run = _run(ws, suite, train, "train", endpoint, url, snapshot, options, train_seed,
                           f"loop round {number}: train", cancel)
        record = RoundResult(number, run_id, run.mean_reward)
        rounds.append(record)
        if run.status != "completed":
            return LoopResult(rounds, f"round {number}: train run {run_id} {run.status}", failed=True)
        log(f"round {number}: train mean reward {_fmt(run.mean_reward)}; reflecting")
        try:
            reflection = reflect(ws, reflector, base_url=reflect_url, run_id=run_id, settings=settings)
        except ReflectionError as exc:
            return LoopResult(rounds, f"round {number}: cannot reflect: {exc}", failed=True)
        record.reflection_id, record.reflection_status = reflection.reflection_id, reflection.status
        record.n_pending = reflection.n_pending
        if reflection.status != "ok":
            log(f"round {number}: reflection {reflection.reflection_id} failed: {reflection.error}")
        if not options.gated:
            message = (f"stopped after reflecting: {reflection.n_pending} pending proposal(s) from "
                       f"{reflection.reflection_id}; review them with `lessonlab proposals`, accept or reject, "
                       f"then run the loop again (or pass --auto-accept gated)")
            return LoopResult(rounds, message, needs_review=reflection.n_pending > 0)
        _gate_round(ws, settings, suite, heldout, endpoint, url, options, record, log, cancel, gate_seed, baselines)
    total = sum(len(r.accepted) for r in rounds)
    held = sum(len(r.held) for r in rounds)
    return LoopResult(rounds, f"{len(rounds)} round(s) done; {total} proposal(s) accepted through the gate, "
                              f"{held} held for review in `lessonlab proposals`",
                      needs_review=held > 0)


def gate_decision(lift: Lift, min_tasks: int) -> tuple[str, str]:
    """('accepted' | 'held' | 'rejected', why) from the paired held-out lift of a proposal.

    Accepted only when the lower end of the 95% bootstrap interval of the per-task difference is above
    0 over at least `min_tasks` held-out tasks; rejected when the upper end is below 0 (it clearly
    hurts); held for a person otherwise — a tie (0.000 vs 0.000) included.
    """
    if lift.n_units < min_tasks or not lift.enough_data or lift.lift is None:
        return "held", (f"only {lift.n_units} held-out task(s) scored in both runs; the gate needs at least "
                        f"{min_tasks} to decide")
    figures = (f"paired held-out lift {lift.lift:+.3f}, 95% CI [{lift.ci_low:+.3f}, {lift.ci_high:+.3f}] "
               f"over {lift.n_units} tasks")
    if lift.ci_low > 0:
        return "accepted", f"{figures}: the whole interval is above 0"
    if lift.ci_high < 0:
        return "rejected", f"{figures}: the whole interval is below 0 (it lowers held-out reward)"
    if lift.lift == 0 and lift.ci_low == lift.ci_high == 0:
        return "held", f"{figures}: a tie, no difference at all"
    return "held", f"{figures}: the interval includes 0, so the data does not show a gain"


def _gate_round(ws, settings, suite, heldout, endpoint, url, options, record: RoundResult, log, cancel, seed: int,
                baselines: dict) -> None:
    """Try this round's add/retire proposals one by one on matched held-out reruns (see gate_decision).

    `baselines` maps a snapshot id to its held-out run of this loop (same tasks, same seed): reused
    while the lessons have not changed.
    """
    base = base_prompt(settings)
    pending = L.list_proposals(ws, status="pending", reflection_id=record.reflection_id)
    for p in pending:
        why = None
        if p["op"] not in ("add", "retire"):
            why = f"{p['op']} proposals wait for a person"
        elif p["leakage"]:
            why = "it has a leakage flag"
        if why:
            _hold(ws, record, p, why, log)
    candidates = [p for p in pending if p["op"] in ("add", "retire") and not p["leakage"]]
    for p in candidates[options.max_gated:]:
        _hold(ws, record, p, f"beyond --max-gated {options.max_gated} for this round", log)
    candidates = candidates[: options.max_gated]
    if not candidates:
        log(f"round {record.round}: no add/retire proposal to try through the gate")
        return
    if len(heldout) < options.gate_min_tasks:
        for p in candidates:
            _hold(ws, record, p, f"the suite has {len(heldout)} held-out task(s) here; the gate needs at least "
                                 f"{options.gate_min_tasks} to decide", log)
        return
    snapshot = current_snapshot(ws, settings, suite.name)
    if snapshot.id in baselines:
        run_id, run = baselines[snapshot.id]
        log(f"round {record.round}: held-out baseline {_fmt(run.mean_reward)} ({run_id}, reused: same lessons)")
    else:
        run_id, run = _run(ws, suite, heldout, "heldout", endpoint, url, snapshot, options, seed,
                           f"loop round {record.round}: held-out baseline", cancel)
        log(f"round {record.round}: held-out baseline {_fmt(run.mean_reward)} ({run_id})")
        if run.status == "completed":
            baselines[snapshot.id] = (run_id, run)
    record.heldout_baseline = record.heldout_reward = run.mean_reward
    for prop in candidates:
        if cancel is not None and cancel.is_set():
            return
        try:
            trial_lessons = L.stage_proposal(ws, prop["id"], suite.name)
        except L.LessonError as exc:
            _hold(ws, record, prop, str(exc), log)
            continue
        trial = snapshot_for_lessons(ws, base, trial_lessons)
        trial_run, result = _run(ws, suite, heldout, "heldout", endpoint, url, trial, options, seed,
                                 f"loop round {record.round}: held-out with {prop['id']}", cancel)
        lift = paired_lift(ws, trial_run, run_id)
        decision, why = gate_decision(lift, options.gate_min_tasks)
        why = (f"{why}; held-out mean {_fmt(run.mean_reward)} without → {_fmt(result.mean_reward)} with it "
               f"(runs {run_id} vs {trial_run}, seed {seed})")
        entry = {"proposal": prop["id"], "op": prop["op"], "decision": decision, "why": why, "lift": lift.lift,
                 "ci_low": lift.ci_low, "ci_high": lift.ci_high, "n_tasks": lift.n_units,
                 "runs": [run_id, trial_run]}
        if decision == "held":
            _hold(ws, record, prop, why, log, entry)
            continue
        keep = decision == "accepted"
        L.settle_staged(ws, prop["id"], keep, ("gate passed: " if keep else "gate failed: ") + why)
        record.gate.append(entry)
        log(f"round {record.round}: {prop['id']} ({prop['op']}) {decision}: {why}")
        if keep:
            record.accepted.append(prop["id"])
            run_id, run = trial_run, result
            if result.status == "completed":
                baselines[trial.id] = (trial_run, result)
            record.heldout_reward = result.mean_reward
        else:
            record.rejected.append(prop["id"])


def _hold(ws, record: RoundResult, prop: dict, why: str, log, entry: dict | None = None) -> None:
    """Leave a proposal pending for a person, noting on it why the gate did not accept it."""
    L.note_proposal(ws, prop["id"], f"gate held it (round {record.round}): {why}")
    record.held.append(prop["id"])
    record.gate.append(entry or {"proposal": prop["id"], "op": prop["op"], "decision": "held", "why": why})
    log(f"round {record.round}: {prop['id']} ({prop['op']}) held for a person: {why}")


def _fmt(value) -> str:
    return "—" if value is None else f"{value:.3f}"
