"""How numbers and labels read in every front end: rewards, lifts with intervals, scopes, one-line text."""
from __future__ import annotations

import re
from typing import Iterable, Sequence

DASH = "—"


def reward(value: float | None) -> str:
    """A reward with three decimals; a dash when there is none (an error or nothing scored)."""
    return DASH if value is None else f"{value:.3f}"


UNSCORED = "unscored"


def reward_label(value: float | None, status: str | None) -> str:
    """A rollout's reward: three decimals; 'unscored' for an answered rollout nobody has scored; a dash for an error."""
    if value is None and status == "ok":
        return UNSCORED
    return reward(value)


def short_reward(value: float | None) -> str:
    """A reward in a row of many: two decimals; 'err' when the rollout failed."""
    return "err" if value is None else f"{value:.2f}"


def rewards(values: Iterable[float | None]) -> str:
    """Several rewards on one line ('1.00 0.00 err'), or '(not run)'."""
    return " ".join(short_reward(v) for v in values) or "(not run)"


def interval(value: float | None, low: float | None, high: float | None, *, spaced: bool = False) -> str:
    """'+0.25 [+0.10,+0.40]' (with a space after the comma when spaced, for wide cells), or a dash."""
    if value is None:
        return DASH
    if low is None or high is None:
        return f"{value:+.2f}"
    return f"{value:+.2f} [{low:+.2f},{' ' if spaced else ''}{high:+.2f}]"


def lift(lift, *, units: bool = False, confounded: bool = False, spaced: bool = False) -> str:
    """A Lift as '+0.25 [+0.10,+0.40]' (with ' n=12' when units), or 'not enough data'."""
    if lift is None:
        return DASH
    if not lift.enough_data or lift.lift is None:
        return "not enough data"
    text = interval(lift.lift, lift.ci_low, lift.ci_high, spaced=spaced)
    if units:
        text += f" n={lift.n_units}"
    return text + ("*" if confounded else "")


def ablation(row: dict | None, *, spaced: bool = False) -> str:
    """The latest ablation's lift with its interval, or a dash."""
    if not row or row.get("lift") is None:
        return DASH
    return interval(row["lift"], row.get("ci_low"), row.get("ci_high"), spaced=spaced)


def scope(value: Sequence[str] | None, *, long: bool = False) -> str:
    """'all suites' or the suites a lesson is scoped to."""
    if not value:
        return "all suites"
    return ("suites " + ", ".join(value)) if long else ",".join(value)


def one_line(text: str, limit: int = 60) -> str:
    """Text on one line (whitespace runs become one space), cut to at most limit characters with '…'."""
    line = " ".join((text or "").split())
    return line if len(line) <= limit else line[:limit - 1] + "…"


def cut_middle(text: str, limit: int) -> str:
    """Text shortened to about `limit` characters by cutting out its middle, saying how much was cut."""
    text = text or ""
    if len(text) <= limit:
        return text
    keep = limit // 2
    cut = len(text) - 2 * keep
    return f"{text[:keep]}\n[… {cut} characters cut …]\n{text[-keep:]}"


def tokens(prompt: int | None, completion: int | None) -> str:
    """'120+48' tokens, with '?' where the endpoint reported none."""
    return f"{'?' if prompt is None else prompt}+{'?' if completion is None else completion}"


def seconds(latency_ms: float | None) -> str:
    """A latency in seconds with two decimals, empty when unknown."""
    return "" if latency_ms is None else f"{latency_ms / 1000:.2f} s"


# C0 controls except tab and newline, DEL, C1 controls (a lone 0x9b is a CSI on many terminals),
# bidirectional overrides that reorder what a reader sees, and surrogates (never valid on their own).
_UNPRINTABLE_RE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _escape(match: re.Match) -> str:
    code = ord(match.group(0))
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text) -> str:
    """Text safe to print on a terminal: control characters (ESC, BEL, CSI, C1, bidi overrides, lone surrogates) shown escaped, newlines and tabs kept."""
    text = "" if text is None else str(text)
    if _UNPRINTABLE_RE.search(text) is None:
        return text
    return _UNPRINTABLE_RE.sub(_escape, text)


def storable(text: str) -> tuple[str, int]:
    """Text SQLite can store as UTF-8, and how many characters had to be replaced (lone surrogates become U+FFFD)."""
    if text.isascii():
        return text, 0
    try:
        text.encode("utf-8")
        return text, 0
    except UnicodeEncodeError:
        pass
    # Halves of a pair written separately ("\ud83d\ude00") are joined; what stays alone is replaced.
    fixed = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return fixed, fixed.count("\ufffd") - text.count("\ufffd")
