"""CLI commands of the learning loop: lessons, export prompt, reflect, proposals, accept, reject, distill, loop."""
from __future__ import annotations

import sys
import textwrap

import click

from . import lessons as L
from . import reflection as R
from .cli import (EXIT_FAILED, CliError, cli, emit_json, endpoint_url, fmt_reward, handle_errors,
                  json_option, open_ws, workspace_option)
from .settings import load_settings
from .snapshots import current_snapshot, snapshot_lessons


def _scope_text(scope) -> str:
    return "all suites" if not scope else ",".join(scope)


def _budget_line(ws, settings) -> L.Budget:
    budget = L.budget_status(ws, settings.lesson_token_budget)
    click.echo(("warning: " if budget.over else "") + budget.message(), err=True)
    return budget


# --- lessons -----------------------------------------------------------------------------------------


@cli.group("lessons", invoke_without_command=True)
@click.option("--status", type=click.Choice(L.STATUSES), default=None, help="Only lessons with this status.")
@click.option("--all", "show_all", is_flag=True, help="Every lesson (default: active and proposed).")
@click.option("--suite", default=None, help="Only lessons a run of this suite would see.")
@workspace_option
@json_option
@click.pass_context
@handle_errors
def lessons_cmd(ctx, status, show_all, suite, workspace_path, as_json) -> None:
    """List lessons (subcommands: list, show, add, edit, retire, restore, history)."""
    if ctx.invoked_subcommand is not None:
        return
    _list_lessons(status, show_all, suite, workspace_path, as_json)


@lessons_cmd.command("list")
@click.option("--status", type=click.Choice(L.STATUSES), default=None, help="Only lessons with this status.")
@click.option("--all", "show_all", is_flag=True, help="Every lesson (default: active and proposed).")
@click.option("--suite", default=None, help="Only lessons a run of this suite would see.")
@workspace_option
@json_option
@handle_errors
def lessons_list(status, show_all, suite, workspace_path, as_json) -> None:
    """List lessons with status, scope, version and estimated tokens; warns loudly when over budget."""
    _list_lessons(status, show_all, suite, workspace_path, as_json)


def _impact_cell(row) -> str:
    if row is None:
        return "—"
    lift = row.observational
    if not lift.enough_data or lift.lift is None:
        return "not enough data"
    mark = "*" if row.confounded_with else ""
    return f"{lift.lift:+.2f} [{lift.ci_low:+.2f},{lift.ci_high:+.2f}]{mark}"


def _impact_json(row) -> dict | None:
    if row is None:
        return None
    return {"uses": row.rollouts_with, "runs": row.runs_with, "observational": row.observational.__dict__,
            "confounded_with": row.confounded_with, "latest_ablation": row.latest_ablation}


def _list_lessons(status, show_all, suite, workspace_path, as_json) -> None:
    settings = load_settings()
    ws = open_ws(workspace_path)
    rows = L.list_lessons(ws, status=status, suite=suite)
    if not status and not show_all:
        rows = [lesson for lesson in rows if lesson.status in ("active", "proposed")]
    budget = L.budget_status(ws, settings.lesson_token_budget, suite)
    from .impact import impact_table

    impacts = {row.lesson_id: row for row in impact_table(ws, suite=suite)} if rows else {}
    if as_json:
        emit_json({"lessons": [{**lesson.to_dict(), "impact": _impact_json(impacts.get(lesson.id))}
                               for lesson in rows],
                   "budget": {"tokens": budget.tokens, "budget": budget.budget, "over": budget.over,
                              "active": budget.lessons}})
        if budget.over:
            click.echo("warning: " + budget.message(), err=True)
        return
    if not rows:
        click.echo("no lessons yet; write one with `lessonlab lessons add \"...\"` or run `lessonlab reflect`")
    else:
        click.echo(f"{'lesson':<14}{'status':<10}{'ver':>4}{'tokens':>7}{'uses':>7}  {'impact (lift [95% CI])':<26}"
                   f"{'scope':<14}text")
        for lesson in rows:
            text = " ".join(lesson.text.split())
            text = text if len(text) <= 60 else text[:59] + "…"
            row = impacts.get(lesson.id)
            click.echo(f"{lesson.id:<14}{lesson.status:<10}{'v' + str(lesson.version):>4}{lesson.tokens:>7}"
                       f"{(row.rollouts_with if row else 0):>7}  {_impact_cell(row):<26}"
                       f"{_scope_text(lesson.scope)[:13]:<14}{text}")
    line = budget.message()
    if budget.over:
        click.secho("\n!! " + line, fg="red", bold=True, err=True)
    else:
        click.echo("\n" + line)


