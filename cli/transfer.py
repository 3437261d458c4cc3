"""`import`: rollouts from Inspect AI logs and chat JSONL (the `export` commands live in cli/export.py)."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from lessonlab.core import transfer as T
from lessonlab.core.errors import EXIT_FAILED
from lessonlab.core.storage.workspace import open_workspace

from .common import Throttle, emit_json, fmt, handle_errors, json_option, out, status, workspace_option


def _import_line(result: T.FileImport) -> str:
    where = f"{result.path} ({result.format}, suite {result.suite}, model {result.model or '?'})"
    if result.dry_run:
        head = f"dry run: {where} would add {result.new} rollout(s)"
        if result.run_id:
            head += f" to run {result.run_id}"
    elif result.new == 0:
        return (f"{where}: already imported as run {result.run_id} ({result.existing} rollout(s)); nothing new")
    elif result.run_created:
        head = f"run {result.run_id} ← {where}: {result.new} rollout(s)"
    else:
        head = f"run {result.run_id} ← {where}: {result.new} new rollout(s) added"
    scorer = f" ({result.reward_scorer})" if result.reward_scorer else ""
    return (f"{head} over {result.tasks} task(s), {result.existing} already here; mean reward "
            f"{fmt.reward(result.mean_reward)}{scorer} over {result.scored} scored, {result.errors} error(s)")


@click.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--format", "file_format", type=click.Choice(T.format_names()), default="auto", show_default=True,
              help="auto: recognised from the name and first bytes; " + "; ".join(
                  f"{f.name}: {f.description}" for f in T.import_formats()) + ".")
@click.option("--score", "score_name", default=None, metavar="NAME",
              help="The scorer whose value becomes the reward (default: the first; every scorer is kept).")
@click.option("--split", type=click.Choice(["train", "heldout"]), default=None,
              help="Split of the imported tasks (default: train, or a JSONL line's own \"split\").")
@click.option("--dry-run", is_flag=True, help="Read and check every file, report, write nothing.")
@workspace_option
@json_option
@handle_errors
def import_cmd(files, file_format, score_name, split, dry_run, workspace_path, as_json) -> None:
    """Import Inspect AI logs or chat JSONL files, one run per file (importing again adds only what is new)."""
    ws = open_workspace(workspace_path)
    options = T.ImportOptions(format=file_format, score=score_name, split=split, dry_run=dry_run)
    throttle = Throttle()
    started = time.monotonic()
    drawn = [False]

    def progress(done: int, total: int) -> None:
        # Quiet for quick imports; a progress line once one takes longer than a second.
        final = done >= total
        if as_json or (not drawn[0] and (final or time.monotonic() - started < 1.0)) or not throttle.ready(final):
            return
        drawn[0] = not final
        throttle.draw(f"importing… {100 * done // max(total, 1)}% of {total:,} bytes", final)

    try:
        report = T.import_files(ws, files, options, progress=progress)
    except T.MalformedFile as exc:
        if drawn[0]:
            throttle.close()
        for done in exc.imported:
            status(_import_line(done))
        raise
    except KeyboardInterrupt:
        status("interrupted: the file being imported wrote nothing (files before it are imported)")
        sys.exit(EXIT_FAILED)
    if as_json:
        emit_json({"files": [r.to_dict() for r in report.files], "cancelled": report.cancelled})
        return
    for result in report.files:
        out(_import_line(result))
        for line in result.warnings:
            status(f"warning: {line}")
    if dry_run:
        status("dry run: nothing was written")
    elif any(r.new for r in report.files):
        first = next(r for r in report.files if r.new)
        status(f"see it with: lessonlab show {first.run_id}  (or the Compare page of `lessonlab gui`)")
