"""Reflection: put several rollouts (with rewards and verifier feedback) and the current lessons into one
meta-prompt, ask a model what to learn, and store its reply and the lesson operations as proposals.

Nothing the model says is applied here: every operation becomes a `pending` proposal (or an `invalid`
one, with the reason) that a person accepts or rejects. The reply is stored verbatim before it is
parsed, so a reply that is not JSON is kept with the parse error and the reflection marked failed.
"""
from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

import openai

from . import models
from .lessons import Lesson, active_lessons, estimate_tokens, list_lessons, normalise_text
from .resources import read_prompt, sha256
from .settings import Endpoint, Settings
from .snapshots import snapshot_lessons
from .workspace import Workspace, new_id, now

log = logging.getLogger("lessonlab.reflection")

OPS = ("add", "edit", "merge", "retire")
MAX_MESSAGE_CHARS = 1500          # longer task prompts and outputs are cut in the middle
LOCAL_CONTEXT_CAP = 2000          # the embedded model has a 4096-token window; leave room for the reply
DEFAULT_REPLY_TOKENS = 1024


class ReflectionError(ValueError):
    """A reflection that cannot start: nothing to reflect on, unknown ids, bad arguments."""


@dataclass
class ReflectionResult:
    """What one reflection (or distill) stored."""

    reflection_id: str
    kind: str
    status: str                       # ok | failed
    error: str | None
    analysis: str | None
    proposal_ids: list[str] = field(default_factory=list)
    n_pending: int = 0
    n_invalid: int = 0
    n_included: int = 0               # rollouts in the context
    n_omitted: int = 0                # rollouts left out (held-out, failed calls, budget)
    tokens_before: int | None = None  # distill: estimated lesson tokens now
    tokens_after: int | None = None   # distill: estimate if every pending proposal were accepted

    def to_dict(self) -> dict:
        return dict(self.__dict__)


# --- selecting rollouts -------------------------------------------------------------------------------

_ROLLOUT_SQL = """
    SELECT r.id, r.run_id, r.task_id, r.sample_index, r.snapshot_id, r.status, r.reward, r.feedback, r.error,
           r.created_at, t.suite, t.name AS task, t.split, t.prompt_json, x.output
    FROM rollouts r JOIN tasks t ON t.id = r.task_id JOIN rollout_texts x ON x.rollout_id = r.id
"""


def select_rollouts(ws: Workspace, *, run_id: str | None = None, rollout_ids: list[str] | None = None,
                    suite: str | None = None, last: int | None = None) -> list[dict]:
    """The rollouts named by a run id, explicit rollout ids, or the last N runs of a suite."""
    from .queries import NotFound, resolve_id

    chosen = [bool(run_id), bool(rollout_ids), bool(suite)]
    if sum(chosen) != 1:
        raise ReflectionError("say what to reflect on: --run RUN, or --rollouts ID..., or --suite S [--last N]")
    try:
        if run_id:
            full = resolve_id(ws, "runs", run_id)
            rows = ws.query(_ROLLOUT_SQL + " WHERE r.run_id = ? ORDER BY r.created_at, r.id", (full,))
        elif rollout_ids:
            ids = [resolve_id(ws, "rollouts", ident) for ident in rollout_ids]
            rows = ws.query(_ROLLOUT_SQL + f" WHERE r.id IN ({','.join('?' * len(ids))}) ORDER BY r.created_at, r.id",
                            ids)
        else:
            if last is not None and last < 1:
                raise ReflectionError("--last must be at least 1")
            runs = ws.query("SELECT id FROM runs WHERE suite = ? ORDER BY created_at DESC LIMIT ?", (suite, last or 1))
            if not runs:
                raise ReflectionError(f"no runs of suite {suite!r} yet")
            ids = [r["id"] for r in runs]
            rows = ws.query(
                _ROLLOUT_SQL + f" WHERE r.run_id IN ({','.join('?' * len(ids))}) ORDER BY r.created_at, r.id", ids
            )
    except NotFound as exc:
        raise ReflectionError(str(exc)) from exc
    if not rows:
        raise ReflectionError("no rollouts to reflect on")
    return rows


