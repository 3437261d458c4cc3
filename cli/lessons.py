"""Commands for the lessons database: `lessons` (list, show, add, edit, retire, restore, history)."""
from __future__ import annotations

import textwrap

import click

from lessonlab.core import lessons as L
from lessonlab.core.impact import impact_table
from lessonlab.core.settings import load_settings
from lessonlab.core.storage.workspace import open_workspace

from .common import emit_json, fmt, handle_errors, json_option, out, workspace_option


def scope_option(fn):
    """Add --scope SUITE (repeatable) and --allow-unknown-suite to a command."""
    fn = click.option("--allow-unknown-suite", is_flag=True,
                      help="Allow --scope to name a suite that is neither built in nor run in this workspace yet.")(fn)
    return click.option("--scope", "scopes", multiple=True, metavar="SUITE",
                        help="Only for runs of this suite (repeat for several; default: all suites).")(fn)


def budget_line(ws, settings) -> L.Budget:
    """Say on stderr how big the lessons block is against its budget (a warning when over)."""
    budget = L.budget_status(ws, settings.lesson_token_budget)
    out(("warning: " if budget.over else "") + budget.message(), err=True)
    return budget


def report_change(change: L.LessonChange, as_json: bool, message: str) -> None:
    """The change as JSON, or one line for people."""
    if as_json:
        emit_json(change.to_dict())
    else:
        out(message)


@click.group("lessons", invoke_without_command=True)
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


def _impact_json(row) -> dict | None:
    if row is None:
        return None
    return {"uses": row.rollouts_with, "runs": row.runs_with, "observational": row.observational.__dict__,
            "confounded_with": row.confounded_with, "latest_ablation": row.latest_ablation}


def _list_lessons(status, show_all, suite, workspace_path, as_json) -> None:
    settings = load_settings()
    ws = open_workspace(workspace_path)
    rows = L.list_lessons(ws, status=status, suite=suite)
    if not status and not show_all:
        rows = [lesson for lesson in rows if lesson.status in ("active", "proposed")]
    budget = L.budget_status(ws, settings.lesson_token_budget, suite)
    impacts = {row.lesson_id: row for row in impact_table(ws, suite=suite)} if rows else {}
    if as_json:
        emit_json({"lessons": [{**lesson.to_dict(), "impact": _impact_json(impacts.get(lesson.id))}
                               for lesson in rows],
                   "budget": {"tokens": budget.tokens, "budget": budget.budget, "over": budget.over,
                              "active": budget.lessons}})
        if budget.over:
            out("warning: " + budget.message(), err=True)
        return
    if not rows:
        out("no lessons yet; write one with `lessonlab lessons add \"...\"` or run `lessonlab reflect`")
    else:
        out(f"{'lesson':<14}{'status':<10}{'ver':>4}{'tokens':>7}{'uses':>7}  {'impact (lift [95% CI])':<26}"
            f"{'scope':<14}text")
        for lesson in rows:
            text = fmt.one_line(lesson.text, 60)
            row = impacts.get(lesson.id)
            out(f"{lesson.id:<14}{lesson.status:<10}{'v' + str(lesson.version):>4}{lesson.tokens:>7}"
                f"{(row.rollouts_with if row else 0):>7}  {(fmt.lift(row.observational, confounded=bool(row.confounded_with)) if row else fmt.DASH):<26}"
                f"{fmt.scope(lesson.scope)[:13]:<14}{text}")
    line = budget.message()
    if budget.over:
        click.secho("\n!! " + line, fg="red", bold=True, err=True)
    else:
        out("\n" + line)


@lessons_cmd.command("show")
@click.argument("ident")
@workspace_option
@json_option
@handle_errors
def lessons_show(ident, workspace_path, as_json) -> None:
    """One lesson: full text, status, scope, provenance."""
    ws = open_workspace(workspace_path)
    history = L.lesson_history(ws, ident)
    lesson = history["lesson"]
    if as_json:
        emit_json(lesson | {"reflection": history["reflection"], "used_in": history["used_in"]})
        return
    out(f"lesson {lesson['id']}  [{lesson['status']}]  v{lesson['version']} ({lesson['version_id']})  "
        f"~{lesson['tokens']} tokens  scope: {fmt.scope(lesson['scope'])}")
    origin = (f"from reflection {lesson['reflection_id']}" if lesson["origin"] == "reflection" else "written by hand")
    out(f"origin: {origin}; created {lesson['created_at']}, updated {lesson['updated_at']}")
    out(f"in {history['used_in']['snapshots']} snapshot(s), seen by {history['used_in']['rollouts']} rollout(s)")
    out("\n" + lesson["text"])


