"""The headless loop: run the train split → reflect → (optionally) gate proposals on held-out reruns → repeat.

Without the gate the loop stops after the first reflection: proposals wait for a person. With the gate,
an `add` or `retire` proposal is accepted only if a held-out rerun with it (same tasks, same seed, so
the comparison is matched) does not lower the mean reward versus the rerun without it. Proposals with
a leakage flag, and `edit`/`merge` proposals, are never accepted automatically.
"""
from __future__ import annotations

import asyncio
import random
import threading
from dataclasses import dataclass, field
from typing import Callable

from . import lessons as L
from .reflection import ReflectionError, reflect
from .runner import create_run, execute_run
from .settings import Endpoint, Settings
from .snapshots import Snapshot, base_prompt, current_snapshot, snapshot_for_lessons
from .suites import Suite
from .workspace import Workspace


@dataclass
class LoopOptions:
    """How the loop runs."""

    rounds: int = 1
    samples: int = 2
    limit: int | None = None
    gated: bool = False
    max_gated: int = 3
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
    for number in range(1, options.rounds + 1):
        if cancel is not None and cancel.is_set():
            return LoopResult(rounds, "cancelled", failed=True)
        snapshot = current_snapshot(ws, settings, suite.name)
        log(f"round {number}: running {len(train)} train task(s) × {options.samples} under {snapshot.id} "
            f"({snapshot.lesson_count} lesson(s))")
        run_id, run = _run(ws, suite, train, "train", endpoint, url, snapshot, options, options.seed,
                           f"loop round {number}: train", cancel)
        record = RoundResult(number, run_id, run.mean_reward)
        rounds.append(record)
        if run.status != "completed":
            return LoopResult(rounds, f"round {number}: train run {run_id} {run.status}", failed=True)
        log(f"round {number}: train mean reward {run.mean_reward if run.mean_reward is not None else '—'}; reflecting")
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
        _gate_round(ws, settings, suite, heldout, endpoint, url, options, record, log, cancel)
    total = sum(len(r.accepted) for r in rounds)
    return LoopResult(rounds, f"{len(rounds)} round(s) done; {total} proposal(s) accepted through the gate; "
                              f"the rest wait in `lessonlab proposals`")


def _gate_round(ws, settings, suite, heldout, endpoint, url, options, record: RoundResult, log, cancel) -> None:
    """Try this round's add/retire proposals one by one on matched held-out reruns."""
    seed = options.seed if options.seed is not None else random.randrange(2**31)
    base = base_prompt(settings)
    candidates = [p for p in L.list_proposals(ws, status="pending", reflection_id=record.reflection_id)
                  if p["op"] in ("add", "retire")]
    skipped = [p for p in candidates if p["leakage"]]
    for p in skipped:
        record.gate.append({"proposal": p["id"], "decision": "left pending", "why": "leakage flag"})
        log(f"round {record.round}: {p['id']} left pending for a person: it has a leakage flag")
    candidates = [p for p in candidates if not p["leakage"]][: options.max_gated]
    if not candidates:
        log(f"round {record.round}: no add/retire proposal to try through the gate")
        return
    snapshot = current_snapshot(ws, settings, suite.name)
    run_id, run = _run(ws, suite, heldout, "heldout", endpoint, url, snapshot, options, seed,
                       f"loop round {record.round}: held-out baseline", cancel)
    baseline = run.mean_reward
    record.heldout_baseline = record.heldout_reward = baseline
    log(f"round {record.round}: held-out baseline {baseline} ({run_id})")
    for prop in candidates:
        if cancel is not None and cancel.is_set():
            return
        try:
            trial_lessons = L.stage_proposal(ws, prop["id"], suite.name)
        except L.LessonError as exc:
            record.gate.append({"proposal": prop["id"], "decision": "left pending", "why": str(exc)})
            continue
        trial = snapshot_for_lessons(ws, base, trial_lessons)
        trial_run, result = _run(ws, suite, heldout, "heldout", endpoint, url, trial, options, seed,
                                 f"loop round {record.round}: held-out with {prop['id']}", cancel)
        with_it = result.mean_reward
        keep = with_it is not None and baseline is not None and with_it >= baseline
        why = (f"held-out mean reward {_fmt(baseline)} without → {_fmt(with_it)} with it "
               f"(runs {run_id} vs {trial_run}, seed {seed})")
        L.settle_staged(ws, prop["id"], keep, ("gate passed: " if keep else "gate failed: ") + why)
        record.gate.append({"proposal": prop["id"], "decision": "accepted" if keep else "rejected", "why": why})
        log(f"round {record.round}: {prop['id']} ({prop['op']}) {'accepted' if keep else 'rejected'}: {why}")
        if keep:
            record.accepted.append(prop["id"])
            baseline, run_id = with_it, trial_run
            record.heldout_reward = with_it
        else:
            record.rejected.append(prop["id"])


def _fmt(value) -> str:
    return "—" if value is None else f"{value:.3f}"
