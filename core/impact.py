"""Impact: which rollouts saw a lesson, its matched lift with a paired t interval, ablations, timeline.

Comparisons are made per *unit* = (task, model): a rollout with the lesson is only ever compared with
rollouts of the same task answered by the same model without it. Lift = mean over units of
(mean reward with − mean reward without); the 95% interval is the paired t interval over units (the
percentile bootstrap it replaced held a +0.3 lift only 85–88% of the time on 5–6 tasks; see
benchmarks/calibration.py and docs/lessons.md).
"""
from __future__ import annotations

import json
import math
import random
import threading
from dataclasses import asdict, dataclass, field
from typing import Callable

from lessonlab.core.errors import BadInput
from lessonlab.core.student_t import t_cdf, t_quantile
from lessonlab.core.storage.workspace import Workspace, new_id, now

MIN_UNITS = 3          # fewer matched (task, model) units than this: "too little data", no interval
CONFIDENCE = 0.95
SETTLE_WIDTH = 0.1     # an interval is settled when it excludes 0 or is at most ±0.1 wide


class ImpactError(BadInput, ValueError):
    """An impact or ablation request that cannot be answered (unknown lesson, nothing to compare)."""


@dataclass
class Lift:
    """A matched lift with its paired t interval, or the reason there is none."""

    lift: float | None
    ci_low: float | None
    ci_high: float | None
    n_units: int                 # matched (task, model) pairs with data on both sides
    n_with: int                  # rollouts with the lesson in those units
    n_without: int               # rollouts without it in those units
    enough_data: bool
    note: str = ""
    std_error: float | None = None   # of the mean difference over units
    p_value: float | None = None     # two-sided paired t test of "no lift"
    more_rollouts: int | None = None  # roughly how many more rollouts would settle it (0: settled)

    def describe(self) -> str:
        """'+0.25 [+0.10, +0.40] (12 tasks)' or the reason there is no number."""
        if not self.enough_data or self.lift is None:
            return f"too little data ({self.note})" if self.note else "too little data"
        return f"{self.lift:+.2f} [{self.ci_low:+.2f}, {self.ci_high:+.2f}] ({self.n_units} tasks)"

    def interval(self, confidence: float) -> tuple[float, float]:
        """The paired t interval at another confidence level (the gate widens it for several proposals)."""
        half = t_quantile(0.5 + confidence / 2, self.n_units - 1) * self.std_error
        return self.lift - half, self.lift + half

    def settle_advice(self) -> str:
        """'' when the interval is settled, else 'too little data: …' with roughly how many more rollouts."""
        if not self.enough_data or self.lift is None:
            why = f" ({self.note})" if self.note and not self.note.startswith("confounded") else ""
            return (f"too little data{why}: at least {self.more_rollouts or 2} more rollouts with and without "
                    f"it on the same tasks before there is an interval")
        if not self.more_rollouts:
            return ""
        return (f"too little data: the interval includes 0; about {self.more_rollouts} more rollouts "
                f"would settle it")


def matched_lift(diffs: list[float], n_with: int = 0, n_without: int = 0, *,
                 confidence: float = CONFIDENCE) -> Lift:
    """Mean of per-unit differences with a paired t interval over units, its p-value and what would settle it."""
    n = len(diffs)
    per_unit = (n_with + n_without) / n if n and (n_with + n_without) else 2.0
    if n < MIN_UNITS:
        more = math.ceil((MIN_UNITS - n) * per_unit)
        return Lift(None, None, None, n, n_with, n_without, False,
                    f"{n} matched task{'s' if n != 1 else ''}, need {MIN_UNITS}", more_rollouts=more)
    mean = math.fsum(diffs) / n
    variance = math.fsum((d - mean) ** 2 for d in diffs) / (n - 1)
    se = math.sqrt(variance / n)
    if se < 1e-12:
        # Every unit moved by the same amount: there is no spread to test against.
        se, p_value = 0.0, (1.0 if abs(mean) < 1e-12 else 0.0)
    else:
        p_value = 2.0 * (1.0 - t_cdf(abs(mean) / se, n - 1))
    half = t_quantile(0.5 + confidence / 2, n - 1) * se
    # Rewards lie in [0, 1], so no lift can leave [-1, 1].
    lift = Lift(mean, max(-1.0, mean - half), min(1.0, mean + half), n, n_with, n_without, True, std_error=se,
                p_value=p_value)
    lift.more_rollouts = rollouts_to_settle(lift, confidence)
    return lift