def cut_middle(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """Text shortened to about `limit` characters by cutting out its middle, saying how much was cut."""
    text = text or ""
    if len(text) <= limit:
        return text
    keep = limit // 2
    cut = len(text) - 2 * keep
    return f"{text[:keep]}\n[… {cut} characters cut …]\n{text[-keep:]}"


def _prompt_text(prompt_json: str) -> str:
    prompt = json.loads(prompt_json)
    if isinstance(prompt, str):
        return prompt
    return "\n".join(f"[{m.get('role')}] {m.get('content')}" for m in prompt)


def _task_priority(rows: list[dict]) -> int:
    """0: samples disagree, 1: all fail, 2: all succeed — disagreement teaches the most."""
    rewards = [r["reward"] for r in rows]
    if max(rewards) - min(rewards) > 1e-9:
        return 0
    return 1 if max(rewards) < 1.0 else 2


def _spread(rows: list[dict]) -> list[dict]:
    """Samples ordered lowest, highest, next lowest, … so a tight budget still keeps both kinds."""
    ordered = sorted(rows, key=lambda r: (r["reward"], r["id"]))
    out, lo, hi = [], 0, len(ordered) - 1
    while lo <= hi:
        out.append(ordered[lo])
        if hi != lo:
            out.append(ordered[hi])
        lo, hi = lo + 1, hi - 1
    return out


@dataclass
class Context:
    """The rendered context block and the record of what went in and what was left out."""

    text: str
    included: list[str]
    omitted: list[dict]
    lesson_ids: list[str]
    task_ids: list[str]
    tokens: int


def _lessons_block(lessons: list[Lesson]) -> str:
    if not lessons:
        return "## Current lessons\n(none yet)\n"
    lines = ["## Current lessons"]
    for lesson in lessons:
        scope = "all suites" if lesson.scope is None else "suites " + ", ".join(lesson.scope)
        lines.append(f"[{lesson.id}] ({scope}, ~{lesson.tokens} tokens) {lesson.text}")
    return "\n".join(lines) + "\n"


def build_reflect_context(ws: Workspace, rows: list[dict], lessons: list[Lesson], budget_tokens: int,
                          fixed_tokens: int = 0) -> Context:
    """Group rollouts by task, prefer disagreeing or failing tasks, and fit what we can into the budget."""
    omitted: list[dict] = []
    usable: list[dict] = []
    for row in rows:
        if row["split"] != "train":
            omitted.append({"rollout_id": row["id"], "reason": f"{row['split']} task (held-out tasks stay held out)"})
        elif row["status"] != "ok" or row["reward"] is None:
            omitted.append({"rollout_id": row["id"], "reason": "the model call failed; no output to review"})
        else:
            usable.append(row)
    groups: dict[str, list[dict]] = {}
    for row in usable:
        groups.setdefault(row["task_id"], []).append(row)
    order = sorted(groups.values(), key=_task_priority)  # stable: first-seen order within a priority

    lessons_text = _lessons_block(lessons)
    used = fixed_tokens + estimate_tokens(lessons_text) + 20
    parts = [lessons_text, "## Attempts"]
    included: list[str] = []
    task_ids: list[str] = []
    snapshot_cache: dict[str, str] = {}
    for group in order:
        first = group[0]
        rewards = " ".join(f"{r['reward']:.2f}" for r in group)
        header = (f"\n### Task {first['suite']}/{first['task']} — {len(group)} attempt(s), rewards {rewards}\n"
                  f"Task prompt:\n{cut_middle(_prompt_text(first['prompt_json']))}\n")
        header_tokens = estimate_tokens(header)
        group_parts: list[str] = []
        for row in _spread(group):
            if row["snapshot_id"] not in snapshot_cache:
                held = snapshot_lessons(ws, row["snapshot_id"])
                snapshot_cache[row["snapshot_id"]] = (
                    ", ".join(f"{h['lesson_id']} v{h['version']}" for h in held) if held else "none")
            block = (f"\n#### Attempt {row['id']} — reward {row['reward']:.2f}\n"
                     f"Verifier feedback: {row['feedback'] or '(none)'}\n"
                     f"Lessons in its system prompt: {snapshot_cache[row['snapshot_id']]}\n"
                     f"Output:\n{cut_middle(row['output'] or '')}\n")
            cost = estimate_tokens(block) + (0 if group_parts else header_tokens)
            if used + cost > budget_tokens:
                omitted.append({"rollout_id": row["id"],
                                "reason": f"did not fit the context budget of {budget_tokens} tokens"})
                continue
            used += cost
            group_parts.append(block)
            included.append(row["id"])
        if group_parts:
            parts.append(header + "".join(group_parts))
            task_ids.append(first["task_id"])
    return Context("\n".join(parts), included, omitted, [lesson.id for lesson in lessons], task_ids, used)


# --- parsing and validating the reply -----------------------------------------------------------------

_FENCE_RE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)