@lessons_cmd.command("add")
@click.argument("text")
@scope_option
@click.option("--reason", default=None, help="Why (kept in the history).")
@click.option("--proposed", is_flag=True, help="Store it as proposed (accept it later with `lessonlab accept ID`).")
@workspace_option
@json_option
@handle_errors
def lessons_add(text, scopes, allow_unknown_suite, reason, proposed, workspace_path, as_json) -> None:
    """Write a lesson by hand (active at once unless --proposed)."""
    ws = open_workspace(workspace_path)
    change = L.add_lesson(ws, text, scope=list(scopes) or None, reason=reason,
                          status="proposed" if proposed else "active", allow_unknown_suite=allow_unknown_suite)
    report_change(change, as_json, f"added lesson {change.lesson_ids[0]} ({change.statuses[change.lesson_ids[0]]})")
    budget_line(ws, load_settings())


@lessons_cmd.command("edit")
@click.argument("ident")
@click.argument("text")
@click.option("--reason", default=None, help="Why (kept in the history).")
@scope_option
@click.option("--all-suites", is_flag=True, help="Widen the scope to every suite.")
@workspace_option
@json_option
@handle_errors
def lessons_edit(ident, text, reason, scopes, allow_unknown_suite, all_suites, workspace_path, as_json) -> None:
    """Give a lesson new text (a new version; the old one stays in its history)."""
    ws = open_workspace(workspace_path)
    scope = None if all_suites else (list(scopes) if scopes else "unchanged")
    change = L.edit_lesson(ws, ident, text, reason=reason, scope=scope, allow_unknown_suite=allow_unknown_suite)
    version = L.get_lesson(ws, change.lesson_ids[0]).version
    report_change(change, as_json, f"lesson {change.lesson_ids[0]} is now at v{version}")
    budget_line(ws, load_settings())


@lessons_cmd.command("retire")
@click.argument("ident")
@click.option("--reason", default=None, help="Why (kept in the history).")
@workspace_option
@json_option
@handle_errors
def lessons_retire(ident, reason, workspace_path, as_json) -> None:
    """Take a lesson out of the system prompt (it stays in the database; `restore` brings it back)."""
    ws = open_workspace(workspace_path)
    change = L.retire_lesson(ws, ident, reason=reason)
    report_change(change, as_json, f"retired lesson {change.lesson_ids[0]}")


@lessons_cmd.command("restore")
@click.argument("ident")
@click.option("--reason", default=None, help="Why (kept in the history).")
@workspace_option
@json_option
@handle_errors
def lessons_restore(ident, reason, workspace_path, as_json) -> None:
    """Make a retired or rejected lesson active again."""
    ws = open_workspace(workspace_path)
    change = L.restore_lesson(ws, ident, reason=reason)
    report_change(change, as_json, f"restored lesson {change.lesson_ids[0]}")
    budget_line(ws, load_settings())


@lessons_cmd.command("history")
@click.argument("ident")
@workspace_option
@json_option
@handle_errors
def lessons_history(ident, workspace_path, as_json) -> None:
    """A lesson's versions with diffs, its status events, and where it came from."""
    ws = open_workspace(workspace_path)
    h = L.lesson_history(ws, ident)
    if as_json:
        emit_json(h)
        return
    lesson = h["lesson"]
    out(f"lesson {lesson['id']}  [{lesson['status']}]  scope: {fmt.scope(lesson['scope'])}")
    if lesson["origin"] == "reflection":
        ref = h["reflection"] or {}
        out(f"came from reflection {lesson['reflection_id']} ({ref.get('kind', '?')} by "
            f"{ref.get('server_model') or ref.get('model', '?')} on {ref.get('endpoint', '?')}, "
            f"{ref.get('created_at', '?')})")
    else:
        out("written by hand")
    for p in h["proposals"]:
        evidence = ", ".join(p["evidence"]) or "none cited"
        out(f"  proposal {p['id']} ({p['op']}, {p['status']} by {p['decided_by'] or '—'}): "
            f"{p['rationale'] or ''}\n    evidence rollouts: {evidence}")
    out(f"used in {h['used_in']['snapshots']} snapshot(s), {h['used_in']['rollouts']} rollout(s)")
    out("\nversions:")
    for v in h["versions"]:
        parents = f"  merged from {', '.join(v['parents'])}" if v["parents"] else ""
        out(f"\n  v{v['version']} ({v['id']})  by {v['author']}  {v['created_at']}  ~{v['tokens_est']} tokens"
            f"{parents}")
        if v["reason"]:
            out(f"  reason: {v['reason']}")
        out(textwrap.indent(v["diff"].rstrip("\n"), "    "))
    out("\nevents:")
    for e in h["events"]:
        move = f"{e['from_status'] or '—'} → {e['to_status']}" if e["to_status"] else ""
        out(f"  {e['created_at']}  {e['kind']:<9} {move:<22} by {e['author']}"
            + (f": {e['reason']}" if e["reason"] else ""))
