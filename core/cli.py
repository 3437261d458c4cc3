"""The `lessonlab` command line. Results go to stdout (JSON with --json); progress and errors to stderr."""
from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import signal
import sys
import time
from pathlib import Path
from typing import Iterator

import click

from . import queries
from .impact import ImpactError
from .lessons import LessonError
from .local_model import LocalModelError, LocalModelServer
from .reflection import ReflectionError
from .runner import RunError, RunProgress, create_run, execute_run
from .settings import Endpoint, SettingsError, load_settings, save_settings
from .snapshots import current_snapshot, load_snapshot
from .suites import SuiteError, builtin_suites, load_suite
from .workspace import Workspace, WorkspaceError, open_workspace

log = logging.getLogger("lessonlab.cli")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class CliError(click.ClickException):
    """An error shown as one clear line; exit 2 for bad input, 1 when the work failed."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE):
        super().__init__(message)
        self.exit_code = exit_code


def workspace_option(fn):
    """Add --workspace PATH to a command."""
    return click.option(
        "--workspace", "-w", "workspace_path", type=click.Path(dir_okay=False, path_type=Path),
        default=None, help="Workspace file (default: the one in the user data dir).",
    )(fn)


def json_option(fn):
    """Add --json to a command."""
    return click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON only on stdout.")(fn)


def handle_errors(fn):
    """Turn the core's known errors into clear messages with the right exit code."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (SuiteError, SettingsError, queries.NotFound, WorkspaceError, RunError, LessonError,
                ReflectionError, ImpactError) as exc:
            raise CliError(str(exc), EXIT_USAGE) from exc
        except LocalModelError as exc:
            raise CliError(str(exc), EXIT_FAILED) from exc

    return wrapper


def emit_json(data) -> None:
    """Write JSON to stdout."""
    click.echo(json.dumps(data, indent=2, default=str))


def open_ws(path: Path | None) -> Workspace:
    return open_workspace(path)


def fmt_reward(value) -> str:
    return "—" if value is None else f"{value:.3f}"


@contextlib.contextmanager
def endpoint_url(endpoint: Endpoint, quiet: bool = False) -> Iterator[str]:
    """The base URL to call; starts (and always stops) the embedded model for `local`."""
    if not endpoint.is_local:
        yield endpoint.base_url
        return
    server = LocalModelServer()
    if not quiet:
        click.echo("starting the embedded model (SmolLM2-135M-Instruct)…", err=True)
    started = time.perf_counter()
    try:
        url = server.start()
        if not quiet:
            click.echo(f"embedded model ready in {time.perf_counter() - started:.1f} s", err=True)
        yield url
    finally:
        server.stop()


