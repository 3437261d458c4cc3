"""The proxy's HTTP app: chat completions (plain and streamed) with the lessons in, models, rewards."""
from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from lessonlab.core.errors import LessonlabError, NotFound
from lessonlab.core.runs.scoring import score_rollout
from lessonlab.core.serve import replies
from lessonlab.core.serve.episodes import Conversations
from lessonlab.core.serve.forwarding import (PASS_MODEL, UPSTREAM_FAILURES, Upstream, error_response,
                                             failure_response)
from lessonlab.core.serve.injection import LessonSource, inject
from lessonlab.core.serve.recording import Exchange, Recorder
from lessonlab.core.storage.workspace import new_id, now, open_workspace

log = logging.getLogger("lessonlab.serve")

MAX_BODY_BYTES = 32 * 1024 * 1024
ROLLOUT_HEADER = "X-Lessonlab-Rollout"
SUITE_HEADER = "X-Lessonlab-Suite"
EPISODE_HEADER = "X-Lessonlab-Episode"
# A reward may arrive before its exchange is written (writes are batched): wait this long for it.
SCORE_WAIT_SECONDS = 5.0


@dataclass
class ProxyState:
    """What the handlers share: the endpoint, the lessons, the record, the upstream pool."""

    workspace_path: Path
    model: str
    params: dict          # the endpoint's default sampling params, for what a request leaves out
    suite: str | None
    token: str | None
    lessons: LessonSource
    conversations: Conversations
    recorder: Recorder
    upstream: Upstream
    issued: set


STATE = web.AppKey("lessonlab_proxy", ProxyState)


def _authorized(request: web.Request, state: ProxyState) -> bool:
    if state.token is None:
        return True
    given = request.headers.get("Authorization", "")
    return hmac.compare_digest(given.encode(), f"Bearer {state.token}".encode())


async def _read_json(request: web.Request):
    """(the parsed body, None) or (None, the error response); bad bodies never reach the record."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        return None, error_response(413, f"the request body is over {MAX_BODY_BYTES // (1024 * 1024)} MB")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return None, error_response(413, f"the request body is over {MAX_BODY_BYTES // (1024 * 1024)} MB")
    try:
        return json.loads(raw), None
    except (ValueError, UnicodeDecodeError) as exc:
        return None, error_response(400, f"the request body is not valid JSON ({type(exc).__name__})")


def _check_chat(body) -> str | None:
    if not isinstance(body, dict):
        return "the request body must be a JSON object"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        return "'messages' must be a non-empty list of message objects"
    return None


async def _authorized_json(request: web.Request, state):
    """The request's JSON body, or the error response to send (a missing token, bad JSON, too large)."""
    if not _authorized(request, state):
        return None, error_response(401, "missing or wrong bearer token", code="invalid_api_key")
    return await _read_json(request)


async def chat_completions(request: web.Request) -> web.StreamResponse:
    """POST /v1/chat/completions: lessons in, forwarded, the reply returned unchanged and recorded."""
    state = request.app[STATE]
    body, problem = await _authorized_json(request, state)
    if problem is not None:
        return problem
    wrong = _check_chat(body)
    if wrong:
        return error_response(400, wrong)
    scope = request.headers.get(SUITE_HEADER) or state.suite
    episode = request.headers.get(EPISODE_HEADER)
    client_messages = body["messages"]
    block = state.lessons.block(scope)
    continued, hashes = state.conversations.find(client_messages, scope or "", episode)
    rollout_id = continued or new_id("ro", 6)
    state.issued.add(rollout_id)
    upstream_body = {**state.params, **body, "messages": inject(client_messages, block.text)}
    if state.model != PASS_MODEL:
        upstream_body["model"] = state.model
    exchange = Exchange(rollout_id=rollout_id, scope=scope, snapshot_id=block.snapshot.id,
                        messages=upstream_body["messages"],
                        request={k: v for k, v in upstream_body.items() if k != "messages"},
                        started_at=now(), latency_ms=0.0)
    payload = json.dumps(upstream_body).encode()
    started = time.perf_counter()
    try:
        if upstream_body.get("stream") is True:
            response = await _forward_stream(request, state, payload, exchange)
        else:
            response = await _forward_plain(state, payload, exchange)
    finally:
        exchange.latency_ms = (time.perf_counter() - started) * 1000
        reply = exchange.reply.message if exchange.reply and exchange.error is None else None
        state.conversations.remember(hashes, reply, rollout_id, scope or "", episode)
        state.recorder.add(exchange)
    return response


