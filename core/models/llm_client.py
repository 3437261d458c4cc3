"""Every model call: the openai async client against an OpenAI-compatible endpoint, with retries."""
from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import math
import random
import time
from dataclasses import dataclass, field
from typing import Callable

from lessonlab.core.formatting import printable, storable
from lessonlab.core.models.redaction import redact, redact_known
from lessonlab.core.settings import Endpoint
from lessonlab.core.lazy_import import LazyModule

# openai takes over a second to import on a small machine: only calls that reach a model pay for it.
openai = LazyModule("openai")

log = logging.getLogger("lessonlab.llm_client")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry 429s, 5xx, timeouts and dropped connections."""

    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0           # cap of our own exponential backoff
    max_retry_after: float = 60.0    # longest wait a server may ask for with Retry-After / retry-after-ms
    max_total: float = 300.0         # no rollout retries past this many seconds in all (waits included)


# Indirection so tests can wait without waiting.
_clock = time.monotonic
_sleep = asyncio.sleep


@dataclass
class ChatResult:
    """One successful chat completion."""

    output: str
    model: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    finish_reason: str | None
    latency_ms: float
    attempts: int
    replaced: int = 0    # characters of the reply that could not be stored (lone surrogates) and were replaced
    # OpenAI `tool_calls` of the reply (sent with `tools` in params), made storable; empty for a plain answer.
    tool_calls: list[dict] = field(default_factory=list)


class ModelCallError(Exception):
    """A call that failed for good (after retries, or at once when retrying cannot help)."""

    def __init__(self, message: str, *, attempts: int, latency_ms: float, retryable: bool):
        super().__init__(message)
        self.attempts = attempts
        self.latency_ms = latency_ms
        self.retryable = retryable


def make_client(endpoint: Endpoint, base_url: str | None = None, *, lean: bool = False):
    """An async client for the endpoint; retries are ours (max_retries=0) so each is visible.

    `lean` (bulk runs) wraps it in a `LeanChatClient` that posts non-streamed completions directly.
    """
    url = base_url or endpoint.base_url
    if not url:
        raise ValueError(f"endpoint {endpoint.name!r} has no base URL yet (is the local model started?)")
    if not lean:
        return _openai_client(endpoint, url)
    from lessonlab.core.models.lean_http import LeanChatClient   # imports aiohttp; openai only when needed

    return LeanChatClient(lambda: _openai_client(endpoint, url), url, endpoint.api_key(), endpoint.timeout)


def _openai_client(endpoint: Endpoint, url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url=url,
        api_key=endpoint.api_key(),
        timeout=endpoint.timeout,
        max_retries=0,
        http_client=_http_client(),
        # Telemetry headers are dropped: each costs normalising on every request and the
        # servers lessonlab talks to ignore them.
        default_headers={name: openai.Omit() for name in _TELEMETRY_HEADERS},
    )


_TELEMETRY_HEADERS = (
    "X-Stainless-Lang", "X-Stainless-Package-Version", "X-Stainless-OS", "X-Stainless-Arch",
    "X-Stainless-Runtime", "X-Stainless-Runtime-Version", "X-Stainless-Async",
    "X-Stainless-Retry-Count", "X-Stainless-Read-Timeout",
)


def _http_client():
    # The aiohttp transport costs far less CPU per request than the default one, which
    # matters when dozens of rollouts are in flight; fall back when it is not installed.
    try:
        return openai.DefaultAioHttpClient()
    except Exception:  # noqa: BLE001 - any failure here just means "use the default"
        return None


def describe_error(exc: BaseException) -> tuple[str, bool]:
    """A one-line message for a failed call and whether retrying may help."""
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        body = ""
        try:
            # A text/plain body is the server's own words: kept, but never raw control sequences.
            body = printable(exc.response.text[:200]).replace("\n", " ")
        except Exception:  # noqa: BLE001 - the body is only decoration
            pass
        retryable = status == 429 or status >= 500 or status == 408
        return f"HTTP {status} from endpoint: {body or exc.message}", retryable
    if isinstance(exc, openai.APITimeoutError):
        # Some transports report a dropped connection as a connect "timeout"; say what happened.
        cause = str(exc.__cause__ or "")
        if cause and "time" not in cause.lower():
            return f"connection error: {cause}", True
        return "request timed out", True
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc
        return f"connection error: {type(cause).__name__}: {cause}".rstrip(": "), True
    if isinstance(exc, openai.APIResponseValidationError):
        return f"malformed reply from endpoint: {exc.message}", True
    if isinstance(exc, (ValueError, TypeError, AttributeError, KeyError)):
        # Typically a body that is not the expected JSON shape.
        return f"malformed reply from endpoint: {type(exc).__name__}: {exc}", True
    return f"{type(exc).__name__}: {exc}", False


def retry_after_seconds(headers) -> float | None:
    """Seconds a server asks to wait: retry-after-ms, else Retry-After in seconds or as an HTTP date; None if absent."""
    lowered = {str(k).lower(): str(v) for k, v in dict(headers).items()}
    try:
        if "retry-after-ms" in lowered:
            return max(0.0, float(lowered["retry-after-ms"]) / 1000)
        value = lowered.get("retry-after", "").strip()
        if not value:
            return None
        try:
            seconds = float(value)
        except ValueError:
            when = email.utils.parsedate_to_datetime(value)
            seconds = when.timestamp() - time.time()
    except (ValueError, TypeError, IndexError):
        return None
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _retry_after(exc: BaseException) -> float | None:
    if isinstance(exc, openai.APIStatusError):
        return retry_after_seconds(exc.response.headers)
    return None


def _extract(completion) -> tuple[str, str | None, int | None, int | None, str | None]:
    """Content, model, usage and finish reason of a chat.completion JSON body; ValueError if it is not one."""
    if not isinstance(completion, dict):
        raise ValueError(f"reply is not a JSON object: {str(completion)[:120]!r}")
    choices = completion.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ValueError(f"no choices in reply: {str(completion)[:120]!r}")
    choice = choices[0]
    message = choice.get("message") or {}
    if not isinstance(message, dict):
        raise ValueError("reply choice has no message object")
    content = message.get("content")
    if content is None:
        content = ""
    if not isinstance(content, str):
        raise ValueError(f"message content is not text: {str(content)[:80]!r}")
    usage = completion.get("usage") if isinstance(completion.get("usage"), dict) else {}
    model = completion.get("model")
    return (
        content,
        model if isinstance(model, str) else None,
        _int_or_none(usage.get("prompt_tokens")),
        _int_or_none(usage.get("completion_tokens")),
        choice.get("finish_reason"),
    )


def _tool_calls(completion: dict) -> list[dict]:
    """The reply's `tool_calls` in OpenAI shape with storable text; ValueError when they are not that shape."""
    calls = completion["choices"][0]["message"].get("tool_calls") or []
    if not isinstance(calls, list):
        raise ValueError(f"tool_calls is not a list: {str(calls)[:80]!r}")
    shaped = []
    for call in calls:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            raise ValueError(f"tool call without a function: {str(call)[:80]!r}")
        arguments = function.get("arguments")
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments if arguments is not None else {}, ensure_ascii=False)
        call_id = call.get("id") if isinstance(call.get("id"), str) else f"call_{len(shaped) + 1}"
        shaped.append({"id": storable(call_id)[0], "type": "function",
                       "function": {"name": storable(str(function.get("name") or ""))[0],
                                    "arguments": storable(arguments)[0]}})
    return shaped