def extract_json(text: str, keys: tuple[str, ...] = ("analysis", "operations")) -> tuple[dict | None, str | None]:
    """The reply's JSON object: the whole reply, a ```json fenced block, or the first {...} in it.

    An object having one of `keys` wins over other objects (a broken reply often contains small
    fragments that parse on their own).
    """
    text = (text or "").strip()
    if not text:
        return None, "the reply is empty"
    found: list[dict] = []
    first_error = None
    for candidate in [text, *[m.group(1).strip() for m in _FENCE_RE.finditer(text)]]:
        try:
            value = json.loads(candidate)
        except ValueError as exc:
            first_error = first_error or f"not valid JSON: {exc}"
            continue
        if isinstance(value, dict):
            found.append(value)
        else:
            first_error = first_error or f"JSON but not an object ({type(value).__name__})"
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        if any(k in v for v in found for k in keys):
            break
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except ValueError:
            continue
        if isinstance(value, dict):
            found.append(value)
    for value in found:
        if any(k in value for k in keys):
            return value, None
    if found and not first_error:
        return found[0], None
    if first_error and first_error.startswith("JSON but"):
        return None, first_error
    if "{" not in text:
        return None, "no JSON object found in the reply"
    if found:
        return None, f"no JSON object with {' or '.join(map(repr, keys))} in the reply ({first_error})"
    return None, f"no JSON object found in the reply (no complete {{...}} block; {first_error})"


def parse_reply(text: str) -> tuple[dict | None, str | None]:
    """{"analysis": str, "operations": [...]} from a reply, or (None, the reason it cannot be read)."""
    data, error = extract_json(text)
    if data is None:
        return None, error
    if "operations" not in data and "analysis" not in data:
        return None, "the JSON object has neither 'analysis' nor 'operations'"
    operations = data.get("operations", [])
    if operations is None:
        operations = []
    if not isinstance(operations, list):
        return None, f"'operations' must be a list, got {type(operations).__name__}"
    analysis = data.get("analysis")
    if analysis is not None and not isinstance(analysis, str):
        analysis = json.dumps(analysis)
    return {"analysis": analysis, "operations": operations}, None


def _as_text(value) -> str:
    return value.strip() if isinstance(value, str) else ""


def _as_id_list(value) -> list[str] | None:
    if value is None:
        return []
    if isinstance(value, str):
        return [value.strip()]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value]
    return None


def validate_operation(op: dict, *, lessons: dict[str, Lesson], evidence_ids: set[str],
                       allowed_ops: tuple[str, ...] = OPS, seen_texts: set[str] | None = None) -> dict:
    """A proposal row for one operation: status pending, or invalid with the reason."""
    row = {"op": None, "text": None, "rationale": None, "lesson_ids": [], "evidence": [], "invalid_reason": None}

    def invalid(reason: str) -> dict:
        row["invalid_reason"] = reason
        return row

    if not isinstance(op, dict):
        row["op"] = "add"
        row["text"] = json.dumps(op)[:2000]
        return invalid(f"operation is not an object: {json.dumps(op)[:80]}")
    kind = _as_text(op.get("op") or op.get("operation") or op.get("type")).lower()
    row["op"] = kind if kind in OPS else "add"
    row["text"] = _as_text(op.get("text")) or None
    row["rationale"] = _as_text(op.get("rationale")) or None
    if kind not in OPS:
        row["text"] = row["text"] or json.dumps(op)[:2000]
        return invalid(f"unknown op {op.get('op')!r} (expected one of {', '.join(allowed_ops)})")
    if kind not in allowed_ops:
        return invalid(f"{kind!r} is not allowed here (only {', '.join(allowed_ops)})")
    evidence = _as_id_list(op.get("evidence"))
    if evidence is None:
        return invalid("'evidence' must be a list of rollout ids")
    row["evidence"] = evidence
    unknown_evidence = [e for e in evidence if e not in evidence_ids]
    if kind == "merge":
        ids = _as_id_list(op.get("lessons"))
        if ids is None:
            return invalid("'lessons' must be a list of lesson ids")
    else:
        ids = _as_id_list(op.get("lesson")) if kind in ("edit", "retire") else []
        if ids is None:
            return invalid("'lesson' must be a lesson id")
    row["lesson_ids"] = ids
    if kind in ("add", "edit", "merge") and not row["text"]:
        return invalid(f"{kind} needs a non-empty 'text'")
    if kind in ("edit", "retire") and len(ids) != 1:
        return invalid(f"{kind} needs exactly one 'lesson' id")
    if kind == "merge" and len(set(ids)) < 2:
        return invalid("merge needs at least two different lesson ids in 'lessons'")
    unknown = [i for i in ids if i not in lessons]
    if unknown:
        return invalid(f"unknown or inactive lesson id(s): {', '.join(unknown)}")
    if unknown_evidence:
        return invalid(f"evidence id(s) not in the context: {', '.join(unknown_evidence)}")
    if row["text"]:
        wanted = normalise_text(row["text"])
        if kind == "add":
            for lesson in lessons.values():
                if normalise_text(lesson.text) == wanted:
                    return invalid(f"duplicates active lesson {lesson.id}")
        if kind == "edit" and normalise_text(lessons[ids[0]].text) == wanted:
            return invalid(f"the text is the same as lesson {ids[0]} already has")
        if seen_texts is not None:
            if (kind, wanted) in seen_texts:
                return invalid("the same operation appears earlier in this reply")
            seen_texts.add((kind, wanted))
    return row