def rollouts_to_settle(lift: Lift, confidence: float = CONFIDENCE) -> int:
    """Roughly how many more rollouts (both arms, as many per task as now) until the interval at
    `confidence` excludes 0, or is at most ±SETTLE_WIDTH wide when the lift is smaller than that; 0 when settled.

    Assumes the observed lift and spread hold: units needed n' = (t × sd / target)², rounded up.
    """
    if lift.lift is None or lift.std_error is None:
        return lift.more_rollouts or 0
    low, high = lift.interval(confidence) if lift.std_error else (lift.lift, lift.lift)
    target = max(abs(lift.lift), SETTLE_WIDTH)
    if low > 0 or high < 0 or (high - low) / 2 <= SETTLE_WIDTH:
        return 0
    n = lift.n_units
    sd = lift.std_error * math.sqrt(n)
    needed = n
    for _ in range(20):   # t depends on n' through its degrees of freedom: a few fixed-point steps
        step = max(n + 1, math.ceil((t_quantile(0.5 + confidence / 2, min(needed - 1, 1000)) * sd / target) ** 2))
        if step == needed:
            break
        needed = step
    per_unit = (lift.n_with + lift.n_without) / n if (lift.n_with + lift.n_without) else 2.0
    return math.ceil((needed - n) * per_unit)


@dataclass
class LessonImpact:
    """Everything the impact table shows for one lesson."""

    lesson_id: str
    status: str
    text: str
    tokens: int
    runs_with: int
    rollouts_with: int
    rollouts_comparable_without: int
    observational: Lift
    confounded_with: list[str] = field(default_factory=list)   # lessons that always came and went with it
    latest_ablation: dict | None = None

    def to_dict(self) -> dict:
        return asdict(self)


# --- the shared aggregate ------------------------------------------------------------------------


@dataclass
class _Cells:
    """Reward sums per (task, model, snapshot), and which lessons each snapshot holds."""

    cells: dict[tuple[str, str], dict[str, tuple[int, float]]]   # (task, model) -> snapshot -> (n, sum)
    snapshot_lessons: dict[str, frozenset[str]]


def _load_cells(ws: Workspace, suite: str | None = None) -> _Cells:
    sql = "SELECT task_id, model, snapshot_id, n, reward_sum FROM rollout_cells"
    params: list = []
    if suite:
        sql += " WHERE task_id IN (SELECT id FROM tasks WHERE suite = ?)"
        params.append(suite)
    cells: dict[tuple[str, str], dict[str, tuple[int, float]]] = {}
    for task_id, model, snap, n, s in ws.conn.execute(sql, params):
        if n > 0:
            cells.setdefault((task_id, model), {})[snap] = (n, s)
    members: dict[str, set[str]] = {}
    for snap, lesson in ws.conn.execute("SELECT snapshot_id, lesson_id FROM snapshot_lessons"):
        members.setdefault(snap, set()).add(lesson)
    return _Cells(cells, {k: frozenset(v) for k, v in members.items()})


def _impact_from_cells(data: _Cells, lesson_id: str) -> tuple[Lift, int, int, list[str]]:
    """(lift, rollouts with, comparable rollouts without, confounders) for one lesson (all its versions)."""
    empty: frozenset[str] = frozenset()

    def has(snap: str) -> bool:
        return lesson_id in data.snapshot_lessons.get(snap, empty)

    diffs: list[float] = []
    n_with_total = n_without_total = 0
    rollouts_with = 0
    with_sets: list[frozenset[str]] = []
    without_sets: list[frozenset[str]] = []
    for unit, snaps in data.cells.items():
        w_n = w_s = o_n = o_s = 0
        w_snaps, o_snaps = [], []
        for snap, (n, s) in snaps.items():
            if has(snap):
                w_n += n
                w_s += s
                w_snaps.append(snap)
            else:
                o_n += n
                o_s += s
                o_snaps.append(snap)
        rollouts_with += w_n
        if w_n and o_n:
            diffs.append(w_s / w_n - o_s / o_n)
            n_with_total += w_n
            n_without_total += o_n
            with_sets.extend(data.snapshot_lessons.get(s, empty) for s in w_snaps)
            without_sets.extend(data.snapshot_lessons.get(s, empty) for s in o_snaps)
    lift = matched_lift(diffs, n_with_total, n_without_total)
    confounders: list[str] = []
    if with_sets and without_sets:
        # Lessons present in every "with" prompt and absent from every "without" prompt moved
        # together with this one: the difference belongs to the set, not to a single culprit.
        always_with = frozenset.intersection(*with_sets)
        ever_without = frozenset.union(*without_sets)
        confounders = sorted(always_with - ever_without - {lesson_id})
    if confounders:
        lift.note = "confounded: added together with " + ", ".join(confounders)
    return lift, rollouts_with, n_without_total, confounders


# --- public queries ------------------------------------------------------------------------------


