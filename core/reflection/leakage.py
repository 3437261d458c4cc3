"""Leakage: a proposed lesson must not hand out a task's answer, copy its prompt, or reach outside the task.

Reaching outside = asking the model for files, credentials, URLs or to send data anywhere: a reflection
reply (from a model that read untrusted task text) can propose that, and a person must see it first.
"""
from __future__ import annotations

import json
import re
from collections import Counter

from lessonlab.core.storage.workspace import Workspace
from lessonlab.core.reflection.context import prompt_text

_STOP = set("""a an and are as at be by can do does each for from give how in into is it its make
of on one or than that the their then there this to use using what when which with without word words
your you answer form final line number numbers letter times appear reply only exactly containing
""".split())
_TOKEN_RE = re.compile(r"[A-Za-z][A-Za-z'-]*|\d+(?:\.\d+)?")
SHINGLE = 8            # a copied span is 8 or more consecutive words of a task prompt
ANSWER_WINDOW = 100    # characters either side of an answer in which task content counts as "next to"


def _words(text: str) -> list[str]:
    """The text's words and numbers, lower-cased."""
    return [w.lower() for w in _TOKEN_RE.findall(text or "")]


def _content_tokens(text: str) -> set[str]:
    """The distinctive words: numbers and words of three or more letters that are not stop words."""
    return {w for w in _words(text) if (w[0].isdigit() or len(w) >= 3) and w not in _STOP}


def _shingles(words: list[str]) -> set[tuple]:
    """Every run of SHINGLE consecutive words."""
    return {tuple(words[i:i + SHINGLE]) for i in range(len(words) - SHINGLE + 1)}


def _answers(task: dict) -> list[str]:
    """The task's expected answers (from its verifier spec or metadata), without duplicates."""
    values = []
    for source in (task["verifier"], task["metadata"]):
        value = source.get("answer") if isinstance(source, dict) else None
        if isinstance(value, (str, int, float)) and not isinstance(value, bool) and str(value).strip():
            values.append(str(value).strip())
        elif isinstance(value, list):
            values.extend(str(v).strip() for v in value if isinstance(v, (str, int, float)) and str(v).strip())
    return list(dict.fromkeys(values))


def leakage_pool(ws: Workspace, suites: set[str]) -> list[dict]:
    """The tasks a lesson must not leak, with their distinctive words, answers and prompt shingles."""
    if not suites:
        return []
    rows = ws.query(
        f"SELECT id, suite, name, split, prompt_json, verifier_json, metadata_json FROM tasks"
        f" WHERE suite IN ({','.join('?' * len(suites))})", sorted(suites),
    )
    tasks = []
    for row in rows:
        text = prompt_text(row["prompt_json"])
        tasks.append({"id": row["id"], "suite": row["suite"], "name": row["name"], "split": row["split"],
                      "text": text, "verifier": json.loads(row["verifier_json"]),
                      "metadata": json.loads(row["metadata_json"]),
                      "tokens": _content_tokens(text), "shingles": _shingles(_words(text))})
    # Words and spans shared by many tasks of a suite are its boilerplate, not any one task's content.
    for suite in suites:
        members = [t for t in tasks if t["suite"] == suite]
        if len(members) < 4:
            continue
        limit = max(2, 0.3 * len(members))
        df = Counter(tok for t in members for tok in t["tokens"])
        sf = Counter(s for t in members for s in t["shingles"])
        for t in members:
            t["tokens"] = {tok for tok in t["tokens"] if df[tok] <= limit}
            t["shingles"] = {s for s in t["shingles"] if sf[s] <= limit}
    return tasks


