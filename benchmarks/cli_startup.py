"""CLI startup: `lessonlab --version`, `runs`, `show RUN` and `lessons list` as whole processes.

Each command runs as a fresh process, interleaved with the reference `python -c "import click"` (the least
any click program costs) so both see the same machine load; the figure is the median wall time over the
repeats, and each command's ratio to the reference. Target: every ratio ≤ 2. The children may write bytecode
(PYTHONDONTWRITEBYTECODE is dropped for them), as an installed program has it: otherwise every lessonlab
module is compiled from source on every start while click's cached bytecode is read.
Prints `name: value` lines.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lessonlab.core import lessons as L
from lessonlab.core.storage.workspace import open_workspace
from lessonlab.core.transfer import import_file


def lessonlab_command() -> list[str]:
    """The installed `lessonlab` script beside this interpreter, else `python -m lessonlab`."""
    script = Path(sys.executable).with_name("lessonlab")
    return [str(script)] if script.exists() else [sys.executable, "-m", "lessonlab"]


def make_workspace(folder: Path) -> tuple[Path, str]:
    """A workspace with one imported run of 200 rollouts over 20 tasks and three lessons."""
    source = folder / "chat.jsonl"
    with open(source, "w", encoding="utf-8") as out:
        for i in range(200):
            record = {"messages": [{"role": "user", "content": f"What is {i % 20} + 1?"},
                                   {"role": "assistant", "content": f"Answer: {i % 20 + 1}"}],
                      "reward": float(i % 3 != 0), "task_id": f"t{i % 20}", "model": "bench-model"}
            out.write(json.dumps(record) + "\n")
    path = folder / "ws.db"
    ws = open_workspace(path)
    run_id = import_file(ws, source).run_id
    for text in ("Add the units first.", "Check the carry.", "Say the answer on the last line."):
        L.add_lesson(ws, text)
    ws.close()
    return path, run_id


def timed(command: list[str], env: dict) -> float:
    """Wall seconds of one whole process; it must succeed."""
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        workspace, run_id = make_workspace(folder)
        env = {**os.environ, "LESSONLAB_CONFIG_DIR": str(folder / "config"), "LESSONLAB_WORKSPACE": str(workspace)}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        lessonlab = lessonlab_command()
        commands = {
            "version": [*lessonlab, "--version"],
            "runs": [*lessonlab, "runs", "--workspace", str(workspace)],
            "show_run": [*lessonlab, "show", run_id, "--workspace", str(workspace)],
            "lessons_list": [*lessonlab, "lessons", "list", "--workspace", str(workspace)],
        }
        reference_command = [sys.executable, "-c", "import click"]
        for command in [reference_command, *commands.values()]:
            timed(command, env)  # warm the file cache and bytecode once
        reference: list[float] = []
        figures: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.repeats):
            for name, command in commands.items():
                reference.append(timed(reference_command, env))
                figures[name].append(timed(command, env))
        base = statistics.median(reference)
        print(f"import_click_ms: {base * 1000:.0f}")
        for name, samples in figures.items():
            median = statistics.median(samples)
            print(f"{name}_ms: {median * 1000:.0f}")
            print(f"{name}_ratio: {median / base:.2f}")


if __name__ == "__main__":
    main()
