"""Word diffs of two texts, fast enough for long model replies (two 6,000-word replies in well under 100 ms).

A token is a word (or a run of punctuation) with the whitespace after it, or a run of leading
whitespace, so the diff never splits a word and never has to match the thousands of identical single spaces a per-space tokenizer
makes (which is what made difflib take seconds); words are compared without that whitespace. The matching is patience-style: words that occur
exactly once on both sides anchor the alignment (their longest increasing run), the gaps between
anchors are diffed the same way, and a gap without such words goes to difflib's SequenceMatcher —
exact (autojunk off) when the gap is small, with its popular-token heuristic when it is large, so a
pair of unrelated replies stays fast too.
"""
from __future__ import annotations

import bisect
import difflib
import re
from collections import Counter

EQUAL, DELETE, INSERT = "equal", "delete", "insert"
_TOKEN = re.compile(r"\w+\s*|[^\w\s]+\s*|\s+")
_EXACT_LIMIT = 40_000  # a gap of n × m tokens up to this is matched exactly by SequenceMatcher(autojunk=False)


def tokens(text: str) -> list[str]:
    """The text as words and punctuation, each with the whitespace that follows it; they join back to the text."""
    return _TOKEN.findall(text or "")


def word_diff(a: str, b: str) -> list[tuple[str, str]]:
    """How to turn a into b word by word: ("equal" | "delete" | "insert", text) pieces in reading order."""
    # The "equal" and "delete" pieces join to a, the "equal" and "insert" pieces to b; neighbouring
    # pieces never have the same op, and where words were replaced the deletion comes first.
    ta, tb = tokens(a), tokens(b)
    # Words are matched without their trailing whitespace: "this" at the end of a text still matches
    # "this " in the middle of the other; the whitespace difference is shown on its own.
    ka, kb = [t.rstrip() or t for t in ta], [t.rstrip() or t for t in tb]
    out: list[tuple[str, str]] = []

    def add(op: str, text: str) -> None:
        if not text:
            return
        if out and out[-1][0] == op:
            out[-1] = (op, out[-1][1] + text)
        elif op == DELETE and out and out[-1][0] == INSERT:
            # keep "delete then insert" for a replacement, whichever order the blocks came in
            if len(out) > 1 and out[-2][0] == DELETE:
                out[-2] = (DELETE, out[-2][1] + text)
            else:
                out.insert(len(out) - 1, (DELETE, text))
        else:
            out.append((op, text))

    for op, i1, i2, j1, j2 in _opcodes(ka, kb):
        if op == EQUAL and ta[i1:i2] == tb[j1:j2]:
            add(EQUAL, "".join(ta[i1:i2]))
        elif op == EQUAL:
            for x, y, key in zip(ta[i1:i2], tb[j1:j2], ka[i1:i2]):
                if x == y:
                    add(EQUAL, x)
                else:
                    add(EQUAL, key)
                    add(DELETE, x[len(key):])
                    add(INSERT, y[len(key):])
        else:
            add(DELETE, "".join(ta[i1:i2]))
            add(INSERT, "".join(tb[j1:j2]))
    return out


def _opcodes(a: list[str], b: list[str]) -> list[tuple[str, int, int, int, int]]:
    """Opcodes ("equal" | "change", a range, b range) covering both token lists in order."""
    out: list[tuple[str, int, int, int, int]] = []
    # An explicit stack instead of recursion: nested gaps can be deep on odd inputs.
    stack: list[tuple] = [("gap", 0, len(a), 0, len(b))]
    while stack:
        item = stack.pop()
        if item[0] == "emit":
            out.append(item[1])
            continue
        _, alo, ahi, blo, bhi = item
        start = alo
        while alo < ahi and blo < bhi and a[alo] == b[blo]:
            alo, blo = alo + 1, blo + 1
        if alo > start:
            out.append((EQUAL, start, alo, blo - (alo - start), blo))
        end = ahi
        while ahi > alo and bhi > blo and a[ahi - 1] == b[bhi - 1]:
            ahi, bhi = ahi - 1, bhi - 1
        suffix = (EQUAL, ahi, end, bhi, bhi + (end - ahi)) if end > ahi else None
        tail: list[tuple] = [("emit", suffix)] if suffix else []
        if alo == ahi or blo == bhi:
            if alo < ahi or blo < bhi:
                out.append(("change", alo, ahi, blo, bhi))
        else:
            anchors = _unique_anchors(a, b, alo, ahi, blo, bhi)
            if anchors:
                # Push in reverse so the pieces come off the stack in reading order.
                pieces: list[tuple] = []
                i0, j0 = alo, blo
                for i, j in anchors:
                    pieces.append(("gap", i0, i, j0, j))
                    pieces.append(("emit", (EQUAL, i, i + 1, j, j + 1)))
                    i0, j0 = i + 1, j + 1
                pieces.append(("gap", i0, ahi, j0, bhi))
                stack.extend(reversed(tail))
                stack.extend(reversed(pieces))
                continue
            exact = (ahi - alo) * (bhi - blo) <= _EXACT_LIMIT
            matcher = difflib.SequenceMatcher(None, a[alo:ahi], b[blo:bhi], autojunk=not exact)
            for op, i1, i2, j1, j2 in matcher.get_opcodes():
                out.append((EQUAL if op == "equal" else "change", alo + i1, alo + i2, blo + j1, blo + j2))
        if suffix:
            out.append(suffix)
    return out


def _unique_anchors(a, b, alo, ahi, blo, bhi) -> list[tuple[int, int]]:
    """Positions (i, j) of tokens that occur once in a[alo:ahi] and once in b[blo:bhi], longest increasing run."""
    count_a = Counter(a[alo:ahi])
    count_b = Counter(b[blo:bhi])
    where_b = {b[j]: j for j in range(blo, bhi) if count_b[b[j]] == 1 and count_a.get(b[j]) == 1}
    if not where_b:
        return []
    pairs = [(i, where_b[a[i]]) for i in range(alo, ahi) if a[i] in where_b]
    # Longest increasing subsequence of the b positions (patience sorting).
    tails: list[int] = []
    tail_at: list[int] = []
    previous: list[int | None] = [None] * len(pairs)
    for k, (_i, j) in enumerate(pairs):
        p = bisect.bisect_left(tails, j)
        if p == len(tails):
            tails.append(j)
            tail_at.append(k)
        else:
            tails[p] = j
            tail_at[p] = k
        previous[k] = tail_at[p - 1] if p else None
    chain: list[tuple[int, int]] = []
    k = tail_at[-1]
    while k is not None:
        chain.append(pairs[k])
        k = previous[k]
    return chain[::-1]


def changed_words(ops: list[tuple[str, str]]) -> tuple[int, int]:
    """(words deleted, words inserted) in a word diff."""
    deleted = sum(len(text.split()) for op, text in ops if op == DELETE)
    inserted = sum(len(text.split()) for op, text in ops if op == INSERT)
    return deleted, inserted