# --- leakage --------------------------------------------------------------------------------------------

_STOP = set("""a an and are as at be by can do does each for from give how in into is it its make
of on one or than that the their then there this to use using what when which with without word words
your you answer form final line number numbers letter times appear reply only exactly containing
""".split())
_TOKEN_RE = re.compile(r"[A-Za-z][A-Za-z'-]*|\d+(?:\.\d+)?")
SHINGLE = 8            # a copied span is 8 or more consecutive words of a task prompt
ANSWER_WINDOW = 100    # characters either side of an answer in which task content counts as "next to"


def _words(text: str) -> list[str]:
    return [w.lower() for w in _TOKEN_RE.findall(text or "")]


def _content_tokens(text: str) -> set[str]:
    return {w for w in _words(text) if (w[0].isdigit() or len(w) >= 3) and w not in _STOP}


def _shingles(words: list[str]) -> set[tuple]:
    return {tuple(words[i:i + SHINGLE]) for i in range(len(words) - SHINGLE + 1)}


def _answers(task: dict) -> list[str]:
    values = []
    for source in (task["verifier"], task["metadata"]):
        value = source.get("answer") if isinstance(source, dict) else None
        if isinstance(value, (str, int, float)) and not isinstance(value, bool) and str(value).strip():
            values.append(str(value).strip())
        elif isinstance(value, list):
            values.extend(str(v).strip() for v in value if isinstance(v, (str, int, float)) and str(v).strip())
    return list(dict.fromkeys(values))


def leakage_pool(ws: Workspace, suites: set[str]) -> list[dict]:
    """The tasks a lesson must not leak, with their distinctive words, answers and prompt shingles."""
    if not suites:
        return []
    rows = ws.query(
        f"SELECT id, suite, name, split, prompt_json, verifier_json, metadata_json FROM tasks"
        f" WHERE suite IN ({','.join('?' * len(suites))})", sorted(suites),
    )
    tasks = []
    for row in rows:
        text = _prompt_text(row["prompt_json"])
        tasks.append({"id": row["id"], "suite": row["suite"], "name": row["name"], "split": row["split"],
                      "text": text, "verifier": json.loads(row["verifier_json"]),
                      "metadata": json.loads(row["metadata_json"]),
                      "tokens": _content_tokens(text), "shingles": _shingles(_words(text))})
    # Words and spans shared by many tasks of a suite are its boilerplate, not any one task's content.
    for suite in suites:
        members = [t for t in tasks if t["suite"] == suite]
        if len(members) < 4:
            continue
        limit = max(2, 0.3 * len(members))
        df = Counter(tok for t in members for tok in t["tokens"])
        sf = Counter(s for t in members for s in t["shingles"])
        for t in members:
            t["tokens"] = {tok for tok in t["tokens"] if df[tok] <= limit}
            t["shingles"] = {s for s in t["shingles"] if sf[s] <= limit}
    return tasks


