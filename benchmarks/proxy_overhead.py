"""Proxy overhead: `lessonlab serve` (a child process) in front of the loopback server.

Prints `name: value` lines:
- median_direct_ms / median_proxied_ms / median_added_ms: sequential non-streamed requests, straight to the
  loopback server and through the proxy (target: added ≤ 2 ms at the median);
- requests_per_s: non-streamed requests through the proxy with 64 concurrent clients (target ≥ 500);
- first_chunk_direct_ms / first_chunk_proxied_ms / first_chunk_added_ms: from the moment a streaming upstream
  writes its first chunk to the moment the client has it, median over streamed requests (target: added ≤ 5 ms);
- proxy_cpu_ms_per_request: the proxy's CPU per request during the throughput phase (so the figures above can
  be judged on a machine shared with other work; see loadavg_1m);
- recorded: exchanges in the workspace after the proxy stopped (every one of them).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from loopback_server import read_request  # the benchmarks folder is on sys.path when a script runs

BODY = {"model": "m", "messages": [{"role": "system", "content": "You are terse."},
                                   {"role": "user", "content": "What is 1 + 1?"}]}
FIRST_CHUNK_SENT: dict[str, float] = {}


def _chunk(text: str) -> bytes:
    event = {"object": "chat.completion.chunk", "model": "stream-model",
             "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}
    return f"data: {json.dumps(event)}\n\n".encode()


async def _stream_handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A streaming upstream: headers, one chunk (its send time noted), a pause, the rest."""
    try:
        while True:
            await read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
            await writer.drain()
            await asyncio.sleep(0.01)
            first = _chunk("Answer")
            FIRST_CHUNK_SENT["first"] = time.perf_counter()
            writer.write(b"%x\r\n%s\r\n" % (len(first), first))
            await writer.drain()
            await asyncio.sleep(0.02)
            rest = _chunk(": 2") + b"data: [DONE]\n\n"
            writer.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(rest), rest))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
        pass  # the client left, or the benchmark is over
    finally:
        writer.close()


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_serve(tmp: Path, upstream: str, name: str) -> tuple[subprocess.Popen, str]:
    """A `lessonlab serve` child forwarding to `upstream`, and its base URL."""
    env = {**os.environ, "LESSONLAB_CONFIG_DIR": str(tmp / "config"), "LESSONLAB_DATA_DIR": str(tmp / "data")}
    subprocess.run([sys.executable, "-m", "lessonlab", "endpoints", "add", name, "--base-url", upstream,
                    "--model", "bench-model"], env=env, check=True, capture_output=True)
    proc = subprocess.Popen([sys.executable, "-m", "lessonlab", "serve", "--endpoint", name, "--port", "0",
                             "-w", str(tmp / "ws.db")], env=env, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    return proc, line.split()[1]


async def sequential_ms(session: aiohttp.ClientSession, url: str, n: int) -> list[float]:
    """Latency of n requests one after another (ms)."""
    times = []
    for _ in range(n):
        started = time.perf_counter()
        async with session.post(f"{url}/chat/completions", json=BODY) as response:
            await response.read()
            assert response.status == 200, response.status
        times.append((time.perf_counter() - started) * 1000)
    return times


async def throughput(url: str, total: int, clients: int) -> float:
    """Requests per second with `clients` concurrent clients."""
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        remaining = [total]

        async def client() -> None:
            while remaining[0] > 0:
                remaining[0] -= 1
                async with session.post(f"{url}/chat/completions", json=BODY) as response:
                    await response.read()
                    assert response.status == 200, response.status

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        return total / (time.perf_counter() - started)


async def run(args) -> dict:
    loop_proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("loopback_server.py")), "0", "0"],
                                 stdout=subprocess.PIPE, text=True)
    stream_server = await asyncio.start_server(_stream_handler, "127.0.0.1", 0)
    stream_url = f"http://127.0.0.1:{stream_server.sockets[0].getsockname()[1]}/v1"
    figures: dict = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        loop_url = f"http://127.0.0.1:{int(loop_proc.stdout.readline())}/v1"
        proxy, proxy_url = start_serve(tmp, loop_url, "loopback")
        try:
            async with aiohttp.ClientSession() as session:
                await sequential_ms(session, proxy_url, 50)   # warm-up: connections, caches
                await sequential_ms(session, loop_url, 50)
                direct = statistics.median(await sequential_ms(session, loop_url, args.requests))
                proxied = statistics.median(await sequential_ms(session, proxy_url, args.requests))
            figures.update(median_direct_ms=direct, median_proxied_ms=proxied, median_added_ms=proxied - direct)
            cpu_before = process_cpu_s(proxy.pid)
            figures["requests_per_s"] = await throughput(proxy_url, args.load, args.clients)
            # CPU the proxy spent per request (both its threads): what a free core would allow, whatever the load.
            figures["proxy_cpu_ms_per_request"] = (process_cpu_s(proxy.pid) - cpu_before) * 1000 / args.load
        finally:
            proxy.send_signal(signal.SIGTERM)
            proxy.wait(60)
            loop_proc.terminate()
            loop_proc.wait()
        recorded = _count(tmp / "ws.db")
        stream_tmp = tmp / "stream"
        stream_tmp.mkdir()
        proxy, proxy_url = start_serve(stream_tmp, stream_url, "streaming")
        try:
            async with aiohttp.ClientSession() as session:
                direct = statistics.median(await _first_chunk_ms(session, stream_url, stream_url, args.streams))
                proxied = statistics.median(await _first_chunk_ms(session, proxy_url, stream_url, args.streams))
            figures.update(first_chunk_direct_ms=direct, first_chunk_proxied_ms=proxied,
                           first_chunk_added_ms=proxied - direct)
        finally:
            proxy.send_signal(signal.SIGTERM)
            proxy.wait(60)
            stream_server.close()
        figures["recorded"] = recorded
        figures["expected"] = 50 + args.requests + args.load
    return figures


async def _first_chunk_ms(session, url: str, upstream: str, n: int) -> list[float]:
    """From the upstream writing its first chunk to the client holding it (ms), per streamed request, one at a time."""
    delays = []
    for i in range(n):
        FIRST_CHUNK_SENT.clear()
        async with session.post(f"{url}/chat/completions", json={**BODY, "stream": True}) as response:
            chunk = b""
            while b"Answer" not in chunk:
                chunk += await response.content.readany()
            received = time.perf_counter()
            sent = next(iter(FIRST_CHUNK_SENT.values()))
            delays.append((received - sent) * 1000)
            await response.read()
    return delays


def _count(path: Path) -> int:
    import sqlite3

    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT COUNT(*) FROM rollouts").fetchone()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="sequential requests for the latency median")
    parser.add_argument("--load", type=int, default=3000, help="requests for the throughput figure")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--streams", type=int, default=50)
    args = parser.parse_args()
    figures = asyncio.run(run(args))
    figures["loadavg_1m"] = os.getloadavg()[0]   # other work on the machine: the figures above share its cores
    figures["cpu_count"] = os.cpu_count()
    for name, value in figures.items():
        print(f"{name}: {value:.2f}" if isinstance(value, float) else f"{name}: {value}")


if __name__ == "__main__":
    main()
