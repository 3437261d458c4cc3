"""Commands that run things: `suites` (what can run) and `run`; `runs` and `show` live in show.py."""
from __future__ import annotations

import sys

import click

from lessonlab.core.settings import load_settings
from lessonlab.core.verifiers import DEFAULT_VERIFY_TIMEOUT
from lessonlab.core.storage.workspace import open_workspace
from lessonlab.core.tasks.suites import builtin_suites, load_suite

from .common import (EXIT_FAILED, CliError, ProgressLine, checked, emit_json, endpoint_url, fmt, handle_errors,
                     json_option, out, status, workspace_option)
from .show import print_run_tasks


@click.command("suites")
@json_option
@handle_errors
def suites_cmd(as_json: bool) -> None:
    """List the built-in suites with task counts."""
    rows = []
    for name in builtin_suites():
        suite = load_suite(name)
        rows.append({"name": name, **suite.counts(), "tools": suite.tools(), "source": suite.source})
    if as_json:
        emit_json(rows)
        return
    out(f"{'suite':<18}{'train':>7}{'heldout':>9}{'total':>7}  tools")
    for row in rows:
        out(f"{row['name']:<18}{row['train']:>7}{row['heldout']:>9}{row['total']:>7}  {', '.join(row['tools']) or '-'}")
    out("\n--suite also takes a path to a JSONL file of your own.")


@click.command("run")
@click.option("--suite", "suite_name", help="Built-in suite name or path to a JSONL file.")
@click.option("--split", type=click.Choice(["train", "heldout", "all"]), default="train", show_default=True)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N tasks.")
@click.option("--samples", "-k", type=click.IntRange(min=1), default=1, show_default=True,
              help="Rollouts per task.")
@click.option("--endpoint", "endpoint_name", default=None, help="Endpoint profile (default: the default one).")
@click.option("--concurrency", "-c", type=click.IntRange(min=1, max=1024), default=4, show_default=True)
@click.option("--temperature", type=float, default=None, callback=checked("temperature"),
              help="Override the endpoint's temperature (0 to 2).")
@click.option("--max-tokens", type=click.IntRange(min=1), default=None, help="Override the endpoint's max tokens.")
@click.option("--seed", type=int, default=None, help="Run seed; each rollout's seed derives from it.")
@click.option("--trust-verifiers", is_flag=True,
              help="Allow `python` verifiers and python tool sets to run code from the suite.")
@click.option("--verify-timeout", type=float, default=DEFAULT_VERIFY_TIMEOUT, show_default=True,
              callback=checked("timeout"), metavar="SECONDS",
              help="A regex, schema pattern or python verifier still running after this scores 0.")
@click.option("--resume", "resume_id", default=None, metavar="RUN", help="Complete an interrupted run.")
@workspace_option
@json_option
@handle_errors
def run_cmd(suite_name, split, limit, samples, endpoint_name, concurrency, temperature, max_tokens, seed,
            trust_verifiers, verify_timeout, resume_id, workspace_path, as_json) -> None:
    """Send a suite's tasks × samples to an endpoint and store every rollout with its verdict."""
    # Planning brings the runner, the agent loop and the model client: only this command pays for them.
    import asyncio

    from lessonlab.core.runs.planning import plan_resume, plan_run, run_summary
    from lessonlab.core.runs.runner import execute_run

    settings = load_settings()
    ws = open_workspace(workspace_path)
    ws.require_writable()
    if resume_id:
        if suite_name:
            raise CliError("--resume continues a run as it was planned; do not pass --suite with it")
        plan = plan_resume(ws, settings, resume_id)
    else:
        if not suite_name:
            raise CliError("missing --suite (a built-in name, see `lessonlab suites`, or a JSONL file)")
        plan = plan_run(ws, settings, suite=suite_name, endpoint=endpoint_name, split=split, limit=limit,
                        samples=samples, concurrency=concurrency, temperature=temperature, max_tokens=max_tokens,
                        seed=seed, trust_verifiers=trust_verifiers)
    status(plan.describe(ws))
    if plan.notice:
        status(plan.notice)
    if plan.untrusted_python:
        status("warning: this suite has python verifiers; without --trust-verifiers they score 0")
    bar = ProgressLine()
    interrupted = False
    try:
        with endpoint_url(plan.endpoint) as url:
            result = asyncio.run(execute_run(ws, plan.run_id, plan.endpoint, base_url=url, progress=bar,
                                             verify_timeout=verify_timeout))
    except KeyboardInterrupt:
        interrupted = True
        result = None
    bar.close()
    summary = run_summary(ws, plan.run_id)
    if as_json:
        emit_json(summary)
    else:
        print_run_tasks(summary["tasks"])
        out(
            f"\nrun {plan.run_id} {summary['status']}: {summary['done']}/{summary['planned']} rollouts, "
            f"{summary['errors']} errors, mean reward {fmt.reward(summary['mean_reward'])}"
        )
    if interrupted or (result and result.status == "interrupted"):
        status(f"interrupted; finish it with: lessonlab run --resume {plan.run_id}")
        sys.exit(EXIT_FAILED)
    if summary["status"] == "failed":
        status(f"every rollout failed; first error: {summary['first_error'] or '?'}")
        sys.exit(EXIT_FAILED)