async def _forward_plain(state: ProxyState, payload: bytes, exchange: Exchange) -> web.Response:
    try:
        upstream = await state.upstream.post(payload, stream=False)
        async with upstream:
            data = await upstream.read()
            status, content_type = upstream.status, upstream.headers.get("Content-Type", "application/json")
    except UPSTREAM_FAILURES as exc:
        response, exchange.error = failure_response(exc)
        return response
    if status != 200:
        exchange.error = f"upstream answered {status}: {data[:500].decode('utf-8', 'replace')}"
    else:
        try:
            exchange.reply = replies.from_body(json.loads(data))
        except ValueError:
            exchange.error = "upstream answered 200 with a body that is not JSON"
    response = web.Response(status=status, body=data, headers={"Content-Type": content_type})
    response.headers[ROLLOUT_HEADER] = exchange.rollout_id
    return response


async def _forward_stream(request: web.Request, state: ProxyState, payload: bytes,
                          exchange: Exchange) -> web.StreamResponse:
    try:
        upstream = await state.upstream.post(payload, stream=True)
    except UPSTREAM_FAILURES as exc:
        response, exchange.error = failure_response(exc)
        return response
    async with upstream:
        if upstream.status != 200:
            data = await upstream.read()
            exchange.error = f"upstream answered {upstream.status}: {data[:500].decode('utf-8', 'replace')}"
            return web.Response(status=upstream.status, body=data,
                                headers={"Content-Type": upstream.headers.get("Content-Type", "application/json"),
                                         ROLLOUT_HEADER: exchange.rollout_id})
        response = web.StreamResponse(status=200, headers={
            "Content-Type": upstream.headers.get("Content-Type", "text/event-stream"),
            "Cache-Control": "no-cache", ROLLOUT_HEADER: exchange.rollout_id})
        await response.prepare(request)
        received = bytearray()
        try:
            async for chunk in upstream.content.iter_any():
                received += chunk
                await response.write(chunk)
        except UPSTREAM_FAILURES + (ConnectionError, asyncio.CancelledError) as exc:
            exchange.error = _stream_error(exc, request)
            exchange.note = f"the reply is recorded as far as it went ({len(received):,} bytes)"
            if isinstance(exc, asyncio.CancelledError):
                exchange.reply = replies.from_stream(bytes(received))
                raise
        exchange.reply = replies.from_stream(bytes(received))
        if exchange.error is None:
            try:
                await response.write_eof()
            except ConnectionError:
                pass
    return response


def _stream_error(exc: BaseException, request: web.Request) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "upstream timed out mid-stream"
    if isinstance(exc, (ConnectionError, asyncio.CancelledError)) or request.transport is None \
            or request.transport.is_closing():
        return "the client disconnected mid-stream"
    return f"the upstream stream broke ({type(exc).__name__})"


async def list_models(request: web.Request) -> web.Response:
    """GET /v1/models: the endpoint's model."""
    state = request.app[STATE]
    if not _authorized(request, state):
        return error_response(401, "missing or wrong bearer token", code="invalid_api_key")
    body = {"object": "list", "data": [{"id": state.model, "object": "model", "created": 0,
                                        "owned_by": "lessonlab"}]}
    return web.json_response(body)


async def post_reward(request: web.Request) -> web.Response:
    """POST /v1/lessonlab/rewards {"rollout", "reward", "feedback"}: score a rollout by hand."""
    state = request.app[STATE]
    body, problem = await _authorized_json(request, state)
    if problem is not None:
        return problem
    if not isinstance(body, dict) or not isinstance(body.get("rollout"), str) or "reward" not in body:
        return error_response(400, 'give {"rollout": "ro_…", "reward": R, "feedback": "…"}')
    deadline = time.monotonic() + SCORE_WAIT_SECONDS
    while True:
        try:
            scored = await asyncio.to_thread(_score, state.workspace_path, body)
            break
        except NotFound as exc:
            if body["rollout"] not in state.issued or time.monotonic() > deadline:
                return error_response(404, str(exc), code="not_found")
            await asyncio.sleep(0.02)  # issued here, not written yet: the writer is at most a batch behind
        except LessonlabError as exc:
            return error_response(400 if exc.exit_code == 2 else 500, str(exc))
    return web.json_response({"rollout": scored.rollout_id, "run": scored.run_id, "reward": scored.reward,
                              "feedback": scored.feedback, "previous": scored.previous})


def _score(path: Path, body: dict):
    with open_workspace(path) as ws:
        return score_rollout(ws, body["rollout"], body.get("reward"), body.get("feedback"))


def build_app(state: ProxyState) -> web.Application:
    """The aiohttp application over `state`."""
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[STATE] = state
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_get("/v1/models", list_models)
    app.router.add_post("/v1/lessonlab/rewards", post_reward)
    return app