@lessons_cmd.command("show")
@click.argument("ident")
@workspace_option
@json_option
@handle_errors
def lessons_show(ident, workspace_path, as_json) -> None:
    """One lesson: full text, status, scope, provenance."""
    ws = open_ws(workspace_path)
    history = L.lesson_history(ws, ident)
    lesson = history["lesson"]
    if as_json:
        emit_json(lesson | {"reflection": history["reflection"], "used_in": history["used_in"]})
        return
    click.echo(f"lesson {lesson['id']}  [{lesson['status']}]  v{lesson['version']} ({lesson['version_id']})  "
               f"~{lesson['tokens']} tokens  scope: {_scope_text(lesson['scope'])}")
    origin = (f"from reflection {lesson['reflection_id']}" if lesson["origin"] == "reflection" else "written by hand")
    click.echo(f"origin: {origin}; created {lesson['created_at']}, updated {lesson['updated_at']}")
    click.echo(f"in {history['used_in']['snapshots']} snapshot(s), seen by {history['used_in']['rollouts']} rollout(s)")
    click.echo("\n" + lesson["text"])


def _scope_option(fn):
    return click.option("--scope", "scopes", multiple=True, metavar="SUITE",
                        help="Only for runs of this suite (repeat for several; default: all suites).")(fn)


@lessons_cmd.command("add")
@click.argument("text")
@_scope_option
@click.option("--reason", default=None, help="Why (kept in the history).")
@click.option("--proposed", is_flag=True, help="Store it as proposed (accept it later with `lessonlab accept ID`).")
@workspace_option
@json_option
@handle_errors
def lessons_add(text, scopes, reason, proposed, workspace_path, as_json) -> None:
    """Write a lesson by hand (active at once unless --proposed)."""
    ws = open_ws(workspace_path)
    change = L.add_lesson(ws, text, scope=list(scopes) or None, reason=reason,
                          status="proposed" if proposed else "active")
    _report(change, as_json, f"added lesson {change.lesson_ids[0]} ({change.statuses[change.lesson_ids[0]]})")
    _budget_line(ws, load_settings())


@lessons_cmd.command("edit")
@click.argument("ident")
@click.argument("text")
@click.option("--reason", default=None, help="Why (kept in the history).")
@_scope_option
@click.option("--all-suites", is_flag=True, help="Widen the scope to every suite.")
@workspace_option
@json_option
@handle_errors
def lessons_edit(ident, text, reason, scopes, all_suites, workspace_path, as_json) -> None:
    """Give a lesson new text (a new version; the old one stays in its history)."""
    ws = open_ws(workspace_path)
    scope = None if all_suites else (list(scopes) if scopes else "unchanged")
    change = L.edit_lesson(ws, ident, text, reason=reason, scope=scope)
    version = ws.one("SELECT version FROM lesson_versions WHERE id = ?", (change.version_ids[0],))["version"]
    _report(change, as_json, f"lesson {change.lesson_ids[0]} is now at v{version}")
    _budget_line(ws, load_settings())


@lessons_cmd.command("retire")
@click.argument("ident")
@click.option("--reason", default=None, help="Why (kept in the history).")
@workspace_option
@json_option
@handle_errors
def lessons_retire(ident, reason, workspace_path, as_json) -> None:
    """Take a lesson out of the system prompt (it stays in the database; `restore` brings it back)."""
    ws = open_ws(workspace_path)
    change = L.retire_lesson(ws, ident, reason=reason)
    _report(change, as_json, f"retired lesson {change.lesson_ids[0]}")


@lessons_cmd.command("restore")
@click.argument("ident")
@click.option("--reason", default=None, help="Why (kept in the history).")
@workspace_option
@json_option
@handle_errors
def lessons_restore(ident, reason, workspace_path, as_json) -> None:
    """Make a retired or rejected lesson active again."""
    ws = open_ws(workspace_path)
    change = L.restore_lesson(ws, ident, reason=reason)
    _report(change, as_json, f"restored lesson {change.lesson_ids[0]}")
    _budget_line(ws, load_settings())


