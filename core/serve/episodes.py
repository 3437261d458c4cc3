"""Which rollout an exchange belongs to: an explicit episode header, or a conversation that continues an
earlier exchange (its messages start with that exchange's messages plus the reply it got)."""
from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict

from lessonlab.core.runs.trajectory import message_text

# Conversations remembered for continuation; the oldest are forgotten first (bounded memory).
MAX_REMEMBERED = 100_000


def message_key(message: dict) -> tuple:
    """What identifies a message when a client sends it back: role, text, tool calls (id, name, arguments), call id.

    Clients echo an assistant reply in their own shape (extra null fields, arguments re-serialised),
    so only the parts that carry meaning are compared.
    """
    calls = []
    for call in message.get("tool_calls") or []:
        if isinstance(call, dict):
            function = call.get("function") if isinstance(call.get("function"), dict) else {}
            arguments = function.get("arguments")
            if not isinstance(arguments, str):
                arguments = json.dumps(arguments, sort_keys=True)
            calls.append((call.get("id"), function.get("name"), arguments))
    return (message.get("role"), message_text(message.get("content")), tuple(calls), message.get("tool_call_id"))


class Conversations:
    """Running hashes of conversations so far → their rollout; thread-safe, bounded."""

    def __init__(self, limit: int = MAX_REMEMBERED):
        self.limit = limit
        self._known: OrderedDict[bytes, str] = OrderedDict()
        self._episodes: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    @staticmethod
    def prefix_hashes(messages: list[dict], start: bytes = b"") -> list[bytes]:
        """The hash of messages[:i + 1] for every i, chained (each from the one before), so linear in length."""
        hashes, previous = [], start
        for message in messages:
            previous = hashlib.blake2b(previous + repr(message_key(message)).encode("utf-8", "surrogatepass"),
                                       digest_size=16).digest()
            hashes.append(previous)
        return hashes

    def find(self, client_messages: list[dict], scope: str, episode: str | None) -> tuple[str | None, list[bytes]]:
        """The rollout this request continues (explicit episode first) or None, and the conversation's hashes."""
        hashes = self.prefix_hashes(client_messages)
        with self._lock:
            if episode is not None:
                return self._episodes.get((scope, episode)), hashes
            for i in range(len(client_messages) - 1, -1, -1):
                if client_messages[i].get("role") == "assistant":
                    hit = self._known.get(scope.encode() + b"\0" + hashes[i])
                    if hit is not None:
                        return hit, hashes
            return None, hashes

    def remember(self, hashes: list[bytes], reply: dict | None, rollout_id: str, scope: str,
                 episode: str | None) -> None:
        """Record that the conversation (its hashes from `find`) plus `reply` belongs to `rollout_id`."""
        key = None
        if reply is not None:
            key = scope.encode() + b"\0" + self.prefix_hashes([reply], hashes[-1] if hashes else b"")[-1]
        with self._lock:
            if episode is not None:
                self._episodes[(scope, episode)] = rollout_id
            if key is None:
                return
            self._known[key] = rollout_id
            self._known.move_to_end(key)
            while len(self._known) > self.limit:
                self._known.popitem(last=False)
            while len(self._episodes) > self.limit:
                self._episodes.pop(next(iter(self._episodes)))
