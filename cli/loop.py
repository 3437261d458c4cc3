"""The headless learning loop: `loop` (run → reflect → gated accept, round by round)."""
from __future__ import annotations

import sys

import click

from lessonlab.core.loop import LoopOptions, run_loop
from lessonlab.core.settings import load_settings
from lessonlab.core.tasks.suites import load_suite
from lessonlab.core.storage.workspace import open_workspace

from .common import (EXIT_FAILED, emit_json, endpoint_url, fmt, handle_errors, json_option, out,
                     workspace_option)


@click.command("loop")
@click.option("--suite", "suite_name", required=True, help="Built-in suite name or path to a JSONL file.")
@click.option("--rounds", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--samples", "-k", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N tasks of each split.")
@click.option("--endpoint", "endpoint_name", default=None, help="Endpoint that attempts the tasks.")
@click.option("--reflect-endpoint", default=None, help="Endpoint that reflects (default: --endpoint).")
@click.option("--auto-accept", type=click.Choice(["gated"]), default=None,
              help="gated: accept an add/retire proposal only when held-out reruns with and without it show a gain "
                   "(its paired t interval above 0, Holm over the round's proposals, from 6 tasks × 2 samples); "
                   "anything else is held for review, saying how many more rollouts would settle it.")
@click.option("--max-gated", type=click.IntRange(min=1), default=3, show_default=True,
              help="Proposals tried through the gate per round.")
@click.option("--gate-min-tasks", type=click.IntRange(min=3), default=5, show_default=True,
              help="Held-out tasks the gate needs before it accepts (or rejects) a proposal.")
@click.option("--concurrency", "-c", type=click.IntRange(min=1, max=1024), default=4, show_default=True)
@click.option("--max-tokens", type=click.IntRange(min=1), default=None, help="Override max tokens of the rollouts.")
@click.option("--seed", type=int, default=None, help="Seed shared by the matched held-out runs.")
@click.option("--trust-verifiers", is_flag=True,
              help="Allow `python` verifiers and python tool sets to run code from the suite.")
@workspace_option
@json_option
@handle_errors
def loop_cmd(suite_name, rounds, samples, limit, endpoint_name, reflect_endpoint, auto_accept, max_gated,
             gate_min_tasks, concurrency, max_tokens, seed, trust_verifiers, workspace_path, as_json) -> None:
    """Headless loop: run → reflect → (gated) accept → next round; prints a round-by-round table."""
    settings = load_settings()
    ws = open_workspace(workspace_path)
    ws.require_writable()
    suite = load_suite(suite_name)
    endpoint = settings.endpoint(endpoint_name or settings.default_endpoint)
    reflector = settings.endpoint(reflect_endpoint) if reflect_endpoint else endpoint
    options = LoopOptions(rounds=rounds, samples=samples, limit=limit, gated=auto_accept == "gated",
                          max_gated=max_gated, gate_min_tasks=gate_min_tasks, concurrency=concurrency,
                          max_tokens=max_tokens, seed=seed, trust_verifiers=trust_verifiers)

    def say(message: str) -> None:
        if not as_json:
            out(message, err=True)

    with endpoint_url(endpoint, quiet=as_json) as url:
        if reflector.name == endpoint.name:
            result = run_loop(ws, settings, suite, endpoint, url, reflector, url, options, log=say)
        else:
            with endpoint_url(reflector, quiet=as_json) as reflect_url:
                result = run_loop(ws, settings, suite, endpoint, url, reflector, reflect_url, options, log=say)
    if as_json:
        emit_json(result.to_dict())
    else:
        out(f"{'round':>5}  {'run':<16}{'train':>7}  {'reflection':<14}{'status':<8}{'pend':>5}"
            f"{'held-out':>10}  accepted")
        for r in result.rounds:
            out(f"{r.round:>5}  {r.run_id:<16}{fmt.reward(r.train_reward):>7}  {r.reflection_id or '—':<14}"
                f"{r.reflection_status:<8}{r.n_pending:>5}{fmt.reward(r.heldout_reward):>10}  "
                f"{', '.join(r.accepted) or '—'}")
        decisions = [(r.round, g) for r in result.rounds for g in r.gate]
        if decisions:
            out("\nthe gate, proposal by proposal:")
        for number, g in decisions:
            out(f"  round {number}: {g['proposal']} ({g['op']}) {g['decision'].upper()}: {g['why']}")
        out(f"\n{result.message}")
    if result.failed:
        sys.exit(EXIT_FAILED)
