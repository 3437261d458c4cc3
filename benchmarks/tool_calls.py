"""Tool call overhead: what the agent loop pays per rollout (toolbox_for) and per call, in place and in a worker.

Prints `name: value` lines in microseconds: building a toolbox for a shop task, a built-in call in place
(spell, calc div, shop add_to_cart), and a python tool set's call through the worker pool (one at a time,
then 64 at once over the pool's workers). Targets: in-place calls ≤ 100 µs, a worker call ≤ 2 ms.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

from lessonlab.core.tools import toolbox_for
from lessonlab.core.verifiers import WorkerPool

SHOP = {"shop": {"items": [{"id": f"item-{i}", "name": f"Item {i}", "price": "1.25", "stock": 9,
                            "details": "Ingredients: oats."} for i in range(8)]}}
USER_TOOLS = 'def echo(text: str) -> str:\n    """Echo."""\n    return text\n\n\ndef make():\n    return [echo]\n'


def per_call_us(count: int, work) -> float:
    started = time.perf_counter()
    for _ in range(count):
        work()
    return (time.perf_counter() - started) / count * 1e6


async def in_place(count: int) -> dict[str, float]:
    shop_task = {"tools": ["shop", "letters", "calc"], "metadata": SHOP}
    figures = {"toolbox_for_us": per_call_us(count, lambda: toolbox_for(shop_task))}
    box = toolbox_for(shop_task)
    for name, tool, arguments in (("spell_call_us", "spell", {"word": "strawberry"}),
                                  ("calc_div_call_us", "div", {"a": "22", "b": "7"}),
                                  ("shop_add_call_us", "add_to_cart", {"item": "item-3", "qty": 2})):
        text = json.dumps(arguments)
        started = time.perf_counter()
        for _ in range(count):
            await box.call(None, tool, text, box.initial_state)
        figures[name] = (time.perf_counter() - started) / count * 1e6
    return figures


async def in_worker(count: int) -> dict[str, float]:
    box = toolbox_for({"tools": ["python:bench_user_tools:make"]}, trust=True)
    pool = WorkerPool()
    try:
        await box.call(pool, "echo", '{"text": "warm up"}', None)
        started = time.perf_counter()
        for _ in range(count):
            await box.call(pool, "echo", '{"text": "hello"}', None)
        one_at_a_time = (time.perf_counter() - started) / count * 1e6
        started = time.perf_counter()
        await asyncio.gather(*(box.call(pool, "echo", '{"text": "hello"}', None) for _ in range(count)))
        concurrent = (time.perf_counter() - started) / count * 1e6
    finally:
        await pool.close()
    return {"worker_call_us": one_at_a_time, "worker_call_c64_us": concurrent}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    figures = asyncio.run(in_place(args.calls))
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "bench_user_tools.py").write_text(USER_TOOLS, encoding="utf-8")
        sys.path.insert(0, tmp)
        import os

        os.chdir(tmp)
        figures.update(asyncio.run(in_worker(min(args.calls, 1000))))
    for name, value in figures.items():
        print(f"{name}: {value:.1f}")


if __name__ == "__main__":
    main()
