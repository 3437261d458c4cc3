"""One pool of killable worker processes for work that may run for ever: verifiers and tool calls.

Most kinds (exact, contains, numeric, game24, json_schema without patterns) take time linear in the
reply and are scored in place (a very long reply in a thread). A user's regex, a schema with `pattern`,
and trusted `python` functions may backtrack or loop without end, and neither a thread nor a signal can
stop Python's regex engine; they go to a small set of worker processes, and one that runs past the time
limit is killed (and replaced when next needed): the rollout scores 0 with "verifier timed out".
A tool call from a user's own tool set goes the same way (`run_tool`); one that runs past its limit is
killed and becomes an error result the model reads. The same workers serve both, one request at a time.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import sys

from lessonlab.core.verifiers.registry import DEFAULT_VERIFY_TIMEOUT, needs_isolation, verify
from lessonlab.core.verifiers.verdict import Verdict

log = logging.getLogger("lessonlab.verifiers")

# Replies up to this long are scored in place: microseconds, cheaper than any hand-off.
INLINE_LIMIT_CHARS = 100_000
_START_TIMEOUT = 60.0
# The largest reply line a worker sends; a tool result (and state) over it becomes an error result instead.
MAX_REPLY_BYTES = 32 * 1024 * 1024


class _WorkerFailed(Exception):
    """A worker that could not be started, died, or answered with something unreadable."""


class _Worker:
    """One worker process and its pipes."""

    def __init__(self, proc: asyncio.subprocess.Process):
        self.proc = proc

    @classmethod
    async def start(cls) -> "_Worker":
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "lessonlab.core.verifiers.worker", str(os.getpid()),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in the terminal is for lessonlab, which then kills the worker
            limit=MAX_REPLY_BYTES + 1024,  # a reply is one line; asyncio's default (64 KB) is below a tool's result
        )
        worker = cls(proc)
        try:
            ready = await asyncio.wait_for(proc.stdout.readline(), _START_TIMEOUT)
        except BaseException:
            await worker.kill()
            raise
        if not ready:
            await worker.kill()
            raise RuntimeError(f"the worker process exited at start (code {proc.returncode})")
        return worker

    async def call(self, request: dict, timeout: float) -> dict | None:
        """The worker's reply, or None when it ran past the timeout (the worker is then dead)."""
        self.proc.stdin.write(json.dumps(request).encode() + b"\n")
        await self.proc.stdin.drain()
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        except asyncio.TimeoutError:
            await self.kill()
            return None
        if not line:
            await self.kill()
            raise RuntimeError(f"the worker process died (exit code {self.proc.returncode})")
        return json.loads(line)

    async def kill(self) -> None:
        """Stop the process now and reap it."""
        if self.proc.returncode is None:
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass
        await self.proc.wait()

    async def close(self) -> None:
        """Let the process end (stdin closed), killing it if it lingers."""
        if self.proc.returncode is None and self.proc.stdin is not None:
            self.proc.stdin.close()
            try:
                await asyncio.wait_for(self.proc.wait(), 2.0)
            except asyncio.TimeoutError:
                pass
        await self.kill()


class WorkerPool:
    """Scores replies and runs tool calls without blocking the event loop, with a time limit where work may hang."""

    def __init__(self, *, timeout: float = DEFAULT_VERIFY_TIMEOUT, workers: int | None = None):
        self.timeout = timeout
        self.size = workers or max(1, min(2, os.cpu_count() or 1))
        self._idle: list[_Worker] = []
        self._all: set[_Worker] = set()
        self._slots = asyncio.Semaphore(self.size)

    async def verify(self, spec: dict, output: str, *, task: dict | None = None, trust: bool = False) -> Verdict:
        """A Verdict for the reply; never raises, and never takes much longer than the time limit."""
        if not needs_isolation(spec, trust):
            if len(output) <= INLINE_LIMIT_CHARS:
                return verify(spec, output, task=task, trust_python=trust)
            return await asyncio.to_thread(verify, spec, output, task=task, trust_python=trust)
        request = {"op": "verify", "spec": spec, "output": output, "task": task, "trust": trust}
        try:
            reply = await self._ask(request, self.timeout)
        except _WorkerFailed as exc:
            return Verdict(0.0, f"verifier error: {exc}")
        if reply is None:
            return Verdict(0.0, f"verifier timed out after {self.timeout:g} s (a pattern that backtracks "
                                "without end, or user code that does not return)")
        return Verdict(reply["reward"], reply["feedback"])

    async def run_tool(self, set_ref: str, tool: str, arguments: dict, state, *, timeout: float) -> dict:
        """One tool call in a worker: {"content", "error", "state"}; never raises, a timeout kills the worker."""
        request = {"op": "tool", "set": set_ref, "tool": tool, "arguments": arguments, "state": state}
        try:
            reply = await self._ask(request, timeout)
        except _WorkerFailed as exc:
            return {"content": f"error: {exc}", "error": True, "state": state}
        if reply is None:
            return {"content": f"error: the tool {tool} timed out after {timeout:g} s and was stopped",
                    "error": True, "state": state}
        return reply

    async def _ask(self, request: dict, timeout: float) -> dict | None:
        """A worker's reply, None after a timeout (that worker is killed); _WorkerFailed when it broke."""
        async with self._slots:
            worker = None
            try:
                worker = self._idle.pop() if self._idle else await self._start()
                reply = await worker.call(request, timeout)
            except asyncio.CancelledError:
                if worker is not None:
                    await asyncio.shield(self._discard(worker))  # its state is unknown: never reuse it
                raise
            except Exception as exc:  # noqa: BLE001 - callers turn any failure into a result
                if worker is not None:
                    await self._discard(worker)
                raise _WorkerFailed(f"{type(exc).__name__}: {exc}") from exc
            if reply is None:
                await self._discard(worker)
                return None
            self._idle.append(worker)
            return reply

    async def _start(self) -> _Worker:
        worker = await _Worker.start()
        self._all.add(worker)
        return worker

    async def _discard(self, worker: _Worker) -> None:
        self._all.discard(worker)
        if worker in self._idle:
            self._idle.remove(worker)
        await worker.kill()

    async def close(self) -> None:
        """End every worker process."""
        workers, self._all, self._idle = list(self._all), set(), []
        await asyncio.gather(*(worker.close() for worker in workers), return_exceptions=True)


# The name callers used before the pool also ran tool calls.
VerifierPool = WorkerPool
