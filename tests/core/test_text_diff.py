"""Word diff: the pieces rebuild both texts, changes are found at word level, long replies stay fast."""
from __future__ import annotations

import random
import time

import pytest

from lessonlab.core.text_diff import DELETE, EQUAL, INSERT, changed_words, tokens, word_diff


def rebuild(ops):
    old = "".join(text for op, text in ops if op != INSERT)
    new = "".join(text for op, text in ops if op != DELETE)
    return old, new


def generated_reply(rng: random.Random, words: int) -> str:
    """Text shaped like a model reply: Zipf-distributed words, punctuation and line breaks."""
    vocab = [f"w{i}" for i in range(3000)] + ["the", "a", "of", "to", "Answer:", "```", "=", "1", "2"]
    weights = [1 / (i + 1) for i in range(len(vocab))]
    picked = rng.choices(vocab, weights, k=words)
    punctuation = {10: ".", 6: ","}  # sentences and clauses, as in prose
    return "".join(w + punctuation.get(i % 11, "") + ("\n" if i % 13 == 12 else " ") for i, w in enumerate(picked))


def edited(rng: random.Random, text: str, rate: float = 0.1) -> str:
    out = []
    for tok in tokens(text):
        roll = rng.random()
        if roll < rate / 3:
            continue                                   # deleted
        if roll < 2 * rate / 3:
            out.append(f"new{rng.randrange(50)} ")      # replaced
        elif roll < rate:
            out.extend([tok, f"extra{rng.randrange(50)} "])  # inserted after
        else:
            out.append(tok)
    return "".join(out)


def test_small_examples():
    assert word_diff("the cat sat on the mat", "the dog sat on a mat") == [
        (EQUAL, "the "), (DELETE, "cat "), (INSERT, "dog "), (EQUAL, "sat on "), (DELETE, "the "), (INSERT, "a "),
        (EQUAL, "mat"),
    ]
    assert word_diff("", "") == []
    assert word_diff("same text", "same text") == [(EQUAL, "same text")]
    assert word_diff("", "new words") == [(INSERT, "new words")]
    assert word_diff("old words", "") == [(DELETE, "old words")]
    # words match whatever whitespace follows them; a whitespace change shows on its own
    assert word_diff("keep this", "keep this and more") == [(EQUAL, "keep this"), (INSERT, " and more")]
    assert word_diff("one two", "one\ntwo") == [(EQUAL, "one"), (DELETE, " "), (INSERT, "\n"), (EQUAL, "two")]
    # words are never split: a changed word is replaced whole
    ops = word_diff("counting strawberries carefully", "counting strawbery carefully")
    assert (DELETE, "strawberries ") in ops and (INSERT, "strawbery ") in ops
    assert changed_words(ops) == (1, 1)


@pytest.mark.parametrize("seed", range(40))
def test_pieces_rebuild_both_texts(seed):
    rng = random.Random(seed)
    a = generated_reply(rng, rng.randrange(0, 300))
    b = edited(rng, a, rate=rng.choice([0.0, 0.05, 0.3, 1.0])) if rng.random() < 0.8 else generated_reply(rng, 120)
    if rng.random() < 0.2:
        a, b = a.replace(" ", "  "), b.replace("\n", " \n")   # odd whitespace
    ops = word_diff(a, b)
    assert rebuild(ops) == (a, b)
    assert all(text for _op, text in ops)
    assert all(ops[i][0] != ops[i + 1][0] for i in range(len(ops) - 1))
    # a replacement reads "deleted words, then inserted words"
    assert all(not (ops[i][0] == INSERT and ops[i + 1][0] == DELETE) for i in range(len(ops) - 1))


def test_repetitive_and_unrelated_texts():
    for a, b in [("x y " * 500, "y x " * 500), ("a " * 1000, "a " * 999 + "b "), ("1\n2\n3\n" * 200, "1\n3\n" * 200)]:
        assert rebuild(word_diff(a, b)) == (a, b)


def test_similar_replies_are_mostly_equal():
    rng = random.Random(7)
    a = generated_reply(rng, 2000)
    b = edited(rng, a, rate=0.05)
    ops = word_diff(a, b)
    equal_words = sum(len(text.split()) for op, text in ops if op == EQUAL)
    assert equal_words >= 0.9 * len(a.split())


def test_two_6000_word_replies_diff_fast():
    """The target is 100 ms (benchmarks/gui_scale.py prints the figure); a loose bound here catches regressions."""
    rng = random.Random(1)
    a = generated_reply(rng, 6000)
    b = edited(rng, a)
    c = generated_reply(rng, 6000)
    for x, y in [(a, b), (a, c)]:
        started = time.perf_counter()
        ops = word_diff(x, y)
        assert time.perf_counter() - started < 1.0
        assert rebuild(ops) == (x, y)
