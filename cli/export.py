"""`export`: the system prompt, training data (SFT, DPO), rollouts and lessons carried out of the workspace."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from lessonlab.core import transfer as T
from lessonlab.core.lessons import STATUSES
from lessonlab.core.lessons.snapshots import current_snapshot, snapshot_lessons
from lessonlab.core.settings import load_settings
from lessonlab.core.storage.workspace import open_workspace

from .common import emit_json, fmt, handle_errors, json_option, out, status, workspace_option


@click.group("export")
def export_cmd() -> None:
    """Export things from the workspace (subcommands: prompt, sft, dpo, rollouts, lessons)."""


@export_cmd.command("prompt")
@click.option("--suite", default=None, help="The prompt a run of this suite would get (adds lessons scoped to it).")
@workspace_option
@json_option
@handle_errors
def export_prompt(suite, workspace_path, as_json) -> None:
    """Print the current system prompt exactly as a run would send it."""
    settings = load_settings()
    ws = open_workspace(workspace_path)
    snap = current_snapshot(ws, settings, suite)
    if as_json:
        emit_json({"snapshot_id": snap.id, "hash": snap.hash, "system_prompt": snap.system_prompt,
                   "lessons": snapshot_lessons(ws, snap.id)})
        return
    out(f"snapshot {snap.id}, {snap.lesson_count} lesson(s)", err=True)
    # Exact text when piped (it is what a run sends); escaped on a terminal, which it must not drive.
    sys.stdout.write((fmt.printable(snap.system_prompt) if sys.stdout.isatty() else snap.system_prompt) + "\n")


def selection_options(fn):
    """Add --run RUN (repeatable) and --suite SUITE."""
    fn = click.option("--suite", default=None, help="Every run of this suite.")(fn)
    return click.option("--run", "runs", multiple=True, metavar="RUN", help="A run id or prefix (repeatable).")(fn)


def training_output_options(fn):
    """Add --strip-lessons and --out FILE (what `export sft` and `export dpo` share)."""
    fn = click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
                      help="The JSONL file to write.")(fn)
    return click.option("--strip-lessons", is_flag=True,
                        help="Rebuild each system prompt as the base prompt without the lessons.")(fn)


def _training_report(summary: T.TrainingExport, what: str, as_json: bool) -> None:
    if as_json:
        emit_json(summary.to_dict())
        return
    out(f"wrote {summary.examples} {what} from {summary.tasks} task(s), ~{summary.tokens:,} tokens "
        f"(estimated), to {summary.path}")
    if summary.stripped:
        status(f"{summary.stripped} system prompt(s) rebuilt on the base prompt without lessons")
    if summary.skipped:
        status("left out: " + ", ".join(f"{n} {why}" for why, n in summary.skipped.items()))


@export_cmd.command("sft")
@selection_options
@click.option("--min-reward", type=float, default=1.0, show_default=True, help="Only rollouts with at least this reward.")
@training_output_options
@workspace_option
@json_option
@handle_errors
def export_sft_cmd(runs, suite, min_reward, strip_lessons, out, workspace_path, as_json) -> None:
    """Rewarded rollouts as OpenAI chat fine-tuning JSONL ({"messages": [...]} per line)."""
    ws = open_workspace(workspace_path)
    summary = T.export_sft(ws, out, runs=list(runs), suite=suite, min_reward=min_reward, strip_lessons=strip_lessons)
    _training_report(summary, "example(s)", as_json)


@export_cmd.command("dpo")
@selection_options
@click.option("--min-gap", type=float, default=0.0, show_default=True,
              help="Only pairs whose rewards differ by at least this much (always more than 0).")
@training_output_options
@workspace_option
@json_option
@handle_errors
def export_dpo_cmd(runs, suite, min_gap, strip_lessons, out, workspace_path, as_json) -> None:
    """Preference pairs (OpenAI DPO JSONL): each task's best sample preferred over its worst."""
    ws = open_workspace(workspace_path)
    summary = T.export_dpo(ws, out, runs=list(runs), suite=suite, min_gap=min_gap, strip_lessons=strip_lessons)
    _training_report(summary, "pair(s)", as_json)


@export_cmd.command("rollouts")
@selection_options
@click.option("--format", "out_format", type=click.Choice(T.ROLLOUT_FORMATS), default="jsonl", show_default=True,
              help="jsonl: chat JSONL that `lessonlab import` reads back; csv: one row per rollout.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The file to write (default: standard output).")
@workspace_option
@handle_errors
def export_rollouts_cmd(runs, suite, out_format, out, workspace_path) -> None:
    """Rollouts with messages, output, reward, feedback and every score."""
    ws = open_workspace(workspace_path)
    result = T.export_rollouts(ws, out, runs=list(runs), suite=suite, fmt=out_format)
    status(f"wrote {result.count} rollout(s)" + (f" to {result.path}" if result.path else ""))


@export_cmd.command("lessons")
@click.option("--format", "out_format", type=click.Choice(T.LESSON_FORMATS), default="json", show_default=True,
              help="json: versions, events and provenance; markdown: for people.")
@click.option("--status", "lesson_status", type=click.Choice(STATUSES), default=None,
              help="Only lessons with this status.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The file to write (default: standard output).")
@workspace_option
@handle_errors
def export_lessons_cmd(out_format, lesson_status, out, workspace_path) -> None:
    """Lessons with their versions and provenance."""
    ws = open_workspace(workspace_path)
    result = T.export_lessons(ws, out, fmt=out_format, status=lesson_status)
    status(f"wrote {result.count} lesson(s)" + (f" to {result.path}" if result.path else ""))