@lessons_cmd.command("history")
@click.argument("ident")
@workspace_option
@json_option
@handle_errors
def lessons_history(ident, workspace_path, as_json) -> None:
    """A lesson's versions with diffs, its status events, and where it came from."""
    ws = open_ws(workspace_path)
    h = L.lesson_history(ws, ident)
    if as_json:
        emit_json(h)
        return
    lesson = h["lesson"]
    click.echo(f"lesson {lesson['id']}  [{lesson['status']}]  scope: {_scope_text(lesson['scope'])}")
    if lesson["origin"] == "reflection":
        ref = h["reflection"] or {}
        click.echo(f"came from reflection {lesson['reflection_id']} ({ref.get('kind', '?')} by "
                   f"{ref.get('server_model') or ref.get('model', '?')} on {ref.get('endpoint', '?')}, "
                   f"{ref.get('created_at', '?')})")
    else:
        click.echo("written by hand")
    for p in h["proposals"]:
        evidence = ", ".join(p["evidence"]) or "none cited"
        click.echo(f"  proposal {p['id']} ({p['op']}, {p['status']} by {p['decided_by'] or '—'}): "
                   f"{p['rationale'] or ''}\n    evidence rollouts: {evidence}")
    click.echo(f"used in {h['used_in']['snapshots']} snapshot(s), {h['used_in']['rollouts']} rollout(s)")
    click.echo("\nversions:")
    for v in h["versions"]:
        parents = f"  merged from {', '.join(v['parents'])}" if v["parents"] else ""
        click.echo(f"\n  v{v['version']} ({v['id']})  by {v['author']}  {v['created_at']}  ~{v['tokens_est']} tokens"
                   f"{parents}")
        if v["reason"]:
            click.echo(f"  reason: {v['reason']}")
        click.echo(textwrap.indent(v["diff"].rstrip("\n"), "    "))
    click.echo("\nevents:")
    for e in h["events"]:
        move = f"{e['from_status'] or '—'} → {e['to_status']}" if e["to_status"] else ""
        click.echo(f"  {e['created_at']}  {e['kind']:<9} {move:<22} by {e['author']}"
                   + (f": {e['reason']}" if e["reason"] else ""))


def _report(change: L.LessonChange, as_json: bool, message: str) -> None:
    if as_json:
        emit_json(change.to_dict())
    else:
        click.echo(message)


# --- export prompt -------------------------------------------------------------------------------------


@cli.group("export")
def export_cmd() -> None:
    """Export things from the workspace (subcommands: prompt)."""


@export_cmd.command("prompt")
@click.option("--suite", default=None, help="The prompt a run of this suite would get (adds lessons scoped to it).")
@workspace_option
@json_option
@handle_errors
def export_prompt(suite, workspace_path, as_json) -> None:
    """Print the current system prompt exactly as a run would send it."""
    settings = load_settings()
    ws = open_ws(workspace_path)
    snap = current_snapshot(ws, settings, suite)
    if as_json:
        emit_json({"snapshot_id": snap.id, "hash": snap.hash, "system_prompt": snap.system_prompt,
                   "lessons": snapshot_lessons(ws, snap.id)})
        return
    click.echo(f"snapshot {snap.id}, {snap.lesson_count} lesson(s)", err=True)
    sys.stdout.write(snap.system_prompt + "\n")


# --- reflect -------------------------------------------------------------------------------------------


def _endpoint_options(fn):
    fn = click.option("--endpoint", "endpoint_name", default=None,
                      help="Endpoint of the reflecting model (default: the default endpoint).")(fn)
    fn = click.option("--max-tokens", type=click.IntRange(min=16), default=None,
                      help=f"Longest reply (default: {R.DEFAULT_REPLY_TOKENS}).")(fn)
    fn = click.option("--temperature", type=float, default=None, help="Override the endpoint's temperature.")(fn)
    return fn


