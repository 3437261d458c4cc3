"""What every command shares: options, the one error path, JSON output, progress and status lines."""
from __future__ import annotations

import functools
import json
import sqlite3
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from lessonlab.core import formatting as fmt
from lessonlab.core.errors import EXIT_BAD_INPUT, EXIT_FAILED, LessonlabError, database_error
from lessonlab.core.paths import workspace_path
from lessonlab.core.storage.integrity import damage_from

if TYPE_CHECKING:  # the runner is imported by the commands that run something, not by every command
    from lessonlab.core.runs.runner import RunProgress

__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILED", "CliError", "handle_errors", "workspace_option", "json_option",
           "emit_json", "out", "status", "ProgressLine", "Throttle", "fmt", "checked"]


class CliError(click.ClickException):
    """An error shown as one clear line; exit 2 for bad input, 1 when the work failed."""

    def __init__(self, message: str, exit_code: int = EXIT_BAD_INPUT):
        # Messages quote ids, file lines and server replies: never let them drive the terminal.
        super().__init__(fmt.printable(message))
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


def checked(name: str):
    """A click callback checking a sampling option (or "timeout") against the core's ranges: one clear line."""

    def callback(ctx: click.Context, param: click.Parameter, value):
        # Imported when an option is parsed: commands without sampling options never load the settings.
        from lessonlab.core.settings import SettingsError, check_param, check_timeout

        try:
            check_timeout(value) if name == "timeout" else check_param(name, value)
        except SettingsError as exc:
            raise CliError(f"{param.opts[0]}: {exc}") from None
        return value

    return callback


def handle_errors(fn):
    """Turn the core's errors into one clear line with the right exit code (2 bad input, 1 failed work)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except LessonlabError as exc:
            raise CliError(str(exc), exc.exit_code) from exc
        except (sqlite3.Error, json.JSONDecodeError, UnicodeDecodeError) as exc:
            given = kwargs.get("workspace_path")
            clear = damage_from(exc, workspace_path(given))
            if clear is None and isinstance(exc, sqlite3.Error):
                clear = database_error(exc, given)
            if clear is None:
                raise
            raise CliError(str(clear), clear.exit_code) from exc

    return wrapper


def emit_json(data) -> None:
    """Write JSON to stdout."""
    click.echo(json.dumps(data, indent=2, default=str))


def out(text: str = "", *, err: bool = False, nl: bool = True) -> None:
    """Human-readable output: text from models, servers, suites and imports shown with control characters escaped."""
    click.echo(fmt.printable(text), err=err, nl=nl)


def status(message: str) -> None:
    """A status line on stderr (stdout stays for results)."""
    out(message, err=True)


class Throttle:
    """True at most every `interval` seconds off a terminal (always on one, where lines redraw in place)."""

    def __init__(self, interval: float = 2.0):
        self.tty = sys.stderr.isatty()
        self.interval = interval
        self.last = 0.0

    def ready(self, final: bool = False) -> bool:
        """Whether to draw now."""
        now = time.monotonic()
        if not self.tty and not final and now - self.last < self.interval:
            return False
        self.last = now
        return True

    def draw(self, text: str, final: bool = False) -> None:
        """Redraw in place on a terminal; a new line elsewhere."""
        if self.tty:
            click.echo("\r" + text, err=True, nl=final)
        else:
            click.echo(text, err=True)

    def close(self) -> None:
        """End the redrawn line on a terminal."""
        if self.tty:
            click.echo("", err=True)


class ProgressLine:
    """A run's progress bar on stderr: redrawn in place on a terminal, a line every few seconds otherwise."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.throttle = Throttle()

    def __call__(self, p: RunProgress) -> None:
        final = p.done >= p.total
        if not self.enabled or not self.throttle.ready(final):
            return
        width = 30
        filled = int(width * p.done / p.total) if p.total else width
        bar = "#" * filled + "-" * (width - filled)
        self.throttle.draw(f"[{bar}] {p.done}/{p.total}  errors {p.errors}  "
                           f"mean reward {fmt.reward(p.mean_reward)}", final)

    def close(self) -> None:
        if self.enabled:
            self.throttle.close()


def endpoint_url(endpoint, quiet: bool = False):
    """The base URL to call (starting and always stopping the embedded model for `local`)."""
    from lessonlab.core.models.local_model import endpoint_base_url

    return endpoint_base_url(endpoint, on_status=None if quiet else status)
