"""The `lessonlab` command group: assembles the command modules (none of them imports this one).

A command's module is imported when that command runs (or when help lists them all), so `lessonlab
--version` or `lessonlab runs` never pays for what another command needs (openai, aiohttp, jsonschema).
A new command is one module plus one line in COMMANDS.
"""
from __future__ import annotations

import importlib
import logging
import signal

import click

# name -> "module:attribute" under lessonlab.cli, in the order `--help` lists them.
COMMANDS: dict[str, str] = {
    "suites": "runs:suites_cmd", "run": "runs:run_cmd", "runs": "show:runs_cmd", "show": "show:show_cmd",
    "tools": "tools:tools_cmd",
    "endpoints": "endpoints:endpoints_cmd",
    "lessons": "lessons:lessons_cmd", "export": "export:export_cmd",
    "import": "transfer:import_cmd",
    "reflect": "reflect:reflect_cmd", "reflections": "reflect:reflections_cmd", "distill": "reflect:distill_cmd",
    "proposals": "curate:proposals_cmd", "accept": "curate:accept_cmd", "reject": "curate:reject_cmd",
    "loop": "loop:loop_cmd",
    "impact": "impact:impact_cmd", "timeline": "impact:timeline_cmd", "ablate": "impact:ablate_cmd",
    "serve": "serve:serve_cmd", "score": "serve:score_cmd",
    "check": "check:check_cmd",
    "gui": "app:gui_cmd",
}


def load_command(name: str) -> click.Command:
    """The command object for a name in COMMANDS (importing its module now)."""
    module, attribute = COMMANDS[name].split(":")
    return getattr(importlib.import_module(f"lessonlab.cli.{module}"), attribute)


class LazyGroup(click.Group):
    """A group whose commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return load_command(cmd_name) if cmd_name in COMMANDS else None


@click.group(cls=LazyGroup, invoke_without_command=True)
@click.option("-v", "--verbose", count=True, help="More logging on stderr (-vv for debug).")
@click.version_option(package_name="lessonlab")
@click.pass_context
def cli(ctx: click.Context, verbose: int) -> None:
    """lessonlab: system prompt learning — run tasks, reflect on rollouts, curate lessons, measure them."""
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(level=max(level, logging.DEBUG), format="%(levelname)s %(name)s: %(message)s")
    if ctx.invoked_subcommand is None:
        ctx.invoke(load_command("gui"))  # no arguments: the desktop app is the main way in


def main() -> None:
    """Console entry point."""
    # SIGTERM behaves like Ctrl-C: runs are marked interrupted and the local model is stopped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    cli(prog_name="lessonlab")
