"""Commands that ask a model about rollouts or lessons: `reflect`, `reflections`, `distill`."""
from __future__ import annotations

import sys
import textwrap

import click

from lessonlab.core import lessons as L
from lessonlab.core import reflection as R
from lessonlab.core.settings import load_settings
from lessonlab.core.storage.workspace import open_workspace

from .common import (EXIT_FAILED, CliError, checked, emit_json, endpoint_url, handle_errors, json_option, out,
                     workspace_option)


def endpoint_options(fn):
    """Add --endpoint, --max-tokens and --temperature for the reflecting model."""
    fn = click.option("--endpoint", "endpoint_name", default=None,
                      help="Endpoint of the reflecting model (default: the default endpoint).")(fn)
    fn = click.option("--max-tokens", type=click.IntRange(min=16), default=None,
                      help=f"Longest reply (default: {R.DEFAULT_REPLY_TOKENS}).")(fn)
    fn = click.option("--temperature", type=float, default=None, callback=checked("temperature"),
                      help="Override the endpoint's temperature.")(fn)
    return fn


class _Echo:
    """Streams the reply to stderr as it arrives (unless quiet)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.any = False

    def __call__(self, chunk: str) -> None:
        if self.enabled:
            self.any = True
            out(chunk, err=True, nl=False)

    def end(self) -> None:
        if self.any:
            out("", err=True)


@click.command("reflect")
@click.option("--run", "run_id", default=None, help="Reflect on this run's rollouts.")
@click.option("--rollouts", "rollout_ids", multiple=True, metavar="ID",
              help="Reflect on these rollouts (repeat the option, or give ids separated by spaces/commas).")
@click.option("--suite", default=None, help="Reflect on the last runs of this suite.")
@click.option("--last", type=click.IntRange(min=1), default=None, help="With --suite: how many runs (default 1).")
@click.option("--context-tokens", type=click.IntRange(min=200), default=None,
              help="Context budget for the meta-prompt (default: the reflection_context_tokens setting).")
@endpoint_options
@click.option("--quiet", "-q", is_flag=True, help="Do not stream the reply to stderr.")
@workspace_option
@json_option
@handle_errors
def reflect_cmd(run_id, rollout_ids, suite, last, context_tokens, endpoint_name, max_tokens, temperature, quiet,
                workspace_path, as_json) -> None:
    """Ask a model to review rollouts with their rewards and propose lesson operations (as pending proposals)."""
    settings = load_settings()
    ws = open_workspace(workspace_path)
    ws.require_writable()
    ids = [i for raw in rollout_ids for i in raw.replace(",", " ").split()]
    if last is not None and not suite:
        raise CliError("--last goes with --suite")
    endpoint = settings.endpoint(endpoint_name or settings.default_endpoint)
    R.select_rollouts(ws, run_id=run_id, rollout_ids=ids or None, suite=suite, last=last)  # fail fast on bad input
    echo = _Echo(not quiet and not as_json)
    with endpoint_url(endpoint, quiet=as_json) as url:
        if not as_json:
            out(f"reflecting with {endpoint.name} ({endpoint.model})…", err=True)
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
    out(f"\nreflection {result.reflection_id} ({result.kind}): {result.status}; "
        f"{result.n_included} rollout(s) in context, {result.n_omitted} left out; "
        f"response mode {result.response_mode or '—'}")
    if result.status != "ok":
        out(f"FAILED: {result.error}")
        out(f"the reply is kept verbatim: lessonlab reflections {result.reflection_id}")
        return
    if result.analysis:
        out("\nanalysis: " + result.analysis)
    props = L.list_proposals(ws, status=None, reflection_id=result.reflection_id)
    if props:
        out("")
        print_proposals(props)
    out(f"\n{result.n_pending} pending, {result.n_invalid} invalid proposal(s)"
        + ("; review with `lessonlab proposals`, then `lessonlab accept ID` or `lessonlab reject ID`"
                  if result.n_pending else ""))


def print_proposals(props: list[dict]) -> None:
    for p in props:
        target = f" {', '.join(p['lesson_ids'])}" if p["lesson_ids"] else ""
        out(f"{p['id']}  {p['op']}{target}  [{p['status']}]  from {p['reflection_id']}")
        if p["text"]:
            out(textwrap.indent(textwrap.fill(p["text"], 96), "    text: ", lambda line: True)
                       .replace("\n    text: ", "\n          "))
        if p["rationale"]:
            out(f"    why:  {p['rationale']}")
        if p["evidence"]:
            out(f"    evidence: {', '.join(p['evidence'])}")
        if p.get("evidence_steps"):
            out(f"    steps:    {', '.join(p['evidence_steps'])}")
        if p["invalid_reason"]:
            out(f"    INVALID: {p['invalid_reason']}")
        for line in (p.get("note") or "").splitlines():
            out(f"    note: {line}")
        for leak in p["leakage"]:
            out(f"    LEAKAGE ({leak['kind']}): {leak['task']} ({leak['split']}): {leak['detail']}")


@click.command("reflections")
@click.argument("ident", required=False)
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@workspace_option
@json_option
@handle_errors
def reflections_cmd(ident, limit, workspace_path, as_json) -> None:
    """List reflections, or show one (raw reply, what was in its context, its proposals)."""
    ws = open_workspace(workspace_path)
    if not ident:
        rows = R.list_reflections(ws, limit)
        if as_json:
            emit_json(rows)
            return
        if not rows:
            out("no reflections yet; try: lessonlab reflect --run RUN")
        for r in rows:
            out(f"{r['id']}  {r['kind']:<8}{r['status']:<8}{r['endpoint']:<10}{r['response_mode'] or '—':<19}"
                f"{r['proposals']:>3} proposals "
                f"({r['pending']} pending)  {r['created_at']}" + (f"  {r['error']}" if r["error"] else ""))
        return
    d = R.reflection_detail(ws, ident)
    if as_json:
        emit_json(d)
        return
    out(f"reflection {d['id']} ({d['kind']})  [{d['status']}]  endpoint {d['endpoint']}  "
        f"model {d['server_model'] or d['model']}  prompt {d['prompt_name']} sha256:{d['prompt_hash'][:12]}  "
        f"response mode {d['response_mode'] or '—'}")
    included = sum(r["included"] for r in d["rollouts"])
    out(f"{included} rollout(s) in context, {len(d['rollouts']) - included} left out; "
        f"tokens {d['prompt_tokens']}+{d['completion_tokens']}")
    for r in d["rollouts"]:
        if not r["included"]:
            out(f"  left out {r['rollout_id']}: {r['reason']}")
    for note in d["context"].get("notes", []):
        out(f"note: {note}")
    if d["error"]:
        out(f"error: {d['error']}")
    out(f"\n--- raw reply ---\n{d['raw_reply'] if d['raw_reply'] is not None else '(none)'}")
    if d["proposals"]:
        out("\n--- proposals ---")
        print_proposals(d["proposals"])


@click.command("distill")
@click.option("--budget", type=click.IntRange(min=1), default=None,
              help="Target size of the lessons block in estimated tokens (default: the lesson_token_budget setting).")
@endpoint_options
@click.option("--quiet", "-q", is_flag=True, help="Do not stream the reply to stderr.")
@workspace_option
@json_option
@handle_errors
def distill_cmd(budget, endpoint_name, max_tokens, temperature, quiet, workspace_path, as_json) -> None:
    """Ask for merge/edit/retire proposals that bring the active lessons under the token budget."""
    settings = load_settings()
    ws = open_workspace(workspace_path)
    ws.require_writable()
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
        out(f"lessons block: ~{result.tokens_before} tokens now → ~{result.tokens_after} if every pending "
            f"proposal is accepted ({verdict} the {target}-token budget)")
    if result.status != "ok":
        sys.exit(EXIT_FAILED)