class ProgressLine:
    """A progress bar on stderr: redrawn in place on a terminal, a line every few seconds otherwise."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.last = 0.0

    def __call__(self, p: RunProgress) -> None:
        if not self.enabled:
            return
        final = p.done >= p.total
        now = time.monotonic()
        if not self.tty and not final and now - self.last < 2.0:
            return
        self.last = now
        width = 30
        filled = int(width * p.done / p.total) if p.total else width
        bar = "#" * filled + "-" * (width - filled)
        text = f"[{bar}] {p.done}/{p.total}  errors {p.errors}  mean reward {fmt_reward(p.mean_reward)}"
        if self.tty:
            click.echo("\r" + text, err=True, nl=final)
        else:
            click.echo(text, err=True)

    def close(self) -> None:
        if self.enabled and self.tty:
            click.echo("", err=True)


@click.group(invoke_without_command=True)
@click.option("-v", "--verbose", count=True, help="More logging on stderr (-vv for debug).")
@click.version_option(package_name="lessonlab")
@click.pass_context
def cli(ctx: click.Context, verbose: int) -> None:
    """lessonlab: system prompt learning — run tasks, reflect on rollouts, curate lessons, measure them."""
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(level=max(level, logging.DEBUG), format="%(levelname)s %(name)s: %(message)s")
    if ctx.invoked_subcommand is None:
        ctx.invoke(gui_cmd)  # no arguments: the desktop app is the main way in


# --- suites -----------------------------------------------------------------------------------


@cli.command("suites")
@json_option
@handle_errors
def suites_cmd(as_json: bool) -> None:
    """List the built-in suites with task counts."""
    rows = []
    for name in builtin_suites():
        suite = load_suite(name)
        rows.append({"name": name, **suite.counts(), "source": suite.source})
    if as_json:
        emit_json(rows)
        return
    click.echo(f"{'suite':<14}{'train':>7}{'heldout':>9}{'total':>7}")
    for row in rows:
        click.echo(f"{row['name']:<14}{row['train']:>7}{row['heldout']:>9}{row['total']:>7}")
    click.echo("\n--suite also takes a path to a JSONL file of your own.")


# --- endpoints --------------------------------------------------------------------------------


@cli.group("endpoints", invoke_without_command=True)
@json_option
@click.pass_context
@handle_errors
def endpoints_cmd(ctx: click.Context, as_json: bool) -> None:
    """List endpoint profiles (subcommands: add, remove, test)."""
    if ctx.invoked_subcommand is not None:
        return
    settings = load_settings()
    rows = [
        {**ep.to_dict(), "builtin": ep.builtin, "default": name == settings.default_endpoint}
        for name, ep in settings.all_endpoints().items()
    ]
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        url = row["base_url"] or "(embedded: llama-cpp-python server on 127.0.0.1, started on demand)"
        key = f"key from ${row['key_env']}" if row["key_env"] else "no key"
        mark = " *" if row["default"] else ""
        click.echo(f"{row['name']}{mark}\t{row['model']}\t{url}\t{key}")


@endpoints_cmd.command("add")
@click.argument("name")
@click.option("--base-url", required=True, help="OpenAI-compatible base URL, e.g. http://localhost:8000/v1")
@click.option("--model", required=True, help="Model name to request.")
@click.option("--key-env", default=None, help="NAME of the environment variable holding the API key.")
@click.option("--temperature", type=float, default=None, help="Default sampling temperature.")
@click.option("--max-tokens", type=int, default=None, help="Default max tokens per reply.")
@click.option("--timeout", type=float, default=60.0, show_default=True, help="Seconds per request.")
@click.option("--default", "make_default", is_flag=True, help="Use this endpoint when none is named.")
@handle_errors
def endpoints_add(name, base_url, model, key_env, temperature, max_tokens, timeout, make_default) -> None:
    """Add (or replace) an endpoint profile. The key itself is never stored."""
    settings = load_settings()
    params = {k: v for k, v in {"temperature": temperature, "max_tokens": max_tokens}.items() if v is not None}
    settings.add_endpoint(Endpoint(name=name, base_url=base_url.rstrip("/"), model=model, key_env=key_env,
                                   params=params, timeout=timeout))
    if make_default:
        settings.default_endpoint = name
    path = save_settings(settings)
    click.echo(f"endpoint {name!r} saved in {path}", err=True)


@endpoints_cmd.command("remove")
@click.argument("name")
@handle_errors
def endpoints_remove(name) -> None:
    """Remove an endpoint profile."""
    settings = load_settings()
    settings.remove_endpoint(name)
    save_settings(settings)
    click.echo(f"endpoint {name!r} removed", err=True)


@endpoints_cmd.command("test")
@click.argument("name")
@json_option
@handle_errors
def endpoints_test(name, as_json) -> None:
    """Send one tiny request and report latency or the error."""
    from . import models

    endpoint = load_settings().endpoint(name)
    result: dict = {"endpoint": name, "model": endpoint.model}
    with endpoint_url(endpoint, quiet=as_json) as url:
        result["base_url"] = url

        async def probe():
            client = models.make_client(endpoint, url)
            try:
                return await models.chat(
                    client, endpoint.model, [{"role": "user", "content": "Say OK."}], {"max_tokens": 8},
                    retry=models.RetryPolicy(max_attempts=1),
                )
            finally:
                await client.close()

        try:
            reply = asyncio.run(probe())
            result.update(ok=True, latency_ms=round(reply.latency_ms, 1), server_model=reply.model,
                          reply=reply.output)
        except models.ModelCallError as exc:
            result.update(ok=False, error=str(exc))
    if as_json:
        emit_json(result)
    elif result["ok"]:
        click.echo(f"{name}: ok in {result['latency_ms']:.0f} ms (model {result['server_model']}): {result['reply']!r}")
    else:
        click.echo(f"{name}: FAILED: {result['error']}")
    if not result["ok"]:
        sys.exit(EXIT_FAILED)


# --- run ----------------------------------------------------------------------------------------


@cli.command("run")
@click.option("--suite", "suite_name", help="Built-in suite name or path to a JSONL file.")
@click.option("--split", type=click.Choice(["train", "heldout", "all"]), default="train", show_default=True)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N tasks.")
@click.option("--samples", "-k", type=click.IntRange(min=1), default=1, show_default=True,
              help="Rollouts per task.")
@click.option("--endpoint", "endpoint_name", default=None, help="Endpoint profile (default: the default one).")
@click.option("--concurrency", "-c", type=click.IntRange(min=1, max=1024), default=4, show_default=True)
@click.option("--temperature", type=float, default=None, help="Override the endpoint's temperature.")
@click.option("--max-tokens", type=click.IntRange(min=1), default=None, help="Override the endpoint's max tokens.")
@click.option("--seed", type=int, default=None, help="Run seed; each rollout's seed derives from it.")
@click.option("--trust-verifiers", is_flag=True, help="Allow `python` verifiers to run code from the suite.")
@click.option("--resume", "resume_id", default=None, metavar="RUN", help="Complete an interrupted run.")
@workspace_option
@json_option
@handle_errors
def run_cmd(suite_name, split, limit, samples, endpoint_name, concurrency, temperature, max_tokens, seed,
            trust_verifiers, resume_id, workspace_path, as_json) -> None:
    """Send a suite's tasks × samples to an endpoint and store every rollout with its verdict."""
    settings = load_settings()
    ws = open_ws(workspace_path)
    if resume_id:
        if suite_name:
            raise CliError("--resume continues a run as it was planned; do not pass --suite with it")
        run_id = queries.resolve_id(ws, "runs", resume_id)
        run = ws.one("SELECT * FROM runs WHERE id = ?", (run_id,))
        if run["n_done"] >= run["n_planned"]:
            raise CliError(f"run {run_id} is already complete ({run['n_done']}/{run['n_planned']} rollouts)")
        endpoint = settings.endpoint(run["endpoint"])
        trust_verifiers = bool(run["trust_verifiers"])
    else:
        if not suite_name:
            raise CliError("missing --suite (a built-in name, see `lessonlab suites`, or a JSONL file)")
        suite = load_suite(suite_name)
        tasks = suite.select(split, limit)
        endpoint = settings.endpoint(endpoint_name or settings.default_endpoint)
        snapshot = current_snapshot(ws, settings, suite.name)
        run_id = create_run(
            ws, suite, tasks, endpoint=endpoint, snapshot=snapshot, samples=samples, split=split, limit=limit,
            concurrency=concurrency, params={"temperature": temperature, "max_tokens": max_tokens}, seed=seed,
            trust_verifiers=trust_verifiers,
        )
    run = ws.one("SELECT * FROM runs WHERE id = ?", (run_id,))
    click.echo(
        f"run {run_id}: suite {run['suite']} ({run['split']}), {run['n_planned']} rollouts "
        f"on {endpoint.name} ({endpoint.model}), concurrency {run['concurrency']}",
        err=True,
    )
    if not trust_verifiers:
        uses_python = ws.one(
            "SELECT 1 FROM run_tasks rt JOIN tasks t ON t.id = rt.task_id WHERE rt.run_id = ?"
            " AND json_extract(t.verifier_json, '$.kind') = 'python' LIMIT 1",
            (run_id,),
        )
        if uses_python:
            click.echo("warning: this suite has python verifiers; without --trust-verifiers they score 0",
                       err=True)
    bar = ProgressLine()
    interrupted = False
    try:
        with endpoint_url(endpoint) as url:
            result = asyncio.run(execute_run(ws, run_id, endpoint, base_url=url, progress=bar))
    except KeyboardInterrupt:
        interrupted = True
        result = None
    bar.close()
    detail = queries.run_detail(ws, run_id)
    summary = {
        "run_id": run_id,
        "status": detail["status"],
        "suite": detail["suite"],
        "endpoint": detail["endpoint"],
        "model": detail["server_model"] or detail["model"],
        "snapshot_id": detail["snapshot_id"],
        "planned": detail["n_planned"],
        "done": detail["n_done"],
        "errors": detail["n_errors"],
        "mean_reward": detail["mean_reward"],
        "tasks": [
            {"task": t["task"], "split": t["split"], "rewards": t["rewards"], "mean_reward": t["mean_reward"],
             "errors": t["errors"]}
            for t in detail["tasks"]
        ],
    }
    if as_json:
        emit_json(summary)
    else:
        print_run_tasks(detail)
        click.echo(
            f"\nrun {run_id} {detail['status']}: {detail['n_done']}/{detail['n_planned']} rollouts, "
            f"{detail['n_errors']} errors, mean reward {fmt_reward(detail['mean_reward'])}"
        )
    if interrupted or (result and result.status == "interrupted"):
        click.echo(f"interrupted; finish it with: lessonlab run --resume {run_id}", err=True)
        sys.exit(EXIT_FAILED)
    if detail["status"] == "failed":
        first_error = ws.one("SELECT error FROM rollouts WHERE run_id = ? AND error IS NOT NULL LIMIT 1", (run_id,))
        click.echo(f"every rollout failed; first error: {first_error['error'] if first_error else '?'}", err=True)
        sys.exit(EXIT_FAILED)


