"""A lean request path for bulk runs: non-streamed chat completions posted straight through aiohttp.

The openai client spends more CPU building each request (URL parsing, header models, copies) than a run
spends on everything else, which keeps many concurrent rollouts well above ideal time. `LeanChatClient`
posts the same JSON body to the same URL with the same headers and turns every failure into the very
exception the openai client raises (status errors through the client's own constructor), so retries,
backoff and error messages in `llm_client.chat` stay as they are. Streaming and every other call go
through the wrapped openai client (`.openai`).
"""
from __future__ import annotations

import json
from typing import Any

import aiohttp
import openai

try:  # the HTTP models the installed openai package builds its errors from
    import httpx2 as _httpx
except ImportError:  # pragma: no cover - openai before httpx2
    import httpx as _httpx
# The openai client's own aiohttp transport maps aiohttp's errors to httpx ones, and the client maps those
# to its timeout and connection errors; the same map keeps every message the same (openai is pinned).
from openai._vendor.httpx_aiohttp.transport import map_aiohttp_exceptions


class LeanChatClient:
    """An openai client plus a direct aiohttp session for `POST /chat/completions`."""

    def __init__(self, client: openai.AsyncOpenAI, base_url: str, api_key: str, timeout: float):
        self.openai = client
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json",
                        "Accept": "application/json"}
        self.timeout = aiohttp.ClientTimeout(sock_connect=timeout, sock_read=timeout, connect=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def post_chat(self, body: dict) -> Any:
        """The reply's JSON (or its text when it is not JSON); openai's exception types on failure."""
        if self._session is None:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        data = json.dumps(body).encode()
        try:
            with map_aiohttp_exceptions():
                async with self._session.post(self.url, data=data, headers=self.headers,
                                              timeout=self.timeout) as response:
                    raw = await response.read()
                    status, headers = response.status, dict(response.headers)
        except _httpx.TimeoutException as exc:
            raise openai.APITimeoutError(request=self._request()) from exc
        except Exception as exc:  # noqa: BLE001 - as the openai client: anything else is a connection error
            raise openai.APIConnectionError(request=self._request()) from exc
        if status >= 400:
            reply = _httpx.Response(status, headers=headers, content=raw, request=self._request())
            raise self.openai._make_status_error_from_response(reply)
        text = raw.decode("utf-8", errors="replace")
        try:
            return json.loads(text)
        except ValueError:
            return text

    def _request(self):
        return _httpx.Request("POST", self.url)

    async def close(self) -> None:
        """Close the session and the openai client."""
        if self._session is not None:
            await self._session.close()
            self._session = None
        await self.openai.close()