def check_leakage(text: str, pool: list[dict]) -> list[dict]:
    """Findings for a lesson text that gives a task's expected answer next to its content or copies its prompt."""
    findings = []
    if not text:
        return findings
    lower = text.lower()
    lesson_shingles = _shingles(_words(text))
    for task in pool:
        for answer in _answers(task):
            pattern = r"(?<![\w.])" + re.escape(answer.lower()) + r"(?![\w])"
            for match in re.finditer(pattern, lower):
                window = lower[max(0, match.start() - ANSWER_WINDOW): match.end() + ANSWER_WINDOW]
                near = sorted(tok for tok in task["tokens"] if tok != answer.lower()
                              and re.search(r"(?<![\w.])" + re.escape(tok) + r"(?![\w])", window))
                if near:
                    findings.append({"kind": "answer", "task": f"{task['suite']}/{task['name']}",
                                     "task_id": task["id"], "split": task["split"],
                                     "detail": f"gives the expected answer {answer!r} next to {', '.join(near[:3])!r} "
                                               f"from that task's prompt"})
                    break
            else:
                continue
            break
        copied = lesson_shingles & task["shingles"]
        if copied:
            span = " ".join(sorted(copied)[0])
            findings.append({"kind": "copy", "task": f"{task['suite']}/{task['name']}", "task_id": task["id"],
                             "split": task["split"],
                             "detail": f"copies {len(copied) + SHINGLE - 1}+ words of that task's prompt: {span!r}…"})
    return findings


# --- the model call ---------------------------------------------------------------------------------------


def _is_http_400(exc: models.ModelCallError) -> bool:
    cause = exc.__cause__
    return isinstance(cause, openai.APIStatusError) and cause.status_code == 400


async def _call_model(endpoint: Endpoint, base_url: str | None, messages: list[dict], params: dict, *,
                      on_chunk: Callable[[str], None] | None, cancel: threading.Event | None,
                      retry: models.RetryPolicy, parts: list[str]) -> tuple[models.ChatResult, dict, list[str]]:
    """One chat call asking for a JSON object; retried once without `response_format` on HTTP 400."""
    client = models.make_client(endpoint, base_url)
    notes: list[str] = []

    def collect(chunk: str) -> None:
        parts.append(chunk)
        if on_chunk is not None:
            on_chunk(chunk)

    try:
        body = {**params, "response_format": {"type": "json_object"}}
        for attempt in range(2):
            parts.clear()
            call = asyncio.ensure_future(models.chat(client, endpoint.model, messages, body, retry=retry,
                                                     on_chunk=collect if on_chunk is not None else None))
            while not call.done():
                if cancel is not None and cancel.is_set():
                    call.cancel()
                    try:
                        await call
                    except asyncio.CancelledError:
                        pass
                    raise asyncio.CancelledError("reflection cancelled")
                await asyncio.wait({call}, timeout=0.05)
            try:
                return call.result(), body, notes
            except models.ModelCallError as exc:
                if attempt == 0 and _is_http_400(exc):
                    notes.append(f"endpoint rejected response_format ({exc}); retried without it")
                    body = dict(params)
                    continue
                raise
        raise AssertionError("unreachable")
    finally:
        try:
            await client.close()
        except Exception:  # noqa: BLE001 - closing must not hide the outcome
            log.debug("closing client failed", exc_info=True)


def _reply_params(endpoint: Endpoint, max_tokens: int | None, temperature: float | None) -> dict:
    params = {k: v for k, v in endpoint.params.items() if k not in ("seed", "response_format", "stream")}
    params["max_tokens"] = max_tokens or max(int(params.get("max_tokens") or 0), DEFAULT_REPLY_TOKENS)
    if temperature is not None:
        params["temperature"] = temperature
    return params


def context_budget(endpoint: Endpoint, settings: Settings | None, override: int | None) -> int:
    """Tokens allowed for the meta-prompt: the override, else the setting (capped for the small local model)."""
    if override:
        return override
    budget = (settings or Settings()).reflection_context_tokens
    return min(budget, LOCAL_CONTEXT_CAP) if endpoint.is_local else budget


def _render(template: str, values: dict) -> str:
    return re.sub(r"\{(" + "|".join(values) + r")\}", lambda m: str(values[m.group(1)]), template)


