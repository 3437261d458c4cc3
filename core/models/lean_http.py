"""A lean request path for bulk runs: non-streamed chat completions posted straight through aiohttp.

The openai client spends more CPU building each request (URL parsing, header models, copies) than a run
spends on everything else, which keeps many concurrent rollouts well above ideal time. `LeanChatClient`
posts the same JSON body to the same URL with the same headers and turns every failure into the very
exception the openai client raises (status errors through the client's own constructor), so retries,
backoff and error messages in `llm_client.chat` stay as they are. Streaming and every other call go
through the wrapped openai client (`.openai`).

A run whose calls all succeed never needs openai: the package (~0.6 s to import on a small machine) and its
client (an SSL context, ~50 ms even for an http:// URL) are made on the first failure, stream or `.openai`.
"""
from __future__ import annotations

import json
from typing import Any, Callable

import aiohttp


class LeanChatClient:
    """An openai client (made when first needed) plus a direct aiohttp session for `POST /chat/completions`."""

    def __init__(self, make_openai: Callable[[], Any], base_url: str, api_key: str, timeout: float):
        self._make_openai = make_openai
        self._openai = None
        self.api_key = api_key  # as on the openai client: `llm_client.chat` takes it out of replies that echo it
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json",
                        "Accept": "application/json"}
        self.timeout = aiohttp.ClientTimeout(sock_connect=timeout, sock_read=timeout, connect=timeout)
        self._session: aiohttp.ClientSession | None = None

    @property
    def openai(self):
        """The wrapped openai client (streaming, status errors), made on first use."""
        if self._openai is None:
            self._openai = self._make_openai()
        return self._openai

    async def post_chat(self, body: dict) -> Any:
        """The reply's JSON (or its text when it is not JSON); openai's exception types on failure."""
        if self._session is None:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        data = json.dumps(body).encode()
        try:
            async with self._session.post(self.url, data=data, headers=self.headers,
                                          timeout=self.timeout) as response:
                raw = await response.read()
                status = response.status
                headers = dict(response.headers) if status >= 400 else None  # only an error reply needs them
        except Exception as exc:  # noqa: BLE001 - mapped exactly as the openai client maps it
            self._raise_as_openai(exc)
        if status >= 400:
            _, httpx, _ = _openai_http()
            reply = httpx.Response(status, headers=headers, content=raw, request=self._request())
            raise self.openai._make_status_error_from_response(reply)
        text = raw.decode("utf-8", errors="replace")
        try:
            return json.loads(text)
        except ValueError:
            return text

    def _raise_as_openai(self, exc: Exception) -> None:
        """Raise what the openai client raises for this transport failure (aiohttp → httpx → openai)."""
        openai, httpx, map_aiohttp_exceptions = _openai_http()
        try:
            with map_aiohttp_exceptions():
                raise exc
        except httpx.TimeoutException as mapped:
            raise openai.APITimeoutError(request=self._request()) from mapped
        except Exception as mapped:  # noqa: BLE001 - as the openai client: anything else is a connection error
            raise openai.APIConnectionError(request=self._request()) from mapped

    def _request(self):
        return _openai_http()[1].Request("POST", self.url)

    async def close(self) -> None:
        """Close the session and the openai client (when one was made)."""
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._openai is not None:
            await self._openai.close()


def _openai_http():
    """openai, the HTTP models its errors are built from, and its aiohttp → httpx error map (imported on first need)."""
    import openai

    try:
        import httpx2 as httpx
    except ImportError:  # pragma: no cover - openai before httpx2
        import httpx
    # The openai client's own aiohttp transport maps aiohttp's errors to httpx ones, and the client maps those
    # to its timeout and connection errors; the same map keeps every message the same (openai is pinned).
    from openai._vendor.httpx_aiohttp.transport import map_aiohttp_exceptions

    return openai, httpx, map_aiohttp_exceptions