def lesson_impact(ws: Workspace, lesson_id: str, *, suite: str | None = None, _cells: _Cells | None = None) -> LessonImpact:
    """Observational impact of one lesson (all its versions together)."""
    row = ws.one(
        "SELECT l.id, l.status, v.text, v.tokens_est FROM lessons l JOIN lesson_versions v ON v.id = l.current_version_id"
        " WHERE l.id = ?",
        (lesson_id,),
    )
    if row is None:
        raise ImpactError(f"no lesson with id {lesson_id!r}")
    data = _cells or _load_cells(ws, suite)
    lift, rollouts_with, without, confounders = _impact_from_cells(data, lesson_id)
    runs_with = sum(
        1 for _ in ws.conn.execute(
            "SELECT 1 FROM runs WHERE snapshot_id IN (SELECT snapshot_id FROM snapshot_lessons WHERE lesson_id = ?)"
            + (" AND suite = ?" if suite else ""),
            (lesson_id, suite) if suite else (lesson_id,),
        )
    )
    return LessonImpact(
        lesson_id=lesson_id, status=row["status"], text=row["text"], tokens=row["tokens_est"],
        runs_with=runs_with, rollouts_with=rollouts_with, rollouts_comparable_without=without,
        observational=lift, confounded_with=confounders, latest_ablation=latest_ablation(ws, lesson_id),
    )


def impact_table(ws: Workspace, *, suite: str | None = None, statuses: tuple[str, ...] | None = None) -> list[LessonImpact]:
    """Impact of every lesson (optionally only some statuses), from one aggregate pass over the rollouts."""
    data = _load_cells(ws, suite)
    sql = "SELECT id FROM lessons"
    params: list = []
    if statuses:
        sql += f" WHERE status IN ({','.join('?' * len(statuses))})"
        params.extend(statuses)
    sql += " ORDER BY created_at, id"
    return [lesson_impact(ws, r["id"], suite=suite, _cells=data) for r in ws.query(sql, params)]


def latest_ablation(ws: Workspace, lesson_id: str) -> dict | None:
    """The most recent finished ablation of a lesson, or None."""
    row = ws.one(
        "SELECT * FROM ablations WHERE lesson_id = ? AND status = 'completed' ORDER BY created_at DESC LIMIT 1",
        (lesson_id,),
    )
    return row


def timeline(ws: Workspace, suite: str, model: str | None = None) -> list[dict]:
    """Runs of a suite in time order (per model), each with the lesson events since the previous run."""
    sql = ("SELECT id, kind, model, server_model, snapshot_id, n_done, n_errors, mean_reward, created_at,"
           " (SELECT lesson_count FROM snapshots s WHERE s.id = runs.snapshot_id) AS lessons"
           " FROM runs WHERE suite = ?")
    params: list = [suite]
    if model:
        sql += " AND COALESCE(server_model, model) = ?"
        params.append(model)
    sql += " ORDER BY created_at, id"
    runs = ws.query(sql, params)
    events = ws.query(
        "SELECT e.lesson_id, e.kind, e.from_status, e.to_status, e.author, e.reason, e.created_at, v.version"
        " FROM lesson_events e LEFT JOIN lesson_versions v ON v.id = e.version_id ORDER BY e.created_at, e.id"
    )
    out, i = [], 0
    for run in runs:
        run["model"] = run.pop("server_model") or run["model"]
        run["events_before"] = []
        # An event stamped in the same millisecond as a run is taken to come after it.
        while i < len(events) and events[i]["created_at"] < run["created_at"]:
            run["events_before"].append(events[i])
            i += 1
        out.append(run)
    return out


# --- ablation ------------------------------------------------------------------------------------


@dataclass
class AblationResult:
    """A with/without pair of runs of the same tasks and seeds, and the measured lift."""

    ablation_id: str
    lesson_id: str
    version_id: str
    run_with: str
    run_without: str
    lift: Lift
    status: str

    def to_dict(self) -> dict:
        data = asdict(self)
        data.update(data.pop("lift"))
        return data


def paired_lift(ws: Workspace, run_with: str, run_without: str) -> Lift:
    """Lift of one run over another on the tasks both scored (per-task means, paired t interval over tasks)."""
    rows = ws.query(
        "SELECT run_id, task_id, COUNT(*) AS n, AVG(reward) AS mean FROM rollouts"
        " WHERE run_id IN (?, ?) AND reward IS NOT NULL GROUP BY run_id, task_id",
        (run_with, run_without),
    )
    per: dict[str, dict[str, tuple[int, float]]] = {}
    for r in rows:
        per.setdefault(r["task_id"], {})[r["run_id"]] = (r["n"], r["mean"])
    diffs, n_w, n_o = [], 0, 0
    for task, arms in per.items():
        if run_with in arms and run_without in arms:
            diffs.append(arms[run_with][1] - arms[run_without][1])
            n_w += arms[run_with][0]
            n_o += arms[run_without][0]
    return matched_lift(diffs, n_w, n_o)


