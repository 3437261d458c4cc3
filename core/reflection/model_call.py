"""The model call of a reflection: streamed, cancellable, falling back to a plainer response mode when refused."""
from __future__ import annotations

import asyncio
import logging
import threading
from typing import Callable

from lessonlab.core.models import llm_client
from lessonlab.core.settings import Endpoint
from lessonlab.core.lazy_import import LazyModule

# Imported when a reflection error is classified, which only happens after a model call.
openai = LazyModule("openai")

log = logging.getLogger("lessonlab.reflection")

DEFAULT_REPLY_TOKENS = 1024


def reply_params(endpoint: Endpoint, max_tokens: int | None, temperature: float | None) -> dict:
    """The endpoint's request parameters for a reflection reply: room for at least DEFAULT_REPLY_TOKENS."""
    # A seed, a response_format or a stream flag meant for runs must not leak into the reflection request.
    params = {k: v for k, v in endpoint.params.items() if k not in ("seed", "response_format", "stream")}
    params["max_tokens"] = max_tokens or max(int(params.get("max_tokens") or 0), DEFAULT_REPLY_TOKENS)
    if temperature is not None:
        params["temperature"] = temperature
    return params


def rejects_request(exc: llm_client.ModelCallError) -> bool:
    """Whether the endpoint refused the request itself (as servers do for a response_format they lack).

    HTTP 400 and 422 are refusals; so is a 5xx whose body names `response_format`, because
    llama-cpp-python's server reports a request validation error as HTTP 500.
    """
    cause = exc.__cause__
    if not isinstance(cause, openai.APIStatusError):
        return False
    if cause.status_code in (400, 422):
        return True
    try:
        body = cause.response.text
    except Exception:  # noqa: BLE001 - an unreadable body is simply not a refusal we can recognise
        return False
    return cause.status_code >= 500 and "response_format" in body


async def call_model(endpoint: Endpoint, base_url: str | None, messages: list[dict], params: dict, *,
                     formats: list[tuple[str, dict | None]], on_chunk: Callable[[str], None] | None,
                     cancel: threading.Event | None, retry: llm_client.RetryPolicy,
                     parts: list[str]) -> tuple[llm_client.ChatResult, dict, list[str], str]:
    """One chat call, trying each (mode, response_format) in turn while the endpoint refuses the request.

    Returns the reply, the request body actually answered, notes for the record and the mode that
    worked. `parts` collects the streamed chunks so a failed or cancelled call can still store what arrived.
    """
    client = llm_client.make_client(endpoint, base_url)
    notes: list[str] = []

    def collect(chunk: str) -> None:
        parts.append(chunk)
        if on_chunk is not None:
            on_chunk(chunk)

    try:
        for index, (mode, fmt) in enumerate(formats):
            body = {**params, "response_format": fmt} if fmt is not None else dict(params)
            parts.clear()
            call = asyncio.ensure_future(llm_client.chat(client, endpoint.model, messages, body, retry=retry,
                                                         on_chunk=collect if on_chunk is not None else None))
            # Poll rather than await: the cancel event is set from another thread (the GUI), not this loop.
            while not call.done():
                if cancel is not None and cancel.is_set():
                    call.cancel()
                    try:
                        await call
                    except asyncio.CancelledError:
                        pass
                    raise asyncio.CancelledError("reflection cancelled")
                await asyncio.wait({call}, timeout=0.05)
            try:
                return call.result(), body, notes, mode
            except llm_client.ModelCallError as exc:
                if index + 1 < len(formats) and rejects_request(exc):
                    notes.append(f"endpoint refused response mode {mode} ({exc}); tried {formats[index + 1][0]}")
                    continue
                raise
        raise AssertionError("unreachable: formats is never empty")
    finally:
        try:
            await client.close()
        except Exception:  # noqa: BLE001 - closing must not hide the outcome
            log.debug("closing client failed", exc_info=True)
