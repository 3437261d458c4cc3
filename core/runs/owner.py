"""Which process executes a run: claimed when execution starts, so a killed run reads as interrupted
and a second `run --resume` of a run being executed is refused instead of sending every request twice.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from lessonlab.core.errors import WorkFailed
from lessonlab.core.storage.workspace import Workspace, now


class RunBusy(WorkFailed):
    """The run is being executed by another live process."""


@dataclass(frozen=True)
class Owner:
    """A process: pid, host and the start time the OS reports for it (tells a reused pid apart)."""

    pid: int
    host: str
    started: str | None


def process_started(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux /proc), or None where it cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read().decode("ascii", "replace")
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: fields after the last ')' are fixed.
    fields = stat[stat.rfind(")") + 2:].split()
    if len(fields) < 20 or fields[0] == "Z":   # a zombie has ended
        return None
    return fields[19]


def host_name() -> str:
    """This machine's host name, as recorded for a run's owner."""
    # socket is imported here: listing runs asks for the host only when a run reads as running.
    import socket

    return socket.gethostname()


def this_process() -> Owner:
    """The owner record for the current process."""
    return Owner(os.getpid(), host_name(), process_started(os.getpid()))


def is_alive(pid: int | None, host: str | None, started: str | None) -> bool:
    """Whether the recorded owner still runs (a process on another host is assumed to)."""
    if pid is None:
        return False
    if host and host != host_name():
        return True  # cannot be checked from here
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    if started is not None:
        return process_started(pid) == started  # None: ended (zombie); different: the pid was reused
    return True


def effective_status(row: dict) -> str:
    """A run's status as it really is: 'running' whose process is gone reads 'interrupted'."""
    if row.get("status") == "running" and not is_alive(row.get("owner_pid"), row.get("owner_host"),
                                                        row.get("owner_started")):
        return "interrupted"
    return row.get("status")


def busy_message(row: dict) -> str:
    """The sentence refusing to execute a run another live process executes."""
    where = f" on {row['owner_host']}" if row.get("owner_host") and row["owner_host"] != host_name() else ""
    return (f"run {row['id']} is being executed by process {row['owner_pid']}{where}; wait for it to finish "
            f"or stop it (Ctrl-C), then resume")


def check_not_running(ws: Workspace, run_id: str) -> None:
    """RunBusy when another live process executes the run now (a read: no lock taken)."""
    row = ws.one("SELECT id, status, owner_pid, owner_host, owner_started FROM runs WHERE id = ?", (run_id,))
    if row and effective_status(row) == "running":
        raise RunBusy(busy_message(row))


def claim(ws: Workspace, run_id: str, base_url: str | None) -> None:
    """Mark the run running under this process, in one write transaction; RunBusy if a live process has it."""
    me = this_process()
    with ws.transaction():
        row = ws.one("SELECT id, status, owner_pid, owner_host, owner_started FROM runs WHERE id = ?", (run_id,))
        if row and effective_status(row) == "running":
            raise RunBusy(busy_message(row))
        ws.conn.execute(
            "UPDATE runs SET status = 'running', started_at = COALESCE(started_at, ?), finished_at = NULL,"
            " base_url = COALESCE(?, base_url), owner_pid = ?, owner_host = ?, owner_started = ? WHERE id = ?",
            (now(), base_url, me.pid, me.host, me.started, run_id),
        )