def ablation_tasks(suite_name: str, split: str, limit: int | None = None) -> tuple:
    """The suite (built-in name or JSONL path) and the tasks an ablation reruns; ImpactError when there are none."""
    # Imported here: suites load the verifiers and tool sets, which the impact table (`lessons list`) never needs.
    from lessonlab.core.tasks.suites import load_suite

    suite = load_suite(suite_name)
    tasks = suite.select(split, limit)
    if not tasks:
        raise ImpactError(f"suite {suite.name!r} has no {split} tasks")
    return suite, tasks


async def run_ablation(
    ws: Workspace,
    lesson_id: str,
    suite,
    tasks: list,
    *,
    endpoint,
    base_url: str | None,
    samples: int,
    split: str,
    settings=None,
    concurrency: int = 4,
    params: dict | None = None,
    seed: int | None = None,
    progress: Callable | None = None,
    cancel: threading.Event | None = None,
    retry=None,
) -> AblationResult:
    """Rerun tasks with the current snapshot and with the same snapshot minus the lesson, side by side."""
    # Imported here, like the runner: only an ablation runs anything, and reading impact should stay quick.
    import asyncio

    from lessonlab.core.lessons import active_lessons
    from lessonlab.core.runs.runner import create_run, execute_run
    from lessonlab.core.lessons.snapshots import base_prompt, snapshot_for_lessons

    current = active_lessons(ws, suite.name)
    target = next((lesson for lesson in current if lesson.id == lesson_id), None)
    if target is None:
        raise ImpactError(f"lesson {lesson_id} is not active for suite {suite.name!r}: nothing to ablate")
    base = base_prompt(settings)
    with_snap = snapshot_for_lessons(ws, base, current)
    without_snap = snapshot_for_lessons(ws, base, [lesson for lesson in current if lesson.id != lesson_id])
    if seed is None:
        seed = random.randrange(2**31)
    ablation_id = new_id("abl")
    note = lambda arm: json.dumps({"ablation": ablation_id, "lesson": lesson_id, "arm": arm})  # noqa: E731
    half = max(1, concurrency // 2)
    common = dict(endpoint=endpoint, samples=samples, split=split, concurrency=half, params=params, seed=seed,
                  kind="ablation")
    run_with = create_run(ws, suite, tasks, snapshot=with_snap, note=note("with"), **common)
    run_without = create_run(ws, suite, tasks, snapshot=without_snap, note=note("without"), **common)
    with ws.transaction():
        ws.db["ablations"].insert({
            "id": ablation_id, "lesson_id": lesson_id, "version_id": target.version_id, "suite": suite.name,
            "split": split, "samples": samples, "endpoint": endpoint.name, "seed": seed,
            "run_with": run_with, "run_without": run_without, "status": "running", "created_at": now(),
        })
    totals: dict[str, object] = {}

    def arm_progress(arm):
        def report(p):
            totals[arm] = p
            if progress is not None:
                progress(totals)
        return report

    kwargs = {"retry": retry} if retry is not None else {}
    status = "completed"
    try:
        # Both arms run at the same time against the same endpoint, so drift in the
        # endpoint (load, caching) hits them alike; seeds per (task, sample) are identical.
        results = await asyncio.gather(
            execute_run(ws, run_with, endpoint, base_url=base_url, progress=arm_progress("with"), cancel=cancel, **kwargs),
            execute_run(ws, run_without, endpoint, base_url=base_url, progress=arm_progress("without"), cancel=cancel,
                        **kwargs),
        )
        if any(r.status != "completed" for r in results):
            status = "interrupted" if any(r.status == "interrupted" for r in results) else "failed"
    except BaseException:
        _finish_ablation(ws, ablation_id, "interrupted", None)
        raise
    lift = paired_lift(ws, run_with, run_without)
    _finish_ablation(ws, ablation_id, status, lift)
    return AblationResult(ablation_id, lesson_id, target.version_id, run_with, run_without, lift, status)


def _finish_ablation(ws: Workspace, ablation_id: str, status: str, lift: Lift | None) -> None:
    values = {"status": status, "finished_at": now()}
    if lift is not None:
        values.update(lift=lift.lift, ci_low=lift.ci_low, ci_high=lift.ci_high, n_tasks=lift.n_units,
                      n_with=lift.n_with, n_without=lift.n_without)
    with ws.transaction():
        ws.db["ablations"].update(ablation_id, values)
