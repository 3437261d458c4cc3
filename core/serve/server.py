"""Starting and stopping the proxy: checks (host, token), the run record, the listening socket."""
from __future__ import annotations

import asyncio
import ipaddress
import os
import signal
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from aiohttp import web

from lessonlab.core.errors import BadInput, WorkFailed
from lessonlab.core.serve.app import ProxyState, build_app
from lessonlab.core.serve.episodes import Conversations
from lessonlab.core.serve.forwarding import Upstream
from lessonlab.core.serve.injection import LessonSource
from lessonlab.core.serve.recording import Recorder, ServeRunInfo
from lessonlab.core.settings import Endpoint, SettingsError
from lessonlab.core.storage.workspace import open_workspace


class ServeError(BadInput):
    """The proxy cannot start as asked (host, token, port)."""


@dataclass
class ServeConfig:
    """How to serve: the endpoint and its base URL, where to listen, the lessons' scope, the client token."""

    endpoint: Endpoint
    base_url: str
    workspace_path: Path
    host: str = "127.0.0.1"
    port: int = 8765
    suite: str | None = None
    token_env: str | None = None

    def token(self) -> str | None:
        """The token clients must send (None: loopback only, no token needed)."""
        if self.token_env is None:
            return None
        value = os.environ.get(self.token_env)
        if not value:
            raise ServeError(f"--token-env {self.token_env}: that variable is not set or empty")
        return value

    def check(self) -> None:
        """ServeError when a non-loopback host has no token, or the port is out of range."""
        if not 0 <= self.port <= 65535:
            raise ServeError(f"--port {self.port} is not a port (0 to 65535; 0 picks a free one)")
        token = self.token()
        if not is_loopback(self.host) and token is None:
            raise ServeError(f"--host {self.host} is reachable from other machines; refusing to serve it "
                             f"without --token-env VAR (a variable holding the token clients must send)")


def is_loopback(host: str) -> bool:
    """Whether `host` names only this machine (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_host(host: str) -> str:
    """The host as written in a URL (IPv6 in brackets)."""
    return f"[{host}]" if ":" in host else host


class Proxy:
    """One proxy: `start` (in a running loop) binds and returns its URL; `stop` records everything and closes."""

    def __init__(self, config: ServeConfig):
        config.check()
        self.config = config
        self.url: str | None = None
        self._runner: web.AppRunner | None = None
        self._recorder: Recorder | None = None
        self._ws = None
        self._upstream: Upstream | None = None

    async def start(self) -> str:
        """Open the workspace and upstream pool, start the writer, listen; return the client base URL."""
        cfg = self.config
        try:
            key = cfg.endpoint.api_key() if cfg.endpoint.key_env else None
        except SettingsError as exc:
            raise ServeError(str(exc)) from None
        self._ws = open_workspace(cfg.workspace_path)
        self._ws.require_writable()
        self._upstream = Upstream(cfg.base_url, key, cfg.endpoint.timeout)
        await self._upstream.open()
        sock = socket.socket(socket.AF_INET6 if ":" in cfg.host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((cfg.host, cfg.port))
        except OSError as exc:
            sock.close()
            await self._upstream.close()
            raise ServeError(f"cannot listen on {cfg.host}:{cfg.port} ({exc.strerror or exc})") from None
        port = sock.getsockname()[1]
        self.url = f"http://{url_host(cfg.host)}:{port}/v1"
        self._recorder = Recorder(cfg.workspace_path, ServeRunInfo(
            endpoint=cfg.endpoint.name, base_url=cfg.base_url, model=cfg.endpoint.model, source=self.url,
            params=dict(cfg.endpoint.params)))
        self._recorder.start()
        state = ProxyState(workspace_path=cfg.workspace_path, model=cfg.endpoint.model,
                           params=dict(cfg.endpoint.params), suite=cfg.suite,
                           token=cfg.token(), lessons=LessonSource(self._ws), conversations=Conversations(),
                           recorder=self._recorder, upstream=self._upstream, issued=set())
        self._runner = web.AppRunner(build_app(state), access_log=None, handle_signals=False,
                                     shutdown_timeout=5.0)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()
        return self.url

    async def stop(self) -> None:
        """Stop listening, let requests in flight finish (up to 5 s), write every exchange, mark runs completed."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._upstream is not None:
            await self._upstream.close()
        if self._recorder is not None:
            await asyncio.to_thread(self._recorder.stop)
        if self._ws is not None:
            self._ws.close()
            self._ws = None
        if self._recorder is not None and self._recorder.failed:
            raise WorkFailed(f"{self._recorder.failed} (locked by another process, read-only or full)")

    def run_ids(self) -> dict:
        """The serve run of each scope this proxy has recorded into."""
        return self._recorder.run_ids() if self._recorder else {}


async def serve_until_stopped(config: ServeConfig, on_ready: Callable[[str], None],
                              stop: asyncio.Event | None = None) -> None:
    """Serve until SIGINT/SIGTERM (or `stop` is set), then stop cleanly with everything recorded."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    proxy = Proxy(config)
    installed = []
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    try:
        on_ready(await proxy.start())
        await stop.wait()
    finally:
        await proxy.stop()
        for sig in installed:
            loop.remove_signal_handler(sig)


class ProxyThread:
    """A proxy on its own event loop thread (tests, scripts): `start()` returns the URL, `stop()` ends it."""

    def __init__(self, config: ServeConfig):
        self.config = config
        self.url: str | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="lessonlab-proxy", daemon=True)
        self._proxy = Proxy(config)

    def start(self) -> str:
        """Start and return the base URL clients use."""
        self._thread.start()
        self.url = asyncio.run_coroutine_threadsafe(self._proxy.start(), self._loop).result(30)
        return self.url

    def stop(self) -> None:
        """Stop with everything recorded."""
        try:
            asyncio.run_coroutine_threadsafe(self._proxy.stop(), self._loop).result(60)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()

    def run_ids(self) -> dict:
        """The serve run per scope."""
        return self._proxy.run_ids()

    def __enter__(self) -> "ProxyThread":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
