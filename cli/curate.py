"""Commands for reviewing proposals: `proposals`, `accept`, `reject`."""
from __future__ import annotations

import click

from lessonlab.core import lessons as L
from lessonlab.core.lessons import review
from lessonlab.core.settings import load_settings
from lessonlab.core.storage.workspace import open_workspace

from .common import emit_json, handle_errors, json_option, out, workspace_option
from .lessons import budget_line, report_change, scope_option
from .reflect import print_proposals

# Proposals listed at once: a reply that proposed hundreds of operations must not flood the terminal.
PAGE_SIZE = 20


@click.command("proposals")
@click.option("--status", type=click.Choice(["pending", "accepted", "rejected", "invalid", "all"]),
              default="pending", show_default=True)
@click.option("--reflection", "reflection_id", default=None, help="Only proposals of this reflection.")
@click.option("--limit", type=click.IntRange(min=0), default=None,
              help=f"Show at most this many, oldest first (default {PAGE_SIZE}; with --json, all); 0: all.")
@click.option("--offset", type=click.IntRange(min=0), default=0, help="Skip this many first.")
@workspace_option
@json_option
@handle_errors
def proposals_cmd(status, reflection_id, limit, offset, workspace_path, as_json) -> None:
    """List proposals waiting for review (or with another status), a page at a time."""
    ws = open_workspace(workspace_path)
    if limit is None:
        limit = 0 if as_json else PAGE_SIZE
    chosen = {"status": None if status == "all" else status, "reflection_id": reflection_id}
    props = L.list_proposals(ws, **chosen, limit=limit or None, offset=offset)
    if as_json:
        emit_json(props)
        return
    more = L.count_proposals(ws, **chosen) - offset - len(props) if limit else 0
    # Lessons written by hand as proposed; a gated loop's staged lessons are shown through their proposals.
    proposed = ([lesson for lesson in L.list_lessons(ws, status="proposed") if lesson.origin == "human"]
                if status in ("pending", "all") else [])
    if not props and not proposed:
        out(f"no {'' if status == 'all' else status + ' '}proposals")
        return
    print_proposals(props)
    if more > 0:
        out(f"… {more:,} more (see them with --offset {offset + len(props)}, or all with --limit 0)")
    for lesson in proposed:
        out(f"{lesson.id}  proposed lesson (written by hand)\n    text: {lesson.text}")
    if status == "pending":
        out("\naccept with `lessonlab accept ID [--text \"edited\"]`, reject with `lessonlab reject ID --reason ...`")


@click.command("accept")
@click.argument("ident")
@click.option("--text", default=None, help="Accept with this text instead of the proposed one.")
@click.option("--reason", default=None, help="Why (kept in the history).")
@scope_option
@workspace_option
@json_option
@handle_errors
def accept_cmd(ident, text, reason, scopes, allow_unknown_suite, workspace_path, as_json) -> None:
    """Accept a proposal (or a proposed lesson): apply it as a new lesson, version, merge or retirement."""
    ws = open_workspace(workspace_path)
    change = review.accept(ws, ident, text=text, reason=reason, scope=list(scopes) or None,
                           allow_unknown_suite=allow_unknown_suite)
    states = ", ".join(f"{lid} → {st}" for lid, st in change.statuses.items())
    report_change(change, as_json, f"accepted {change.proposal_id or ident}: {states}")
    budget_line(ws, load_settings())


@click.command("reject")
@click.argument("ident")
@click.option("--reason", default=None, help="Why (kept with the proposal).")
@workspace_option
@json_option
@handle_errors
def reject_cmd(ident, reason, workspace_path, as_json) -> None:
    """Reject a proposal (or a proposed lesson); nothing changes in the lessons."""
    ws = open_workspace(workspace_path)
    change = review.reject(ws, ident, reason=reason)
    report_change(change, as_json, f"rejected {change.proposal_id or ident}")