async def _run_reflection(
    ws: Workspace, *, kind: str, endpoint: Endpoint, base_url: str | None, prompt_name: str, template: str,
    values: dict, context: Context, lessons: dict[str, Lesson], allowed_ops: tuple[str, ...],
    rows: list[dict], params: dict, on_chunk, cancel, retry: models.RetryPolicy, leak_suites: set[str],
) -> ReflectionResult:
    prompt = _render(template, {**values, "context": context.text})
    messages = [{"role": "user", "content": prompt}]
    reflection_id = new_id("ref", 4)
    context_record = {
        "included_rollouts": context.included, "omitted_rollouts": context.omitted,
        "lessons": context.lesson_ids, "tasks": context.task_ids, "estimated_tokens": context.tokens,
        "budget_tokens": values.get("budget_tokens"),
    }
    request = {"model": endpoint.model, "messages": messages, **params, "response_format": {"type": "json_object"}}
    with ws.transaction():
        ws.db["reflections"].insert({
            "id": reflection_id, "kind": kind, "endpoint": endpoint.name, "model": endpoint.model,
            "server_model": None, "prompt_name": prompt_name, "prompt_hash": sha256(template),
            "request_json": json.dumps(request), "raw_reply": None, "analysis": None, "status": "running",
            "error": None, "context_json": json.dumps(context_record), "prompt_tokens": None,
            "completion_tokens": None, "created_at": now(),
        })
        reasons = {o["rollout_id"]: o["reason"] for o in context.omitted}
        ws.conn.executemany(
            "INSERT OR IGNORE INTO reflection_rollouts (reflection_id, rollout_id, included, reason) VALUES (?, ?, ?, ?)",
            [(reflection_id, r["id"], int(r["id"] in context.included), reasons.get(r["id"])) for r in rows],
        )
    parts: list[str] = []
    result = ReflectionResult(reflection_id, kind, "failed", None, None,
                              n_included=len(context.included), n_omitted=len(context.omitted))
    try:
        reply, body, notes = await _call_model(endpoint, base_url, messages, params, on_chunk=on_chunk,
                                               cancel=cancel, retry=retry, parts=parts)
    except (asyncio.CancelledError, models.ModelCallError, Exception) as exc:  # noqa: BLE001 - stored, never lost
        error = "cancelled" if isinstance(exc, asyncio.CancelledError) else f"model call failed: {exc}"
        with ws.transaction():
            ws.conn.execute("UPDATE reflections SET status = 'failed', error = ?, raw_reply = ? WHERE id = ?",
                            (error, "".join(parts) or None, reflection_id))
        result.error = error
        if isinstance(exc, asyncio.CancelledError) or isinstance(exc, models.ModelCallError):
            return result
        raise
    context_record["notes"] = notes
    parsed, parse_error = parse_reply(reply.output)
    proposal_rows: list[dict] = []
    if parsed is not None:
        pool = leakage_pool(ws, leak_suites)
        seen: set = set()
        for op in parsed["operations"]:
            row = validate_operation(op, lessons=lessons, evidence_ids=set(context.included),
                                     allowed_ops=allowed_ops, seen_texts=seen)
            leaks = check_leakage(row["text"], pool) if row["text"] else []
            proposal_rows.append({
                "id": new_id("prop", 4), "reflection_id": reflection_id, "op": row["op"],
                "status": "invalid" if row["invalid_reason"] else "pending",
                "text": row["text"], "rationale": row["rationale"], "lesson_ids_json": json.dumps(row["lesson_ids"]),
                "evidence_json": json.dumps(row["evidence"]), "invalid_reason": row["invalid_reason"],
                "leakage_json": json.dumps(leaks) if leaks else None, "decided_at": None, "decided_by": None,
                "decision_reason": None, "result_lesson_id": None, "created_at": now(),
            })
    with ws.transaction():
        ws.conn.execute(
            "UPDATE reflections SET status = ?, error = ?, raw_reply = ?, analysis = ?, server_model = ?,"
            " prompt_tokens = ?, completion_tokens = ?, request_json = ?, context_json = ? WHERE id = ?",
            ("ok" if parsed is not None else "failed",
             None if parsed is not None else f"could not parse the reply: {parse_error}",
             reply.output, parsed["analysis"] if parsed else None, reply.model, reply.prompt_tokens,
             reply.completion_tokens, json.dumps({"model": endpoint.model, "messages": messages, **body}),
             json.dumps(context_record), reflection_id),
        )
        if proposal_rows:
            ws.db["proposals"].insert_all(proposal_rows)
    result.status = "ok" if parsed is not None else "failed"
    result.error = None if parsed is not None else f"could not parse the reply: {parse_error}"
    result.analysis = parsed["analysis"] if parsed else None
    result.proposal_ids = [p["id"] for p in proposal_rows]
    result.n_pending = sum(p["status"] == "pending" for p in proposal_rows)
    result.n_invalid = sum(p["status"] == "invalid" for p in proposal_rows)
    return result


