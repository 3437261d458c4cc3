"""A worker process: reads one JSON request per line on stdin, writes one JSON reply per line.

Started by `WorkerPool` for work that can run for ever: verifiers (a user's regex, a schema `pattern`, a
`python` function) scored as verdicts, and tool calls of a user's own tool set (`"op": "tool"`). It lives
in its own session, so Ctrl-C in the terminal reaches only lessonlab, which kills it; it also dies with its
parent (Linux) and exits when its stdin closes.
"""
from __future__ import annotations

import json
import os
import signal
import sys


def _die_with_parent(parent: int) -> None:
    if sys.platform == "linux":
        try:
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(0)


def main() -> None:
    """Serve verification requests until stdin closes."""
    _die_with_parent(int(sys.argv[1]) if len(sys.argv) > 1 else os.getppid())
    # Replies go to a private copy of stdout; a user verifier that prints writes to stderr instead.
    replies = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    from lessonlab.core.verifiers.pool import MAX_REPLY_BYTES
    from lessonlab.core.verifiers.registry import verify  # the package registers every kind on import

    replies.write(b'{"ready": true}\n')
    for line in sys.stdin.buffer:
        request = json.loads(line)
        if request.get("op") == "tool":
            from lessonlab.core.tools.running import execute_request

            reply = execute_request(request)
        else:
            verdict = verify(request["spec"], request["output"], task=request.get("task"),
                             trust_python=bool(request.get("trust")))
            reply = {"reward": verdict.reward, "feedback": verdict.feedback}
        line = json.dumps(reply).encode()
        if len(line) > MAX_REPLY_BYTES:
            line = json.dumps({"content": f"error: the tool returned {len(line):,} bytes with its state; at most "
                                          f"{MAX_REPLY_BYTES:,} can come back", "error": True,
                               "state": request.get("state")}).encode()
        replies.write(line + b"\n")


if __name__ == "__main__":
    main()
