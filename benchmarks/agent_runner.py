"""Agent-runner overhead: rollouts of tasks with tools against the loopback server, next to a bare aiohttp client.

Two phases, each against `loopback_server.py` at a fixed delay per model call and the same concurrency:
single calls (tasks without tools) and agent loops (each rollout makes TOOL_STEPS tool calls, then answers).
In each phase a bare aiohttp client first drives the same requests in this same process (same bodies, the
same loop of appending the assistant and tool messages), then lessonlab runs them through `execute_run`.
Prints `name: value` lines: wall / ideal, rollouts/s, CPU µs per rollout (lessonlab and the bare client),
peak memory, and `ratio_to_bare_client` (target ≤ 1.1).
The tool is the built-in `letters.spell` through the real toolbox (built-in sets run in place, not in workers).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from lessonlab.core.lessons.snapshots import base_prompt, build_messages, current_snapshot
from lessonlab.core.runs.runner import create_run, execute_run
from lessonlab.core.settings import Endpoint
from lessonlab.core.storage.workspace import open_workspace
from lessonlab.core.tasks.suites import Suite, Task
from lessonlab.core.tools import toolbox_for

def suite_of(n_tasks: int, with_tools: bool) -> Suite:
    tools = ("letters.spell",) if with_tools else ()
    return Suite("bench", "benchmark", tuple(
        Task(f"t{i}", f"What is {i} + 1?", {"kind": "numeric", "answer": 1}, tools=tools,
             max_turns=20 if with_tools else None)
        for i in range(n_tasks)))


async def bare_client(url: str, bodies: list[dict], concurrency: int) -> tuple[float, float]:
    """Wall and CPU seconds for a bare aiohttp client to drive every rollout (following tool calls) at the concurrency."""
    queue = list(reversed(bodies))

    async def worker(session: aiohttp.ClientSession) -> None:
        while queue:
            body = queue.pop()
            messages = list(body["messages"])
            while True:
                async with session.post(url, json={**body, "messages": messages}) as response:
                    reply = await response.json()
                message = reply["choices"][0]["message"]
                if not message.get("tool_calls"):
                    break
                messages.append({"role": "assistant", "content": message["content"],
                                 "tool_calls": message["tool_calls"]})
                for call in message["tool_calls"]:
                    text = "\n".join(json.loads(call["function"]["arguments"])["word"])
                    messages.append({"role": "tool", "tool_call_id": call["id"], "name": "spell", "content": text})

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        return time.perf_counter() - started, time.process_time() - cpu


def lessonlab_run(tmp: Path, port: int, suite: Suite, samples: int, concurrency: int) -> tuple[float, float, int]:
    """Wall and CPU seconds for execute_run to send and store every rollout, and how many it stored."""
    ws = open_workspace(tmp / f"bench-{time.monotonic_ns()}.db")
    endpoint = Endpoint(name="loopback", base_url=f"http://127.0.0.1:{port}/v1", model="loopback-model")
    run_id = create_run(ws, suite, list(suite.tasks), endpoint=endpoint, snapshot=current_snapshot(ws),
                        samples=samples, split="train", concurrency=concurrency, seed=1)
    started, cpu = time.perf_counter(), time.process_time()
    result = asyncio.run(execute_run(ws, run_id, endpoint))
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert result.n_errors == 0, result
    ws.close()
    return wall, cpu, result.n_done


def phase(name: str, tmp: Path, args, with_tools: bool) -> None:
    steps = args.tool_steps if with_tools else 0
    server = subprocess.Popen([sys.executable, str(Path(__file__).with_name("loopback_server.py")), "0",
                               str(args.delay_ms / 1000), str(steps)], stdout=subprocess.PIPE, text=True)
    try:
        port = int(server.stdout.readline())
        suite = suite_of(args.tasks, with_tools)
        samples = max(1, args.rollouts // args.tasks)
        system = base_prompt()   # what a run on a workspace without lessons sends
        bodies = [{"model": "loopback-model", "messages": build_messages(system, task.messages()),
                   **({"tools": toolbox_for(task).schemas} if with_tools else {})}
                  for _ in range(samples) for task in suite.tasks]
        bare, bare_cpu = asyncio.run(bare_client(f"http://127.0.0.1:{port}/v1/chat/completions", bodies,
                                                 args.concurrency))
        wall, cpu, n = lessonlab_run(tmp, port, suite, samples, args.concurrency)
    finally:
        server.terminate()
        server.wait()
    calls = n * (steps + 1)
    ideal = calls * (args.delay_ms / 1000) / args.concurrency
    print(f"{name}_rollouts: {n}")
    print(f"{name}_model_calls: {calls}")
    print(f"{name}_wall_s: {wall:.3f}")
    print(f"{name}_wall_over_ideal: {wall / ideal:.3f}")
    print(f"{name}_bare_client_over_ideal: {bare / ideal:.3f}")
    print(f"{name}_rollouts_per_s: {n / wall:.1f}")
    # CPU per rollout moves far less with the machine's load than wall time: it says where the ratio comes from.
    print(f"{name}_cpu_us_per_rollout: {cpu / n * 1e6:.0f}")
    print(f"{name}_bare_client_cpu_us_per_rollout: {bare_cpu / n * 1e6:.0f}")
    print(f"{name}_peak_memory_mb: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}")
    print(f"{name}_ratio_to_bare_client: {wall / bare:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rollouts", type=int, default=500)
    parser.add_argument("--tool-steps", type=int, default=4)
    parser.add_argument("--delay-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--tasks", type=int, default=50)
    args = parser.parse_args()
    print(f"concurrency: {args.concurrency}")
    print(f"delay_ms: {args.delay_ms:g}")
    with tempfile.TemporaryDirectory() as tmp:
        phase("single", Path(tmp), args, with_tools=False)
        phase("agent", Path(tmp), args, with_tools=True)


if __name__ == "__main__":
    main()
