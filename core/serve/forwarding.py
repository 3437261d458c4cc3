"""Forwarding a request to the endpoint with the endpoint's own key; errors in the OpenAI shape."""
from __future__ import annotations

import asyncio
import json

import aiohttp
from aiohttp import web

PASS_MODEL = "*"   # an endpoint whose model is "*" passes the client's model name through


def error_response(status: int, message: str, kind: str = "invalid_request_error", *,
                   code: str | None = None) -> web.Response:
    """An OpenAI-shaped error body with this status."""
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return web.Response(status=status, body=json.dumps(body).encode(), content_type="application/json")


class Upstream:
    """One connection pool to the endpoint; `post` sends a chat completion with the endpoint's key."""

    def __init__(self, base_url: str, api_key: str | None, timeout: float):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        if api_key:
            self.headers["Authorization"] = f"Bearer {api_key}"
        self._plain_timeout = aiohttp.ClientTimeout(total=timeout)
        self._stream_timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        """Create the session (inside the running loop)."""
        connector = aiohttp.TCPConnector(limit=256, ttl_dns_cache=300)
        self._session = aiohttp.ClientSession(connector=connector, auto_decompress=True,
                                              timeout=aiohttp.ClientTimeout(total=None))

    async def close(self) -> None:
        """Close the pool."""
        if self._session is not None:
            await self._session.close()

    async def post(self, payload: bytes, stream: bool) -> aiohttp.ClientResponse:
        """The upstream response (headers read; the caller reads the body and releases it).

        A plain request gets the whole timeout; a stream the timeout between chunks, so a long reply
        that keeps coming is not cut off.
        """
        assert self._session is not None, "Upstream.open() first"
        timeout = self._stream_timeout if stream else self._plain_timeout
        return await self._session.post(self.url, data=payload, headers=self.headers, timeout=timeout)


UPSTREAM_FAILURES = (aiohttp.ClientError, asyncio.TimeoutError, OSError)


def failure_response(exc: BaseException) -> tuple[web.Response, str]:
    """The response for an upstream that could not be reached or timed out, and the error to record."""
    if isinstance(exc, asyncio.TimeoutError):
        return error_response(504, "the upstream endpoint timed out", "upstream_timeout"), "upstream timed out"
    message = f"the upstream endpoint could not be reached ({type(exc).__name__})"
    return error_response(502, message, "upstream_unreachable"), message
