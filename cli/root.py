"""The `lessonlab` command group: assembles the command modules (none of them imports this one)."""
from __future__ import annotations

import logging
import signal

import click

from . import app, check, curate, endpoints, export, impact, lessons, loop, reflect, runs, serve, tools, transfer


@click.group(invoke_without_command=True)
@click.option("-v", "--verbose", count=True, help="More logging on stderr (-vv for debug).")
@click.version_option(package_name="lessonlab")
@click.pass_context
def cli(ctx: click.Context, verbose: int) -> None:
    """lessonlab: system prompt learning — run tasks, reflect on rollouts, curate lessons, measure them."""
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(level=max(level, logging.DEBUG), format="%(levelname)s %(name)s: %(message)s")
    if ctx.invoked_subcommand is None:
        ctx.invoke(app.gui_cmd)  # no arguments: the desktop app is the main way in


COMMANDS = [
    runs.suites_cmd, runs.run_cmd, runs.runs_cmd, runs.show_cmd,
    tools.tools_cmd,
    endpoints.endpoints_cmd,
    lessons.lessons_cmd, export.export_cmd,
    transfer.import_cmd,
    reflect.reflect_cmd, reflect.reflections_cmd, reflect.distill_cmd,
    curate.proposals_cmd, curate.accept_cmd, curate.reject_cmd,
    loop.loop_cmd,
    impact.impact_cmd, impact.timeline_cmd, impact.ablate_cmd,
    serve.serve_cmd, serve.score_cmd,
    check.check_cmd,
    app.gui_cmd,
]
for command in COMMANDS:
    cli.add_command(command)


def main() -> None:
    """Console entry point."""
    # SIGTERM behaves like Ctrl-C: runs are marked interrupted and the local model is stopped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    cli(prog_name="lessonlab")