def print_run_tasks(detail: dict) -> None:
    """Per-task rewards of a run as a table."""
    width = max([len(t["task"]) for t in detail["tasks"]] + [4])
    click.echo(f"{'task':<{width}}  {'split':<7}  {'mean':>6}  rewards")
    for t in detail["tasks"]:
        rewards = " ".join("err" if r is None else f"{r:.2f}" for r in t["rewards"]) or "(not run)"
        click.echo(f"{t['task']:<{width}}  {t['split']:<7}  {fmt_reward(t['mean_reward']):>6}  {rewards}")


# --- looking at results -------------------------------------------------------------------------


@cli.command("runs")
@click.option("--suite", default=None, help="Only runs of this suite.")
@click.option("--limit", type=click.IntRange(min=1), default=None)
@workspace_option
@json_option
@handle_errors
def runs_cmd(suite, limit, workspace_path, as_json) -> None:
    """One line per run: suite, endpoint, model, samples, mean reward, errors, status."""
    ws = open_ws(workspace_path)
    rows = queries.list_runs(ws, suite=suite, limit=limit)
    if as_json:
        emit_json(rows)
        return
    if not rows:
        click.echo("no runs yet; start one with: lessonlab run --suite strawberry --limit 5 --samples 2 --endpoint local")
        return
    click.echo(f"{'run':<16}{'suite':<14}{'endpoint':<10}{'model':<26}{'k':>3}{'done':>7}{'reward':>8}{'err':>5}  status")
    for r in rows:
        model = (r["server_model"] or r["model"] or "")[:25]
        kind = "" if r["kind"] == "run" else f" ({r['kind']})"
        click.echo(
            f"{r['id']:<16}{r['suite'][:13]:<14}{r['endpoint'][:9]:<10}{model:<26}{r['samples']:>3}"
            f"{r['n_done']:>4}/{r['n_planned']:<3}{fmt_reward(r['mean_reward']):>7}{r['n_errors']:>5}  {r['status']}{kind}"
        )


