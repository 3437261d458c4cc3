"""The game24 verifier: an arithmetic expression that uses each given number once and reaches the target.

The expression is parsed by a small recursive-descent parser and evaluated with exact fractions;
it is never handed to eval, so a hostile reply can only fail.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from fractions import Fraction
from typing import Any

from lessonlab.core.verifiers.answers import final_answer, format_number, to_fraction, unwrap
from lessonlab.core.verifiers.registry import VerifierKind, register
from lessonlab.core.verifiers.spec import VerifierSpecError, check_fields, is_number, require
from lessonlab.core.verifiers.verdict import Verdict, one_line

GAME24_MAX_CHARS = 200
_MAX_DEPTH = 50
_MAX_NUMBERS = 12


class _ExprError(Exception):
    """An expression that is not allowed or cannot be evaluated; the message is the feedback."""


_EXPR_CHARS_RE = re.compile(r"[\d\s()+\-*/^.]+")
_BARE_NUMBER_RE = re.compile(r"^[-+]?\d+(?:\.\d+)?$")
_TIMES_WORDS = {1: "once", 2: "twice", 3: "three times", 4: "four times", 5: "five times",
                6: "six times", 7: "seven times", 8: "eight times", 9: "nine times", 10: "ten times"}


def _times(count: int) -> str:
    return _TIMES_WORDS.get(count, f"{count} times")


def _clean_expression(text: str) -> str:
    """Turn a final answer line into a bare expression: no markdown, LaTeX or '= 24' tail."""
    # Only surrounding markdown is stripped: a "**" inside is a power and must be reported as one.
    text = unwrap(text)
    if len(text) >= 2 and text[0] == text[-1] == "$":
        text = text.strip("$")
    for latex, plain in ((r"\times", "*"), (r"\cdot", "*"), (r"\div", "/"), (r"\left", ""),
                         (r"\right", ""), (r"\(", ""), (r"\)", ""), (r"\[", ""), (r"\]", "")):
        text = text.replace(latex, plain)
    for symbol, plain in (("×", "*"), ("✕", "*"), ("⋅", "*"), ("·", "*"), ("∗", "*"),
                          ("÷", "/"), ("∕", "/"), ("−", "-"), ("–", "-"), ("—", "-")):
        text = text.replace(symbol, plain)
    # An "x" between two operands is multiplication ("3 x 8"), never a name.
    text = re.sub(r"(?<=[\d)])\s*[xX]\s*(?=[\d(])", "*", text)
    text = text.strip().rstrip(".").strip()
    if "=" in text:
        # "(8-4)*(7-1) = 24" or "24 = (8-4)*(7-1)": keep the side that is an expression.
        parts = [part.strip() for part in text.split("=") if part.strip()]
        expressions = [part for part in parts if not _BARE_NUMBER_RE.match(part)]
        text = (expressions or parts or [""])[0]
    return text


class _ExprParser:
    """Recursive-descent parser for integers, + - * /, unary minus and parentheses; nothing else."""

    def __init__(self, text: str):
        self.tokens = self._tokenize(text)
        self.pos = 0
        self.numbers: list[int] = []

    @staticmethod
    def _tokenize(text: str) -> list[tuple[str, Any]]:
        tokens: list[tuple[str, Any]] = []
        i = 0
        while i < len(text):
            char = text[i]
            if char.isspace():
                i += 1
            elif char in "0123456789":
                j = i
                while j < len(text) and text[j] in "0123456789":
                    j += 1
                if j + 1 < len(text) and text[j] == "." and text[j + 1] in "0123456789":
                    raise _ExprError(f"only whole numbers are allowed, found a decimal near {text[i:j + 2]!r}")
                tokens.append(("num", int(text[i:j])))
                i = j
            elif text.startswith("**", i):
                raise _ExprError("powers (**) are not allowed: use only + - * / and parentheses")
            elif char == "^":
                raise _ExprError("powers (^) are not allowed: use only + - * / and parentheses")
            elif char in "+-*/()":
                tokens.append(("op", char))
                i += 1
            else:
                raise _ExprError(f"not an arithmetic expression: unexpected {char!r} "
                                 "(only integers, + - * / and parentheses are allowed)")
        return tokens

    def _peek(self) -> tuple[str, Any] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _take(self) -> tuple[str, Any]:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def parse(self) -> tuple:
        """The expression tree of the whole input."""
        if not self.tokens:
            raise _ExprError("no expression found on the final answer line")
        tree = self._expr(0)
        if self._peek() is not None:
            raise _ExprError(f"unexpected {self._peek()[1]!r} after a complete expression")
        return tree

    def _expr(self, depth: int) -> tuple:
        if depth > _MAX_DEPTH:
            raise _ExprError("expression is nested too deeply")
        tree = self._term(depth)
        while self._peek() in (("op", "+"), ("op", "-")):
            op = self._take()[1]
            tree = (op, tree, self._term(depth))
        return tree

    def _term(self, depth: int) -> tuple:
        tree = self._unary(depth)
        while self._peek() in (("op", "*"), ("op", "/")):
            op = self._take()[1]
            tree = (op, tree, self._unary(depth))
        return tree

    def _unary(self, depth: int) -> tuple:
        if self._peek() == ("op", "-"):
            self._take()
            if depth > _MAX_DEPTH:
                raise _ExprError("expression is nested too deeply")
            return ("neg", self._unary(depth + 1))
        return self._primary(depth)

    def _primary(self, depth: int) -> tuple:
        token = self._peek()
        if token is None:
            raise _ExprError("expression ends unexpectedly")
        if token[0] == "num":
            self._take()
            self.numbers.append(token[1])
            return ("num", token[1])
        if token == ("op", "("):
            self._take()
            tree = self._expr(depth + 1)
            if self._peek() != ("op", ")"):
                raise _ExprError("unbalanced parentheses")
            self._take()
            return tree
        raise _ExprError(f"unexpected {token[1]!r}")


def _evaluate(tree: tuple) -> Fraction:
    """Exact value of a parsed expression; fractions keep 8/(3-8/3) exact."""
    if tree[0] == "num":
        return Fraction(tree[1])
    if tree[0] == "neg":
        return -_evaluate(tree[1])
    left, right = _evaluate(tree[1]), _evaluate(tree[2])
    if tree[0] == "+":
        return left + right
    if tree[0] == "-":
        return left - right
    if tree[0] == "*":
        return left * right
    if right == 0:
        raise _ExprError("division by zero")
    return left / right


def _parse_candidate(text: str) -> tuple[str, tuple, list[int]]:
    """(expression, tree, numbers used); falls back to the longest formula inside surrounding prose."""
    try:
        parser = _ExprParser(text)
        return text, parser.parse(), parser.numbers
    except _ExprError as first_error:
        # "Answer: the expression is 8/(3-8/3)": try the longest formula standing apart from the
        # words; one glued to a word, as in "abs(-24)", is a call and stays rejected.
        runs = []
        for match in _EXPR_CHARS_RE.finditer(text):
            run = match.group(0).strip()
            start = match.start() + match.group(0).index(run[0]) if run else match.start()
            end = start + len(run)
            glued = (start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_")) or (
                end < len(text) and (text[end].isalnum() or text[end] in "_(["))
            if run and not glued and re.search(r"\d", run) and re.search(r"[-+*/]", run):
                runs.append(run)
        if runs and max(runs, key=len) != text:
            run = max(runs, key=len)
            try:
                parser = _ExprParser(run)
                return run, parser.parse(), parser.numbers
            except _ExprError:
                pass
        raise first_error


def _usage_problems(used: list[int], given: list[int]) -> list[str]:
    """How the numbers used differ from the numbers given, one phrase per number."""
    used_count, given_count = Counter(used), Counter(given)
    problems = []
    for number in sorted(set(used_count) | set(given_count)):
        u, g = used_count[number], given_count[number]
        if u == g:
            continue
        if g == 0:
            problems.append(f"uses {number}, which is not among the given numbers")
        elif u == 0:
            problems.append(f"does not use {number}")
        else:
            problems.append(f"uses {number} {_times(u)} but it is given {_times(g)}")
    return problems


def _validate(spec: dict) -> None:
    check_fields(spec, "game24", {"numbers", "target"})
    numbers = require(spec, "numbers", "game24")
    if (not isinstance(numbers, list) or not numbers or len(numbers) > _MAX_NUMBERS
            or not all(isinstance(n, int) and not isinstance(n, bool) for n in numbers)):
        raise VerifierSpecError(f'game24 verifier: "numbers" must be a list of 1 to {_MAX_NUMBERS} integers')
    target = spec.get("target", 24)
    if not is_number(target) or not math.isfinite(target):
        raise VerifierSpecError('game24 verifier: "target" must be a number')


def _score(spec: dict, output: str) -> Verdict:
    if not output.strip():
        return Verdict(0.0, "empty response")
    given = list(spec["numbers"])
    target = to_fraction(spec.get("target", 24))
    candidate = _clean_expression(final_answer(output))
    if not candidate:
        return Verdict(0.0, "no expression found on the final answer line")
    if len(candidate) > GAME24_MAX_CHARS:
        return Verdict(0.0, f"expression too long ({len(candidate)} characters, limit {GAME24_MAX_CHARS})")
    try:
        expression, tree, used = _parse_candidate(candidate)
        problems = _usage_problems(used, given)
        if problems:
            listed = ", ".join(str(n) for n in given)
            return Verdict(0.0, f"{'; '.join(problems)} (use each of {listed} exactly once): {expression}")
        value = _evaluate(tree)
    except _ExprError as exc:
        return Verdict(0.0, f"{exc}: {one_line(candidate, 100)}")
    compact = "".join(expression.split())
    if value == target:
        return Verdict(1.0, f"{format_number(target)} reached: {compact}")
    shown = str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"
    return Verdict(0.0, f"expression equals {shown}, not {format_number(target)}: {compact}")


register("game24", VerifierKind(_validate, _score))
