"""The headless loop: run the train split → reflect → (optionally) gate proposals on held-out reruns → repeat.

Without the gate the loop stops after the first reflection: proposals wait for a person. With the gate,
each `add` or `retire` proposal of a round is tried on a held-out rerun with it, against one shared rerun
without it (same tasks, same seed, so the comparison is matched per task), and the round's proposals are
decided together by core.gate.gate_decisions: paired t intervals, Holm over the round, and nothing decided
on too little data. A tie is held for a person, as are proposals with a leakage flag (answers, copied
prompts, or asking for files, credentials, URLs or sending data) and `edit`/`merge` proposals.
"""
from __future__ import annotations

import asyncio
import random
import threading
from dataclasses import dataclass, field
from typing import Callable

from lessonlab.core import lessons as L
from lessonlab.core.gate import gate_decisions
from lessonlab.core.impact import paired_lift
from lessonlab.core.reflection import ReflectionError, reflect
from lessonlab.core.reflection.leakage import reach_findings
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


def _gate_round(ws, settings, suite, heldout, endpoint, url, options, record: RoundResult, log, cancel, seed: int,
                baselines: dict) -> None:
    """Try this round's add/retire proposals on matched held-out reruns, then decide them together (core.gate).

    `baselines` maps a snapshot id to its held-out run of this loop (same tasks, same seed): reused
    while the lessons have not changed. Every trial is the current lessons plus one proposal, against
    one shared baseline, so the round's proposals form one family for Holm's procedure.
    """
    candidates = _gate_candidates(ws, record, options, log)
    if not candidates:
        return
    if len(heldout) < options.gate_min_tasks:
        for p in candidates:
            _hold(ws, record, p, f"too little data: the suite has {len(heldout)} held-out task(s) here; the gate "
                                 f"needs at least {options.gate_min_tasks} to decide", log)
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
    trials = []
    base = base_prompt(settings)
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
        trials.append((prop, trial, trial_run, result, paired_lift(ws, trial_run, run_id)))
    decisions = gate_decisions([t[4] for t in trials], options.gate_min_tasks)
    for (prop, trial, trial_run, result, lift), verdict in zip(trials, decisions):
        why = (f"{verdict.why}; held-out mean {_fmt(run.mean_reward)} without → {_fmt(result.mean_reward)} with it "
               f"(runs {run_id} vs {trial_run}, seed {seed})")
        entry = {"proposal": prop["id"], "op": prop["op"], "decision": verdict.decision, "why": why,
                 "lift": lift.lift, "ci_low": verdict.ci_low, "ci_high": verdict.ci_high,
                 "confidence": verdict.confidence, "p_value": lift.p_value, "n_tasks": lift.n_units,
                 "runs": [run_id, trial_run]}
        if verdict.decision == "held":
            _hold(ws, record, prop, why, log, entry)
            continue
        keep = verdict.decision == "accepted"
        L.settle_staged(ws, prop["id"], keep, ("gate passed: " if keep else "gate failed: ") + why)
        record.gate.append(entry)
        log(f"round {record.round}: {prop['id']} ({prop['op']}) {verdict.decision}: {why}")
        (record.accepted if keep else record.rejected).append(prop["id"])
    if len(record.accepted) == 1:
        # The one accepted trial ran under exactly the lessons now in force: it is the next baseline.
        prop, trial, trial_run, result, _lift = next(t for t in trials if t[0]["id"] == record.accepted[0])
        record.heldout_reward = result.mean_reward
        if result.status == "completed":
            baselines[trial.id] = (trial_run, result)
    elif record.accepted:
        record.heldout_reward = None   # several accepted together: their joint effect is measured next round


def _gate_candidates(ws, record: RoundResult, options: LoopOptions, log) -> list[dict]:
    """The round's add/retire proposals the gate may try; the rest are held for a person, saying why."""
    pending = L.list_proposals(ws, status="pending", reflection_id=record.reflection_id)
    candidates = []
    for p in pending:
        # Checked again here (not only when the reflection stored it): the gate never accepts a lesson
        # that reaches outside the task by itself, whatever stored the proposal.
        flags = p["leakage"] or reach_findings(p["text"] or "")
        if p["op"] not in ("add", "retire"):
            _hold(ws, record, p, f"{p['op']} proposals wait for a person", log)
        elif flags:
            kinds = ", ".join(sorted({f["kind"] for f in flags}))
            _hold(ws, record, p, f"it has a leakage flag ({kinds}); a person decides", log)
        else:
            candidates.append(p)
    for p in candidates[options.max_gated:]:
        _hold(ws, record, p, f"beyond --max-gated {options.max_gated} for this round", log)
    candidates = candidates[: options.max_gated]
    if not candidates:
        log(f"round {record.round}: no add/retire proposal to try through the gate")
    return candidates


def _hold(ws, record: RoundResult, prop: dict, why: str, log, entry: dict | None = None) -> None:
    """Leave a proposal pending for a person, noting on it why the gate did not accept it."""
    L.note_proposal(ws, prop["id"], f"gate held it (round {record.round}): {why}")
    record.held.append(prop["id"])
    record.gate.append(entry or {"proposal": prop["id"], "op": prop["op"], "decision": "held", "why": why})
    log(f"round {record.round}: {prop['id']} ({prop['op']}) held for a person: {why}")


def _fmt(value) -> str:
    return "—" if value is None else f"{value:.3f}"
