"""`lessonlab check`: SQLite's integrity check and a decode of every stored text, and what to do about damage."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from lessonlab.core.errors import EXIT_FAILED
from lessonlab.core.paths import workspace_path as resolve_workspace_path
from lessonlab.core.storage.integrity import check_workspace

from .common import CliError, emit_json, handle_errors, json_option, out, workspace_option


@click.command("check")
@workspace_option
@json_option
@handle_errors
def check_cmd(workspace_path: Path | None, as_json: bool) -> None:
    """Check the workspace file for damage (exit 1 if damaged); writes are refused until a check passes."""
    path = resolve_workspace_path(workspace_path)
    if not path.is_file():
        raise CliError(f"no workspace at {path}")
    report = check_workspace(path)
    if as_json:
        emit_json(report.to_dict())
    elif report.ok:
        out(f"{path}: ok (SQLite integrity check passed, every stored text decodes)")
    else:
        out(f"{path}: DAMAGED — {len(report.problems)} problem(s) found:")
        for problem in report.problems:
            out(f"  {problem}")
        out(report.advice)
        out("Writes to this file are refused until `lessonlab check` passes on it.")
    if not report.ok:
        sys.exit(EXIT_FAILED)