_VERB = r"(?:read|open|cat|load|upload|attach|include|print|list|access|dump|copy|show|reveal|output|share)"
_REACH = {
    "url": ("points the model at a URL or host",
            re.compile(r"\b(?:https?|ftp|file|s3|ssh)://\S+|\bwww\.[\w-]+\.\w+|\b(?:\d{1,3}\.){3}\d{1,3}\b"
                       r"|\b[\w-]+\.(?:com|net|org|io|dev|ai|xyz|ru|cn|co|info|site|app)\b(?:/\S*)?", re.I)),
    "credentials": ("asks for credentials or secrets",
                    re.compile(r"\b(?:api[ _-]?keys?|passwords?|passwd|credentials?|secret keys?|secrets|private keys?"
                               r"|(?:access|auth|bearer|session|refresh) tokens?|ssh keys?|id_rsa|session cookies?"
                               r"|environment variables?|env vars?|[A-Z][A-Z0-9]*_(?:API_)?(?:KEY|TOKEN|SECRET))\b"
                               r"|\.env\b", re.I)),
    "files": ("asks to read or send files",
              re.compile(_VERB + r"\s+(?:(?:the|any|all|every|your|local|their|user'?s?|system|config(?:uration)?|"
                         r"hidden|private)\s+)*(?:files?|director(?:y|ies)|folders?|disk|home directory|file ?system)\b"
                         r"|(?:~/|/etc/|/home/|/root/|/var/|/proc/|\b[a-z]:\\)", re.I)),
    "sending": ("asks to send data somewhere",
                re.compile(r"\b(?:send|post|upload|transmit|forward|e-?mail|exfiltrate|beacon|ping)\b[^.\n]{0,80}?"
                           r"\b(?:to|at)\s+(?:\S+@\S+\.\w+|https?://|www\.|(?:an?|the|our|my|this|that|some|"
                           r"your)\s+(?:external\s+|remote\s+|own\s+)?(?:server|endpoint|url|address|webhook|api|"
                           r"website|site|host|inbox|email|channel|bucket))"
                           r"|\b(?:curl|wget|netcat|webhooks?|requests\.(?:get|post)|fetch\()", re.I)),
}


def reach_findings(text: str) -> list[dict]:
    """Findings for a lesson that asks for files, credentials, URLs or sending data anywhere."""
    findings = []
    for kind, (what, pattern) in _REACH.items():
        match = pattern.search(text or "")
        if match:
            findings.append({"kind": kind, "task": "outside the task", "task_id": None, "split": "any",
                             "detail": f"{what}: {match.group(0)[:60]!r}"})
    return findings


def check_leakage(text: str, pool: list[dict]) -> list[dict]:
    """Findings for a lesson text that gives a task's expected answer next to its content, copies its
    prompt, or reaches outside the task (reach_findings)."""
    if not text:
        return []
    findings = reach_findings(text)
    lower = text.lower()
    lesson_shingles = _shingles(_words(text))
    for task in pool:
        for answer in _answers(task):
            pattern = r"(?<![\w.])" + re.escape(answer.lower()) + r"(?![\w])"
            for match in re.finditer(pattern, lower):
                window = lower[max(0, match.start() - ANSWER_WINDOW): match.end() + ANSWER_WINDOW]
                near = sorted(tok for tok in task["tokens"] if tok != answer.lower()
                              and re.search(r"(?<![\w.])" + re.escape(tok) + r"(?![\w])", window))
                if near:
                    findings.append({"kind": "answer", "task": f"{task['suite']}/{task['name']}",
                                     "task_id": task["id"], "split": task["split"],
                                     "detail": f"gives the expected answer {answer!r} next to {', '.join(near[:3])!r} "
                                               f"from that task's prompt"})
                    break
            else:
                continue
            break
        copied = lesson_shingles & task["shingles"]
        if copied:
            span = " ".join(sorted(copied)[0])
            findings.append({"kind": "copy", "task": f"{task['suite']}/{task['name']}", "task_id": task["id"],
                             "split": task["split"],
                             "detail": f"copies {len(copied) + SHINGLE - 1}+ words of that task's prompt: {span!r}…"})
    return findings
