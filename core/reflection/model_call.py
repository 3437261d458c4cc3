"""The model call of a reflection: streamed, cancellable, and retried without response_format on HTTP 400."""
from __future__ import annotations

import asyncio
import logging
import threading
from typing import Callable

import openai

from .. import llm_client
from ..settings import Endpoint

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


def _is_http_400(exc: llm_client.ModelCallError) -> bool:
    """Whether the endpoint rejected the request itself (as some do for response_format)."""
    cause = exc.__cause__
    return isinstance(cause, openai.APIStatusError) and cause.status_code == 400


async def call_model(endpoint: Endpoint, base_url: str | None, messages: list[dict], params: dict, *,
                     on_chunk: Callable[[str], None] | None, cancel: threading.Event | None,
                     retry: llm_client.RetryPolicy, parts: list[str]) -> tuple[llm_client.ChatResult, dict, list[str]]:
    """One chat call asking for a JSON object; retried once without `response_format` on HTTP 400.

    Returns the reply, the request body actually sent and notes for the record. `parts` collects the
    streamed chunks so a failed or cancelled call can still store what arrived.
    """
    client = llm_client.make_client(endpoint, base_url)
    notes: list[str] = []

    def collect(chunk: str) -> None:
        parts.append(chunk)
        if on_chunk is not None:
            on_chunk(chunk)

    try:
        body = {**params, "response_format": {"type": "json_object"}}
        for attempt in range(2):
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
                return call.result(), body, notes
            except llm_client.ModelCallError as exc:
                if attempt == 0 and _is_http_400(exc):
                    notes.append(f"endpoint rejected response_format ({exc}); retried without it")
                    body = dict(params)
                    continue
                raise
        raise AssertionError("unreachable")
    finally:
        try:
            await client.close()
        except Exception:  # noqa: BLE001 - closing must not hide the outcome
            log.debug("closing client failed", exc_info=True)