def rejects_tools(exc: ModelCallError) -> bool:
    """True when a failed call says the endpoint does not take `tools` (400/422, or llama-cpp-python's words)."""
    cause = exc.__cause__
    if isinstance(cause, openai.APIStatusError) and cause.status_code in (400, 422):
        return True
    text = str(exc).lower()
    return "tool" in text and any(words in text for words in (
        "not support", "unsupported", "function calling", "chat_format", "chat format"))


def _int_or_none(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


async def chat(
    client: openai.AsyncOpenAI,
    model: str,
    messages: list[dict],
    params: dict | None = None,
    *,
    retry: RetryPolicy = RetryPolicy(),
    on_chunk: Callable[[str], None] | None = None,
) -> ChatResult:
    """Send one chat completion (streamed when on_chunk is given); raise ModelCallError when it fails for good."""
    params = {k: v for k, v in (params or {}).items() if v is not None}
    secrets = (getattr(client, "api_key", None),)
    started = time.perf_counter()
    first_try = _clock()
    attempt = 0
    while True:
        attempt += 1
        try:
            output, server_model, p_tok, c_tok, finish, tool_calls = await _send_once(
                client, model, messages, params, on_chunk)
            # JSON may escape half a surrogate pair ("\ud800"): such text cannot be stored, so it is
            # repaired here, once, for every caller (what is scored and kept is what was stored).
            output, replaced = storable(output)
            output = redact_known(output, secrets)  # a reply that echoes the key must not store it
            return ChatResult(
                output=output,
                model=storable(server_model)[0] if isinstance(server_model, str) else None,
                prompt_tokens=p_tok,
                completion_tokens=c_tok,
                finish_reason=storable(finish)[0] if isinstance(finish, str) else None,
                latency_ms=(time.perf_counter() - started) * 1000,
                attempts=attempt,
                replaced=replaced,
                tool_calls=tool_calls,
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure is classified below
            message, retryable = describe_error(exc)
            message = redact(message, secrets)  # servers echo the key they were sent ("Bearer sk-…")
            if not retryable or attempt >= retry.max_attempts:
                raise ModelCallError(
                    f"{message} (after {attempt} attempt{'s' if attempt > 1 else ''})",
                    attempts=attempt,
                    latency_ms=(time.perf_counter() - started) * 1000,
                    retryable=retryable,
                ) from exc
            delay = _retry_delay(exc, attempt, retry)
            if _clock() - first_try + delay > retry.max_total:
                raise ModelCallError(
                    f"{message} (after {attempt} attempt{'s' if attempt > 1 else ''}; waiting {delay:.0f} s more "
                    f"would pass the {retry.max_total:.0f} s limit per rollout)",
                    attempts=attempt,
                    latency_ms=(time.perf_counter() - started) * 1000,
                    retryable=retryable,
                ) from exc
            log.info("retrying after %.2fs: %s", delay, message)
            await _sleep(delay)


async def _send_once(client, model: str, messages: list[dict], params: dict, on_chunk):
    """One request: (output, server model, prompt tokens, completion tokens, finish reason, tool calls)."""
    if on_chunk is not None:
        output, server_model, p_tok, c_tok, finish = await _stream(getattr(client, "openai", client), model,
                                                                   messages, params, on_chunk)
        return output, server_model, p_tok, c_tok, finish, []
    body = {"model": model, "messages": messages, **params}
    if hasattr(client, "post_chat"):   # a LeanChatClient (bulk runs)
        completion = await client.post_chat(body)
    else:
        # client.post is the openai package's documented route for raw requests; it skips
        # the typed request transform, which costs more CPU per call than everything
        # else in a run (it is what keeps many concurrent rollouts close to ideal time).
        completion = await client.post(
            "/chat/completions",
            body=body,
            cast_to=dict,  # plain JSON: model parsing costs as much as the request
        )
    output, server_model, p_tok, c_tok, finish = _extract(completion)
    tool_calls = _tool_calls(completion) if "tools" in params else []
    return output, server_model, p_tok, c_tok, finish, tool_calls


def _retry_delay(exc: BaseException, attempt: int, retry: RetryPolicy) -> float:
    """Seconds to wait before the next attempt: the server's Retry-After (capped), else jittered backoff."""
    delay = _retry_after(exc)
    if delay is not None:
        return min(delay, retry.max_retry_after)  # the server knows when it can take us again
    delay = min(retry.max_delay, retry.base_delay * 2 ** (attempt - 1))
    delay *= 0.5 + random.random()  # jitter so a burst of 429s does not retry in lockstep
    return min(delay, retry.max_delay)


async def _stream(client, model, messages, params, on_chunk):
    """A streamed completion; a server that ignores `stream` and answers with one JSON body is read too."""
    raw = await client.chat.completions.with_raw_response.create(model=model, messages=messages, stream=True,
                                                                 **params)
    if "event-stream" not in (raw.headers.get("content-type") or "").lower():
        # Not SSE: some servers answer a streamed request with an ordinary chat.completion.
        return _whole_reply(await raw.http_response.aread(), on_chunk)
    parts: list[str] = []
    server_model = finish = None
    p_tok = c_tok = None
    stream = raw.parse()
    async for chunk in stream:
        server_model = getattr(chunk, "model", None) or server_model
        usage = getattr(chunk, "usage", None)
        if usage:
            p_tok, c_tok = usage.prompt_tokens, usage.completion_tokens
        for choice in chunk.choices or []:
            delta = getattr(choice.delta, "content", None) if choice.delta else None
            if delta:
                parts.append(delta)
                on_chunk(delta)
            if choice.finish_reason:
                finish = choice.finish_reason
    return "".join(parts), server_model, p_tok, c_tok, finish


def _whole_reply(body: bytes, on_chunk):
    """Content, model, usage and finish reason of a non-SSE reply to a streamed request (one chunk to on_chunk)."""
    text = body.decode("utf-8", errors="replace")
    try:
        completion = json.loads(text)
    except ValueError:
        completion = _sse_events(text)  # SSE sent with the wrong content type
    if isinstance(completion, list):
        return _join_chunks(completion, on_chunk)
    result = _extract(completion)
    if result[0]:
        on_chunk(result[0])
    return result


def _sse_events(text: str) -> list:
    """The JSON events of an SSE body; ValueError when it is neither JSON nor SSE."""
    events = []
    for line in text.splitlines():
        if line.startswith("data:") and line[5:].strip() not in ("", "[DONE]"):
            events.append(json.loads(line[5:]))
    if not events:
        raise ValueError(f"reply is neither JSON nor an event stream: {text[:120]!r}")
    return events


def _join_chunks(events: list, on_chunk):
    parts: list[str] = []
    server_model = finish = None
    p_tok = c_tok = None
    for event in events:
        if not isinstance(event, dict):
            continue
        server_model = event.get("model") or server_model
        usage = event.get("usage") if isinstance(event.get("usage"), dict) else {}
        p_tok = _int_or_none(usage.get("prompt_tokens")) or p_tok
        c_tok = _int_or_none(usage.get("completion_tokens")) or c_tok
        for choice in event.get("choices") or []:
            delta = (choice.get("delta") or {}).get("content") if isinstance(choice, dict) else None
            if isinstance(delta, str) and delta:
                parts.append(delta)
                on_chunk(delta)
            if isinstance(choice, dict) and choice.get("finish_reason"):
                finish = choice["finish_reason"]
    return "".join(parts), server_model, p_tok, c_tok, finish


@dataclass
class ProbeResult:
    """What one tiny request to an endpoint showed: latency, model and reply, or the error."""

    endpoint: str
    model: str
    base_url: str | None
    ok: bool
    latency_ms: float | None = None
    server_model: str | None = None
    reply: str | None = None
    error: str | None = None


def probe_endpoint(endpoint: Endpoint, base_url: str | None = None) -> ProbeResult:
    """Send one tiny request ("Say OK.", 8 tokens, no retries) and report what happened."""
    url = base_url or endpoint.base_url

    async def probe() -> ChatResult:
        client = make_client(endpoint, url)
        try:
            return await chat(client, endpoint.model, [{"role": "user", "content": "Say OK."}], {"max_tokens": 8},
                              retry=RetryPolicy(max_attempts=1))
        finally:
            await client.close()

    result = ProbeResult(endpoint=endpoint.name, model=endpoint.model, base_url=url, ok=False)
    try:
        reply = asyncio.run(probe())
    except ModelCallError as exc:
        result.error = str(exc)
        return result
    result.ok = True
    result.latency_ms = round(reply.latency_ms, 1)
    result.server_model = reply.model
    result.reply = reply.output
    return result