class _Echo:
    """Streams the reply to stderr as it arrives (unless quiet)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.any = False

    def __call__(self, chunk: str) -> None:
        if self.enabled:
            self.any = True
            click.echo(chunk, err=True, nl=False)

    def end(self) -> None:
        if self.any:
            click.echo("", err=True)


@cli.command("reflect")
@click.option("--run", "run_id", default=None, help="Reflect on this run's rollouts.")
@click.option("--rollouts", "rollout_ids", multiple=True, metavar="ID",
              help="Reflect on these rollouts (repeat the option, or give ids separated by spaces/commas).")
@click.option("--suite", default=None, help="Reflect on the last runs of this suite.")
@click.option("--last", type=click.IntRange(min=1), default=None, help="With --suite: how many runs (default 1).")
@click.option("--context-tokens", type=click.IntRange(min=200), default=None,
              help="Context budget for the meta-prompt (default: the reflection_context_tokens setting).")
@_endpoint_options
@click.option("--quiet", "-q", is_flag=True, help="Do not stream the reply to stderr.")
@workspace_option
@json_option
@handle_errors
def reflect_cmd(run_id, rollout_ids, suite, last, context_tokens, endpoint_name, max_tokens, temperature, quiet,
                workspace_path, as_json) -> None:
    """Ask a model to review rollouts with their rewards and propose lesson operations (as pending proposals)."""
    settings = load_settings()
    ws = open_ws(workspace_path)
    ids = [i for raw in rollout_ids for i in raw.replace(",", " ").split()]
    if last is not None and not suite:
        raise CliError("--last goes with --suite")
    endpoint = settings.endpoint(endpoint_name or settings.default_endpoint)
    R.select_rollouts(ws, run_id=run_id, rollout_ids=ids or None, suite=suite, last=last)  # fail fast on bad input
    echo = _Echo(not quiet and not as_json)
    with endpoint_url(endpoint, quiet=as_json) as url:
        if not as_json:
            click.echo(f"reflecting with {endpoint.name} ({endpoint.model})…", err=True)
        result = R.reflect(ws, endpoint, base_url=url, run_id=run_id, rollout_ids=ids or None, suite=suite,
                           last=last, settings=settings, context_tokens=context_tokens, max_tokens=max_tokens,
                           temperature=temperature, on_chunk=echo if echo.enabled else None)
    echo.end()
    _print_reflection(ws, result, as_json)
    if result.status != "ok":
        sys.exit(EXIT_FAILED)


def _print_reflection(ws, result: R.ReflectionResult, as_json: bool) -> None:
    if as_json:
        emit_json(result.to_dict() | {"proposals": L.list_proposals(ws, status=None,
                                                                       reflection_id=result.reflection_id)})
        return
    click.echo(f"\nreflection {result.reflection_id} ({result.kind}): {result.status}; "
               f"{result.n_included} rollout(s) in context, {result.n_omitted} left out")
    if result.status != "ok":
        click.echo(f"FAILED: {result.error}")
        click.echo(f"the reply is kept verbatim: lessonlab reflections {result.reflection_id}")
        return
    if result.analysis:
        click.echo("\nanalysis: " + result.analysis)
    props = L.list_proposals(ws, status=None, reflection_id=result.reflection_id)
    if props:
        click.echo("")
        _print_proposals(props)
    click.echo(f"\n{result.n_pending} pending, {result.n_invalid} invalid proposal(s)"
               + ("; review with `lessonlab proposals`, then `lessonlab accept ID` or `lessonlab reject ID`"
                  if result.n_pending else ""))


def _print_proposals(props: list[dict]) -> None:
    for p in props:
        target = f" {', '.join(p['lesson_ids'])}" if p["lesson_ids"] else ""
        click.echo(f"{p['id']}  {p['op']}{target}  [{p['status']}]  from {p['reflection_id']}")
        if p["text"]:
            click.echo(textwrap.indent(textwrap.fill(p["text"], 96), "    text: ", lambda line: True)
                       .replace("\n    text: ", "\n          "))
        if p["rationale"]:
            click.echo(f"    why:  {p['rationale']}")
        if p["evidence"]:
            click.echo(f"    evidence: {', '.join(p['evidence'])}")
        if p["invalid_reason"]:
            click.echo(f"    INVALID: {p['invalid_reason']}")
        for leak in p["leakage"]:
            click.echo(f"    LEAKAGE ({leak['kind']}): {leak['task']} ({leak['split']}): {leak['detail']}")


@cli.command("reflections")
@click.argument("ident", required=False)
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@workspace_option
@json_option
@handle_errors
def reflections_cmd(ident, limit, workspace_path, as_json) -> None:
    """List reflections, or show one (raw reply, what was in its context, its proposals)."""
    ws = open_ws(workspace_path)
    if not ident:
        rows = R.list_reflections(ws, limit)
        if as_json:
            emit_json(rows)
            return
        if not rows:
            click.echo("no reflections yet; try: lessonlab reflect --run RUN")
        for r in rows:
            click.echo(f"{r['id']}  {r['kind']:<8}{r['status']:<8}{r['endpoint']:<10}{r['proposals']:>3} proposals "
                       f"({r['pending']} pending)  {r['created_at']}" + (f"  {r['error']}" if r["error"] else ""))
        return
    d = R.reflection_detail(ws, ident)
    if as_json:
        emit_json(d)
        return
    click.echo(f"reflection {d['id']} ({d['kind']})  [{d['status']}]  endpoint {d['endpoint']}  "
               f"model {d['server_model'] or d['model']}  prompt {d['prompt_name']} sha256:{d['prompt_hash'][:12]}")
    included = sum(r["included"] for r in d["rollouts"])
    click.echo(f"{included} rollout(s) in context, {len(d['rollouts']) - included} left out; "
               f"tokens {d['prompt_tokens']}+{d['completion_tokens']}")
    for r in d["rollouts"]:
        if not r["included"]:
            click.echo(f"  left out {r['rollout_id']}: {r['reason']}")
    for note in d["context"].get("notes", []):
        click.echo(f"note: {note}")
    if d["error"]:
        click.echo(f"error: {d['error']}")
    click.echo(f"\n--- raw reply ---\n{d['raw_reply'] if d['raw_reply'] is not None else '(none)'}")
    if d["proposals"]:
        click.echo("\n--- proposals ---")
        _print_proposals(d["proposals"])


# --- curation ----------------------------------------------------------------------------------------


@cli.command("proposals")
@click.option("--status", type=click.Choice(["pending", "accepted", "rejected", "invalid", "all"]),
              default="pending", show_default=True)
@click.option("--reflection", "reflection_id", default=None, help="Only proposals of this reflection.")
@workspace_option
@json_option
@handle_errors
def proposals_cmd(status, reflection_id, workspace_path, as_json) -> None:
    """List proposals waiting for review (or with another status)."""
    ws = open_ws(workspace_path)
    props = L.list_proposals(ws, status=None if status == "all" else status, reflection_id=reflection_id)
    if as_json:
        emit_json(props)
        return
    proposed = L.list_lessons(ws, status="proposed") if status in ("pending", "all") else []
    if not props and not proposed:
        click.echo(f"no {'' if status == 'all' else status + ' '}proposals")
        return
    _print_proposals(props)
    for lesson in proposed:
        click.echo(f"{lesson.id}  proposed lesson (written by hand)\n    text: {lesson.text}")
    if status == "pending":
        click.echo("\naccept with `lessonlab accept ID [--text \"edited\"]`, reject with `lessonlab reject ID --reason ...`")


@cli.command("accept")
@click.argument("ident")
@click.option("--text", default=None, help="Accept with this text instead of the proposed one.")
@click.option("--reason", default=None, help="Why (kept in the history).")
@_scope_option
@workspace_option
@json_option
@handle_errors
def accept_cmd(ident, text, reason, scopes, workspace_path, as_json) -> None:
    """Accept a proposal (or a proposed lesson): apply it as a new lesson, version, merge or retirement."""
    ws = open_ws(workspace_path)
    if ident.startswith("les_"):
        if text:
            L.edit_lesson(ws, ident, text, reason=reason)
        change = L.set_proposed_lesson(ws, ident, True, reason=reason)
    else:
        change = L.accept_proposal(ws, ident, text=text, reason=reason, scope=list(scopes) or None)
    states = ", ".join(f"{lid} → {st}" for lid, st in change.statuses.items())
    _report(change, as_json, f"accepted {change.proposal_id or ident}: {states}")
    _budget_line(ws, load_settings())


@cli.command("reject")
@click.argument("ident")
@click.option("--reason", default=None, help="Why (kept with the proposal).")
@workspace_option
@json_option
@handle_errors
def reject_cmd(ident, reason, workspace_path, as_json) -> None:
    """Reject a proposal (or a proposed lesson); nothing changes in the lessons."""
    ws = open_ws(workspace_path)
    if ident.startswith("les_"):
        change = L.set_proposed_lesson(ws, ident, False, reason=reason)
    else:
        change = L.reject_proposal(ws, ident, reason=reason)
    _report(change, as_json, f"rejected {change.proposal_id or ident}")


# --- distill -------------------------------------------------------------------------------------------


@cli.command("distill")
@click.option("--budget", type=click.IntRange(min=1), default=None,
              help="Target size of the lessons block in estimated tokens (default: the lesson_token_budget setting).")
@_endpoint_options
@click.option("--quiet", "-q", is_flag=True, help="Do not stream the reply to stderr.")
@workspace_option
@json_option
@handle_errors
def distill_cmd(budget, endpoint_name, max_tokens, temperature, quiet, workspace_path, as_json) -> None:
    """Ask for merge/edit/retire proposals that bring the active lessons under the token budget."""
    settings = load_settings()
    ws = open_ws(workspace_path)
    endpoint = settings.endpoint(endpoint_name or settings.default_endpoint)
    target = budget or settings.lesson_token_budget
    echo = _Echo(not quiet and not as_json)
    with endpoint_url(endpoint, quiet=as_json) as url:
        result = R.distill(ws, endpoint, base_url=url, budget=target, settings=settings, max_tokens=max_tokens,
                           temperature=temperature, on_chunk=echo if echo.enabled else None)
    echo.end()
    _print_reflection(ws, result, as_json)
    if not as_json:
        verdict = "under" if result.tokens_after <= target else "still OVER"
        click.echo(f"lessons block: ~{result.tokens_before} tokens now → ~{result.tokens_after} if every pending "
                   f"proposal is accepted ({verdict} the {target}-token budget)")
    if result.status != "ok":
        sys.exit(EXIT_FAILED)


# --- loop ----------------------------------------------------------------------------------------------


@cli.command("loop")
@click.option("--suite", "suite_name", required=True, help="Built-in suite name or path to a JSONL file.")
@click.option("--rounds", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--samples", "-k", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N tasks of each split.")
@click.option("--endpoint", "endpoint_name", default=None, help="Endpoint that attempts the tasks.")
@click.option("--reflect-endpoint", default=None, help="Endpoint that reflects (default: --endpoint).")
@click.option("--auto-accept", type=click.Choice(["gated"]), default=None,
              help="gated: accept a proposal only if a held-out rerun with it does not lower the mean reward.")
@click.option("--max-gated", type=click.IntRange(min=1), default=3, show_default=True,
              help="Proposals tried through the gate per round.")
@click.option("--concurrency", "-c", type=click.IntRange(min=1, max=1024), default=4, show_default=True)
@click.option("--max-tokens", type=click.IntRange(min=1), default=None, help="Override max tokens of the rollouts.")
@click.option("--seed", type=int, default=None, help="Seed shared by the matched held-out runs.")
@click.option("--trust-verifiers", is_flag=True, help="Allow `python` verifiers to run code from the suite.")
@workspace_option
@json_option
@handle_errors
def loop_cmd(suite_name, rounds, samples, limit, endpoint_name, reflect_endpoint, auto_accept, max_gated,
             concurrency, max_tokens, seed, trust_verifiers, workspace_path, as_json) -> None:
    """Headless loop: run → reflect → (gated) accept → next round; prints a round-by-round table."""
    from .loop import LoopOptions, run_loop
    from .suites import load_suite

    settings = load_settings()
    ws = open_ws(workspace_path)
    suite = load_suite(suite_name)
    endpoint = settings.endpoint(endpoint_name or settings.default_endpoint)
    reflector = settings.endpoint(reflect_endpoint) if reflect_endpoint else endpoint
    options = LoopOptions(rounds=rounds, samples=samples, limit=limit, gated=auto_accept == "gated",
                          max_gated=max_gated, concurrency=concurrency, max_tokens=max_tokens, seed=seed,
                          trust_verifiers=trust_verifiers)

    def say(message: str) -> None:
        if not as_json:
            click.echo(message, err=True)

    with endpoint_url(endpoint, quiet=as_json) as url:
        if reflector.name == endpoint.name:
            result = run_loop(ws, settings, suite, endpoint, url, reflector, url, options, log=say)
        else:
            with endpoint_url(reflector, quiet=as_json) as reflect_url:
                result = run_loop(ws, settings, suite, endpoint, url, reflector, reflect_url, options, log=say)
    if as_json:
        emit_json(result.to_dict())
    else:
        click.echo(f"{'round':>5}  {'run':<16}{'train':>7}  {'reflection':<14}{'status':<8}{'pend':>5}"
                   f"{'held-out':>10}  accepted")
        for r in result.rounds:
            click.echo(f"{r.round:>5}  {r.run_id:<16}{fmt_reward(r.train_reward):>7}  {r.reflection_id or '—':<14}"
                       f"{r.reflection_status:<8}{r.n_pending:>5}{fmt_reward(r.heldout_reward):>10}  "
                       f"{', '.join(r.accepted) or '—'}")
        click.echo(f"\n{result.message}")
    if result.failed:
        sys.exit(EXIT_FAILED)