@cli.command("show")
@click.argument("ident")
@workspace_option
@json_option
@handle_errors
def show_cmd(ident, workspace_path, as_json) -> None:
    """Show a run (per-task rewards and rollouts) or a rollout (messages, output, verdict)."""
    ws = open_ws(workspace_path)
    table = "rollouts" if ident.startswith("ro_") else "runs" if ident.startswith("run_") else None
    if table is None:
        for candidate in ("runs", "rollouts"):
            try:
                queries.resolve_id(ws, candidate, ident)
                table = candidate
                break
            except queries.NotFound:
                continue
        if table is None:
            raise queries.NotFound(f"no run or rollout with id {ident!r}")
    full = queries.resolve_id(ws, table, ident)
    if table == "runs":
        detail = queries.run_detail(ws, full)
        detail["rollouts"] = queries.run_rollouts(ws, full)
        detail["system_prompt"] = load_snapshot(ws, detail["snapshot_id"]).system_prompt
        if as_json:
            emit_json(detail)
            return
        click.echo(f"run {full}  [{detail['status']}]  kind {detail['kind']}")
        click.echo(f"suite {detail['suite']} ({detail['split']}), endpoint {detail['endpoint']}, "
                   f"model {detail['server_model'] or detail['model']}, snapshot {detail['snapshot_id']}")
        click.echo(f"samples {detail['samples']}, params {json.dumps(detail['params'])}, seed {detail['seed']}")
        click.echo(f"{detail['n_done']}/{detail['n_planned']} rollouts, {detail['n_errors']} errors, "
                   f"mean reward {fmt_reward(detail['mean_reward'])}, tokens {detail['prompt_tokens']}+"
                   f"{detail['completion_tokens']}\n")
        print_run_tasks(detail)
        click.echo("\nrollouts:")
        for r in detail["rollouts"]:
            what = r["feedback"] if r["status"] == "ok" else f"ERROR {r['error']}"
            click.echo(f"  {r['id']}  {r['task']} #{r['sample_index']}  {fmt_reward(r['reward'])}  {what}")
        return
    detail = queries.rollout_detail(ws, full)
    detail["lessons"] = queries.snapshot_lesson_versions(ws, detail["snapshot_id"])
    if as_json:
        emit_json(detail)
        return
    click.echo(f"rollout {full}  run {detail['run_id']}  task {detail['suite']}/{detail['task']} "
               f"sample {detail['sample_index']}  snapshot {detail['snapshot_id']}")
    click.echo(f"model {detail['model']}  latency {detail['latency_ms'] or 0:.0f} ms  tokens "
               f"{detail['prompt_tokens']}+{detail['completion_tokens']}  attempts {detail['attempts']}  "
               f"seed {detail['seed']}")
    click.echo("lessons in its prompt: " + (", ".join(f"{x['lesson_id']} v{x['version']}" for x in detail["lessons"])
                                           or "none"))
    if detail["status"] == "ok":
        click.echo(f"reward {fmt_reward(detail['reward'])}: {detail['feedback']}")
    else:
        click.echo(f"ERROR: {detail['error']}")
    for message in detail["messages"]:
        click.echo(f"\n--- {message['role']} ---\n{message['content']}")
    click.echo(f"\n--- assistant (output) ---\n{detail['output'] if detail['output'] is not None else '(none)'}")