async def reflect_async(
    ws: Workspace, endpoint: Endpoint, *, base_url: str | None = None, run_id: str | None = None,
    rollout_ids: list[str] | None = None, suite: str | None = None, last: int | None = None,
    settings: Settings | None = None, context_tokens: int | None = None, max_tokens: int | None = None,
    temperature: float | None = None, on_chunk: Callable[[str], None] | None = None,
    cancel: threading.Event | None = None, retry: models.RetryPolicy = models.RetryPolicy(),
    prompt_name: str = "reflect.md",
) -> ReflectionResult:
    """Reflect on rollouts (a run, ids, or a suite's last runs) and store the reply and its proposals."""
    rows = select_rollouts(ws, run_id=run_id, rollout_ids=rollout_ids, suite=suite, last=last)
    suites = {r["suite"] for r in rows}
    lessons = [lesson for lesson in active_lessons(ws, None)]
    lessons += [lesson for lesson in list_lessons(ws, status="active")
                if lesson.scope is not None and suites & set(lesson.scope)]
    lessons.sort(key=lambda lesson: (lesson.created_at, lesson.seq))
    template = read_prompt(prompt_name)
    budget = context_budget(endpoint, settings, context_tokens)
    context = build_reflect_context(ws, rows, lessons, budget, fixed_tokens=estimate_tokens(template))
    if not context.included:
        reasons = Counter(o["reason"] for o in context.omitted)
        raise ReflectionError("none of these rollouts can be reflected on: "
                              + "; ".join(f"{n} × {why}" for why, n in reasons.items()))
    return await _run_reflection(
        ws, kind="reflect", endpoint=endpoint, base_url=base_url, prompt_name=prompt_name, template=template,
        values={"budget_tokens": budget}, context=context, lessons={lesson.id: lesson for lesson in lessons},
        allowed_ops=OPS, rows=rows, params=_reply_params(endpoint, max_tokens, temperature), on_chunk=on_chunk,
        cancel=cancel, retry=retry, leak_suites=suites,
    )


def reflect(ws: Workspace, endpoint: Endpoint, **kwargs) -> ReflectionResult:
    """Blocking reflect_async (for the CLI and GUI worker threads)."""
    return asyncio.run(reflect_async(ws, endpoint, **kwargs))


# --- distill ------------------------------------------------------------------------------------------------


def lesson_usage(ws: Workspace, lesson_id: str) -> dict:
    """How many scored rollouts saw this lesson and their mean reward (a rough figure, not a matched impact)."""
    row = ws.one(
        "SELECT COUNT(r.id) AS rollouts, AVG(r.reward) AS mean_reward FROM snapshot_lessons sl"
        " JOIN rollouts r ON r.snapshot_id = sl.snapshot_id WHERE sl.lesson_id = ? AND r.status = 'ok'",
        (lesson_id,),
    )
    return {"rollouts": row["rollouts"] or 0, "mean_reward": row["mean_reward"]}


def _impact_text(row) -> str:
    """Impact figures for the distill prompt: weak or harmful lessons should be the first to go."""
    if row is None:
        return "impact not measured"
    parts = [f"observed lift {row.observational.describe()}"]
    if row.confounded_with:
        parts.append("confounded with " + ", ".join(row.confounded_with))
    ablation = row.latest_ablation
    if ablation and ablation.get("lift") is not None:
        parts.append(f"ablation lift {ablation['lift']:+.2f} [{ablation['ci_low']:+.2f}, {ablation['ci_high']:+.2f}]")
    return "; ".join(parts)


def projected_tokens(lessons: list[Lesson], operations: list[dict]) -> int:
    """Estimated lesson tokens if these (valid) operations were all applied."""
    texts = {lesson.id: lesson.text for lesson in lessons}
    extra: list[str] = []
    for op in operations:
        ids = op["lesson_ids"]
        if op["op"] == "retire":
            for i in ids:
                texts.pop(i, None)
        elif op["op"] == "edit" and ids and ids[0] in texts:
            texts[ids[0]] = op["text"]
        elif op["op"] == "merge":
            for i in ids:
                texts.pop(i, None)
            extra.append(op["text"])
        elif op["op"] == "add":
            extra.append(op["text"])
    return sum(estimate_tokens(t) for t in [*texts.values(), *extra])


