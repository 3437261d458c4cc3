"""Runner overhead: N rollouts against a loopback server with a fixed delay, at a given concurrency.

Prints `name: value` lines: wall time, ideal time (N × delay / concurrency), and their ratio (last).
Target: ratio ≤ 1.25.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lessonlab.core.runs.runner import create_run, execute_run
from lessonlab.core.settings import Endpoint
from lessonlab.core.lessons.snapshots import current_snapshot
from lessonlab.core.tasks.suites import load_suite
from lessonlab.core.storage.workspace import open_workspace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rollouts", type=int, default=2000)
    parser.add_argument("--delay-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--tasks", type=int, default=100)
    args = parser.parse_args()
    samples = max(1, args.rollouts // args.tasks)
    n = samples * args.tasks

    server = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("loopback_server.py")), "0", str(args.delay_ms / 1000)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        port = int(server.stdout.readline())
        with tempfile.TemporaryDirectory() as tmp:
            suite_path = Path(tmp) / "bench.jsonl"
            suite_path.write_text("".join(
                json.dumps({"id": f"t{i}", "prompt": f"What is {i} + 1?",
                            "verifier": {"kind": "numeric", "answer": 1}}) + "\n"
                for i in range(args.tasks)
            ))
            ws = open_workspace(Path(tmp) / "bench.db")
            suite = load_suite(str(suite_path))
            endpoint = Endpoint(name="loopback", base_url=f"http://127.0.0.1:{port}/v1", model="loopback-model")
            run_id = create_run(ws, suite, suite.select("train"), endpoint=endpoint, snapshot=current_snapshot(ws),
                                samples=samples, split="train", concurrency=args.concurrency, seed=1)
            started = time.perf_counter()
            result = asyncio.run(execute_run(ws, run_id, endpoint))
            wall = time.perf_counter() - started
            assert result.n_done == n and result.n_errors == 0, result
            ws.close()
    finally:
        server.terminate()
        server.wait()
    ideal = n * (args.delay_ms / 1000) / args.concurrency
    print(f"rollouts: {n}")
    print(f"concurrency: {args.concurrency}")
    print(f"wall_time_s: {wall:.3f}")
    print(f"ideal_time_s: {ideal:.3f}")
    print(f"overhead_ratio: {wall / ideal:.3f}")


if __name__ == "__main__":
    main()