# --- desktop app --------------------------------------------------------------------------------

GUI_INSTALL_COMMAND = "pip install 'lessonlab[gui]'"


@cli.command("gui")
@workspace_option
@click.option("--screenshot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Render the window to this PNG file and exit (offscreen is fine).")
@click.option("--page", type=click.Choice(["runs", "compare", "review", "lessons", "impact"], case_sensitive=False),
              default=None, help="Page to show first.")
def gui_cmd(workspace_path=None, screenshot=None, page=None) -> None:
    """Open the desktop app (also what `lessonlab` with no arguments does)."""
    import importlib.util

    if importlib.util.find_spec("PySide6") is None:
        raise CliError(f"the desktop app needs PySide6, which is not installed; install it with: {GUI_INSTALL_COMMAND}",
                       EXIT_FAILED)
    import os

    if screenshot is not None:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # a screenshot needs no display
    elif (sys.platform.startswith("linux") and not os.environ.get("QT_QPA_PLATFORM")
          and not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY")):
        # Without this, Qt aborts with a message about platform plugins that hides the cause.
        raise CliError(
            "no display to open the window on (DISPLAY and WAYLAND_DISPLAY are not set); run it on a desktop "
            "or under `xvfb-run lessonlab`, or use the command line, e.g. "
            "`lessonlab run --suite strawberry --limit 5 --samples 2 --endpoint local`",
            EXIT_FAILED,
        )
    from lessonlab.gui.app import run_app  # imported here only: core never imports Qt at import time

    sys.exit(run_app(workspace_path, screenshot, page))


from . import cli_lessons  # noqa: E402,F401  (registers the lesson commands)
from . import cli_impact  # noqa: E402,F401  (registers impact, timeline, ablate)


def main() -> None:
    """Console entry point."""
    # SIGTERM behaves like Ctrl-C: runs are marked interrupted and the local model is stopped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    cli(prog_name="lessonlab")


if __name__ == "__main__":
    main()
