"""Faults: a run against a loopback server that fails a share of requests in every way a server can.

The server (a child process) fails 20% of requests, in turn: 429 with Retry-After, 500, 503, a hang
past the client's timeout, a dropped connection, a truncated body, a body that is not JSON. Midway,
another connection holds the workspace's write lock for a while. Prints `name: value` lines:
requested, requests_sent, recorded_ok, recorded_failed, missing, duplicated, wall_time_s.
Target: missing = duplicated = 0.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from loopback_server import read_request  # the benchmarks folder is on sys.path when a script runs

FAULTS = ("429", "500", "503", "hang", "drop", "truncated", "not-json")


def _reply(content: str = "Answer: 1") -> bytes:
    return json.dumps({
        "id": "chatcmpl-faults", "object": "chat.completion", "created": 0, "model": "faults-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 20, "completion_tokens": 3, "total_tokens": 23},
    }).encode()


def _response(status: str, body: bytes, extra: str = "", length: int | None = None) -> bytes:
    return (f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{extra}"
            f"Content-Length: {len(body) if length is None else length}\r\n\r\n").encode() + body


async def _handle(reader, writer, state) -> None:
    try:
        while True:
            await read_request(reader)
            state["n"] += 1
            fault = FAULTS[state["n"] % len(FAULTS)] if state["rng"].random() < state["rate"] else None
            await asyncio.sleep(state["delay"])
            if fault == "hang":
                await asyncio.sleep(state["hang"])
                return
            if fault == "drop":
                return
            if fault == "truncated":
                body = _reply()
                writer.write(_response("200 OK", body[: len(body) // 2], length=len(body)))
                await writer.drain()
                return
            if fault in ("429", "500", "503"):
                status = {"429": "429 Too Many Requests", "500": "500 Internal Server Error",
                          "503": "503 Service Unavailable"}[fault]
                extra = "Retry-After: 1\r\n" if fault != "500" else ""
                writer.write(_response(status, b'{"error": {"message": "injected"}}', extra))
            elif fault == "not-json":
                writer.write(_response("200 OK", b"<html>bad gateway</html>"))
            else:
                writer.write(_response("200 OK", _reply()))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def _serve(rate: float, delay: float, hang: float, seed: int) -> None:
    state = {"n": 0, "rng": random.Random(seed), "rate": rate, "delay": delay, "hang": hang}
    server = await asyncio.start_server(lambda r, w: _handle(r, w, state), "127.0.0.1", 0, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)

    async def report():
        # stdin closes when the benchmark is done: say how many requests came in, then stop.
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        print(state["n"], flush=True)

    async with server:
        await report()


def _hold_lock(path: Path, after: float, seconds: float, done: threading.Event) -> None:
    time.sleep(after)
    if done.is_set():
        return
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    time.sleep(seconds)
    conn.execute("COMMIT")
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rollouts", type=int, default=1000)
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--fault-rate", type=float, default=0.2)
    parser.add_argument("--delay-ms", type=float, default=20.0, help="Latency of every answer.")
    parser.add_argument("--timeout", type=float, default=2.0, help="Client timeout per request (hangs exceed it).")
    parser.add_argument("--lock-seconds", type=float, default=2.0, help="Workspace write lock held midway (0: none).")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_serve(args.fault_rate, args.delay_ms / 1000, args.timeout * 2, args.seed))
        return

    from lessonlab.core.runs.runner import create_run, execute_run
    from lessonlab.core.settings import Endpoint
    from lessonlab.core.lessons.snapshots import current_snapshot
    from lessonlab.core.tasks.suites import load_suite
    from lessonlab.core.storage.workspace import open_workspace

    samples = max(1, args.rollouts // args.tasks)
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", "--fault-rate", str(args.fault_rate), "--delay-ms", str(args.delay_ms),
         "--timeout", str(args.timeout), "--seed", str(args.seed)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    done = threading.Event()
    try:
        port = int(server.stdout.readline())
        with tempfile.TemporaryDirectory() as tmp:
            suite_path = Path(tmp) / "faults.jsonl"
            suite_path.write_text("".join(
                json.dumps({"id": f"t{i}", "prompt": f"What is {i} + 1?",
                            "verifier": {"kind": "numeric", "answer": 1}}) + "\n" for i in range(args.tasks)))
            ws_path = Path(tmp) / "faults.db"
            ws = open_workspace(ws_path)
            suite = load_suite(str(suite_path))
            endpoint = Endpoint(name="faults", base_url=f"http://127.0.0.1:{port}/v1", model="faults-model",
                                timeout=args.timeout)
            run_id = create_run(ws, suite, suite.select("train"), endpoint=endpoint, snapshot=current_snapshot(ws),
                                samples=samples, split="train", concurrency=args.concurrency, seed=args.seed)
            if args.lock_seconds > 0:
                threading.Thread(target=_hold_lock, args=(ws_path, 1.0, args.lock_seconds, done), daemon=True).start()
            started = time.perf_counter()
            result = asyncio.run(execute_run(ws, run_id, endpoint))
            wall = time.perf_counter() - started
            done.set()
            planned = result.n_planned
            rows = ws.one("SELECT COUNT(*) AS n, COUNT(DISTINCT task_id || ':' || sample_index) AS distinct_n,"
                          " SUM(status = 'ok') AS ok, SUM(status = 'error') AS failed FROM rollouts WHERE run_id = ?",
                          (run_id,))
            errors = ws.query("SELECT error, COUNT(*) AS n FROM rollouts WHERE status = 'error' GROUP BY 1")
            ws.close()
        server.stdin.close()
        sent = int(server.stdout.readline() or 0)
    finally:
        done.set()
        server.kill()
        server.wait()
    print(f"requested: {planned}")
    print(f"requests_sent: {sent}")
    print(f"recorded_ok: {rows['ok'] or 0}")
    print(f"recorded_failed: {rows['failed'] or 0}")
    print(f"missing: {planned - rows['distinct_n']}")
    print(f"duplicated: {rows['n'] - rows['distinct_n']}")
    print(f"run_status: {result.status}")
    for row in errors:
        print(f"# failed for good ({row['n']}): {row['error'][:120]}", file=sys.stderr)
    print(f"wall_time_s: {wall:.3f}")


if __name__ == "__main__":
    main()