async def distill_async(
    ws: Workspace, endpoint: Endpoint, *, base_url: str | None = None, budget: int | None = None,
    settings: Settings | None = None, max_tokens: int | None = None, temperature: float | None = None,
    on_chunk: Callable[[str], None] | None = None, cancel: threading.Event | None = None,
    retry: models.RetryPolicy = models.RetryPolicy(), prompt_name: str = "distill.md",
) -> ReflectionResult:
    """Ask for merge/edit/retire proposals that bring the active lessons under the token budget."""
    settings = settings or Settings()
    budget = budget or settings.lesson_token_budget
    if budget < 1:
        raise ReflectionError("--budget must be at least 1 token")
    lessons = list_lessons(ws, status="active")
    if not lessons:
        raise ReflectionError("there are no active lessons to distill")
    before = sum(lesson.tokens for lesson in lessons)
    from .impact import impact_table  # impact builds on lessons; imported here to keep layers simple

    impacts = {row.lesson_id: row for row in impact_table(ws, statuses=("active",))}
    lines = ["## Active lessons"]
    for lesson in lessons:
        usage = lesson_usage(ws, lesson.id)
        scope = "all suites" if lesson.scope is None else "suites " + ", ".join(lesson.scope)
        seen = (f"seen by {usage['rollouts']} scored rollouts, mean reward {usage['mean_reward']:.2f}"
                if usage["rollouts"] else "not used in any run yet")
        lines.append(f"[{lesson.id}] ({scope}, ~{lesson.tokens} tokens; {seen}; "
                     f"{_impact_text(impacts.get(lesson.id))}) {lesson.text}")
    text = "\n".join(lines)
    context = Context(text, [], [], [lesson.id for lesson in lessons], [], estimate_tokens(text))
    template = read_prompt(prompt_name)
    result = await _run_reflection(
        ws, kind="distill", endpoint=endpoint, base_url=base_url, prompt_name=prompt_name, template=template,
        values={"tokens": before, "budget": budget}, context=context,
        lessons={lesson.id: lesson for lesson in lessons}, allowed_ops=("merge", "edit", "retire"), rows=[],
        params=_reply_params(endpoint, max_tokens, temperature), on_chunk=on_chunk, cancel=cancel, retry=retry,
        leak_suites={r["suite"] for r in ws.query("SELECT DISTINCT suite FROM tasks")},
    )
    result.tokens_before = before
    pending = [p for p in _proposal_rows(ws, result.proposal_ids) if p["status"] == "pending"]
    result.tokens_after = projected_tokens(lessons, pending)
    return result


def _proposal_rows(ws: Workspace, ids: list[str]) -> list[dict]:
    if not ids:
        return []
    rows = ws.query(f"SELECT * FROM proposals WHERE id IN ({','.join('?' * len(ids))}) ORDER BY created_at, rowid", ids)
    for row in rows:
        row["lesson_ids"] = json.loads(row["lesson_ids_json"])
    return rows


def distill(ws: Workspace, endpoint: Endpoint, **kwargs) -> ReflectionResult:
    """Blocking distill_async."""
    return asyncio.run(distill_async(ws, endpoint, **kwargs))


def list_reflections(ws: Workspace, limit: int | None = 50) -> list[dict]:
    """Reflections newest first, with proposal counts."""
    return ws.query(
        "SELECT f.id, f.kind, f.endpoint, f.model, f.status, f.error, f.created_at, f.prompt_tokens,"
        " f.completion_tokens, (SELECT COUNT(*) FROM proposals p WHERE p.reflection_id = f.id) AS proposals,"
        " (SELECT COUNT(*) FROM proposals p WHERE p.reflection_id = f.id AND p.status = 'pending') AS pending"
        " FROM reflections f ORDER BY f.created_at DESC, f.id LIMIT ?",
        (limit or -1,),
    )


def reflection_detail(ws: Workspace, ident: str) -> dict:
    """One reflection with its request, raw reply, context record, rollouts and proposals."""
    from .lessons import list_proposals
    from .queries import NotFound, resolve_id

    try:
        full = resolve_id(ws, "reflections", ident)
    except NotFound as exc:
        raise ReflectionError(str(exc)) from exc
    row = ws.one("SELECT * FROM reflections WHERE id = ?", (full,))
    row["request"] = json.loads(row.pop("request_json"))
    row["context"] = json.loads(row.pop("context_json"))
    row["rollouts"] = ws.query("SELECT rollout_id, included, reason FROM reflection_rollouts WHERE reflection_id = ?",
                               (full,))
    row["proposals"] = list_proposals(ws, status=None, reflection_id=full)
    return row
