"""Inspect AI `.eval` logs in the newest format for tests: zip members compressed with zstd (method 93).

Python's zipfile (before 3.14) cannot write zstd members, so the zip is assembled here by hand: local
headers, member data (each member may be split into several zstd frames, as Inspect writes large ones),
the central directory and its end record.
"""
from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import zstandard

ZSTD = 93
DATA_DIR = Path(__file__).resolve().parents[1] / "data" / "inspect"
CORPUS = {  # file -> (samples, model), as the corpus README lists them
    "2025-02-11T15-18-04-05-00_popularity_mj7khqpMM4GBCfVQozKgzB.eval": (10, "openai/gpt-4o-mini"),
    "log_streaming.eval": (4, "azureai/Meta-Llama-3-1-405B-Instruct-jqf"),
    "mmlu-summary-choices.eval": (1, "openai/gpt-4o"),
    "log_formats.json": (1, "ollama/llama3.1"),
    "log_images.json": (1, "openai/gpt-4o"),
    "log_tool_call_error.json": (1, "..."),
}


def zstd_frames(data: bytes, frames: int) -> bytes:
    """`data` compressed as `frames` consecutive zstd frames (fewer when the data is shorter)."""
    frames = max(1, min(frames, len(data)))
    step = -(-len(data) // frames)
    compressor = zstandard.ZstdCompressor(level=3)
    return b"".join(compressor.compress(data[i:i + step]) for i in range(0, len(data), step)) or compressor.compress(b"")


def write_zip(path: Path, members: list[tuple[str, bytes]], *, method: int = ZSTD, frames: int = 1) -> Path:
    """A zip of the members, each compressed with zstd in `frames` frames (or stored with method 0)."""
    out = bytearray()
    central = bytearray()
    for name, data in members:
        raw_name = name.encode()
        packed = zstd_frames(data, frames) if method == ZSTD else data
        crc = zlib.crc32(data)
        offset = len(out)
        out += struct.pack("<4s5H3L2H", b"PK\x03\x04", 63, 0, method, 0, 0x21, crc, len(packed), len(data),
                           len(raw_name), 0)
        out += raw_name + packed
        central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 63, 63, 0, method, 0, 0x21, crc, len(packed),
                               len(data), len(raw_name), 0, 0, 0, 0, 0, offset)
        central += raw_name
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members), len(central), len(out), 0)
    path.write_bytes(bytes(out + central + end))
    return path


SYSTEM = "You are a careful assistant. Answer with a number only."
LONG_QUESTION = "Here is a long question that Inspect stores as an attachment. " * 4 + "What is 2 + 2?"


def _sample(sample_id, epoch, *, question, reply, scores=None, system=SYSTEM, error=None, attachments=None,
            extra_metadata=None) -> dict:
    messages = [{"id": f"m{sample_id}{epoch}0", "role": "system", "content": system},
                {"id": f"m{sample_id}{epoch}1", "role": "user", "content": question, "source": "input"}]
    output = {"model": "gpt-5-mini-2025-08-07", "choices": [], "completion": "",
              "usage": {"input_tokens": 40, "output_tokens": 3, "total_tokens": 43}, "time": 0.5}
    if reply is not None:
        reply_message = {"id": f"m{sample_id}{epoch}2", "role": "assistant", "content": reply, "source": "generate",
                         "model": "gpt-5-mini-2025-08-07"}
        messages.append(reply_message)
        output["choices"] = [{"message": reply_message, "stop_reason": "stop"}]
        output["completion"] = reply if isinstance(reply, str) else ""
    sample = {
        "id": sample_id, "epoch": epoch, "input": question, "target": "4", "messages": messages, "output": output,
        "scores": scores or {}, "metadata": {"difficulty": "easy", **(extra_metadata or {})}, "store": {},
        "events": [], "model_usage": {"openai/gpt-5-mini": {"input_tokens": 40, "output_tokens": 3, "total_tokens": 43}},
        "started_at": "2026-03-01T10:00:00+00:00", "completed_at": "2026-03-01T10:00:02+00:00",
        "total_time": 1.25, "working_time": 1.1, "uuid": f"uuid-{sample_id}-{epoch}", "error_retries": [],
        "attachments": attachments or {},
    }
    if error is not None:
        sample["error"] = {"message": error, "traceback": "Traceback (most recent call last): ...",
                           "traceback_ansi": ""}
        sample["scores"] = scores
    return sample


def newest_samples(system: str = SYSTEM) -> list[dict]:
    """Five samples: two scorers, a NaN score, attachment references, an error, an out-of-range value."""
    ref = "0123456789abcdef0123456789abcdef"
    return [
        _sample(1, 1, question="What is 2 + 2?", reply="4", system=system,
                scores={"match": {"value": "C", "answer": "4", "explanation": "4 matches the target 4"},
                        "graded": {"value": 0.75, "answer": "4", "explanation": "right, but terse",
                                   "metadata": {"grader": "gpt-5"}}}),
        _sample(2, 1, question="What is 3 + 3?", reply="7", system=system,
                scores={"match": {"value": float("nan"), "explanation": "the scorer did not run"},
                        "graded": {"value": 0.0, "explanation": "wrong sum"}}),
        _sample(3, 1, question=f"attachment://{ref}", reply="4", system=system, attachments={ref: LONG_QUESTION},
                scores={"match": {"value": "I", "answer": "4", "explanation": "expected 8"},
                        "graded": {"value": "P", "explanation": "half right"}},
                extra_metadata={"padding": "x" * 5000}),
        _sample(4, 1, question="What is 5 + 5?", reply=None, system=system, error="RuntimeError: sandbox died"),
        _sample(1, 2, question="What is 2 + 2?", reply="4", system=system,
                scores={"match": {"value": "C", "answer": "4", "explanation": "4 matches the target 4"},
                        "graded": {"value": 5, "explanation": "a grade on the wrong scale"}}),
    ]


def newest_eval(path: Path, *, header: bool = True, frames: int = 3, samples: list[dict] | None = None,
                eval_id: str = "EvalIdNewest0001") -> Path:
    """An `.eval` log in the newest format (zstd members); without header.json when `header` is False."""
    samples = newest_samples() if samples is None else samples
    spec = {"eval_id": eval_id, "run_id": "RunIdNewest0001", "created": "2026-03-01T10:00:00+00:00",
            "task": "arith_newest", "task_id": "TaskIdNewest0001", "task_version": 0,
            "dataset": {"name": "arith", "samples": 4, "sample_ids": [1, 2, 3, 4]},
            "model": "openai/gpt-5-mini", "model_generate_config": {"temperature": 0.7},
            "config": {"epochs": 2}, "packages": {"inspect_ai": "0.3.206"},
            "scorers": [{"name": "match"}, {"name": "graded"}]}
    plan = {"name": "plan", "steps": [{"solver": "system_message", "params": {}}, {"solver": "generate"}],
            "config": {"temperature": 0.7}}
    start = {"version": 2, "eval": spec, "plan": plan}
    members = [("_journal/start.json", json.dumps(start).encode())]
    for sample in samples:
        members.append((f"samples/{sample['id']}_epoch_{sample.get('epoch', 1)}.json", json.dumps(sample).encode()))
    summaries = [{"id": s["id"], "epoch": s.get("epoch"), "input": s["input"], "target": s["target"],
                  "scores": s.get("scores")} for s in samples if "epoch" in s]
    members.append(("_journal/summaries/1.json", json.dumps(summaries).encode()))
    if header:
        members.append(("summaries.json", json.dumps(summaries).encode()))
        members.append(("reductions.json", json.dumps([{"scorer": "match", "samples": []}]).encode()))
        full = {**start, "status": "success",
                "results": {"total_samples": 4, "completed_samples": 4, "scores": []},
                "stats": {"started_at": "2026-03-01T10:00:00+00:00", "completed_at": "2026-03-01T10:01:00+00:00"}}
        members.append(("header.json", json.dumps(full).encode()))
    return write_zip(path, members, frames=frames)


def workspace_content(ws) -> dict:
    """Every row of every table (FTS shadow tables included), to check that a refused import changed nothing."""
    tables = [row[0] for row in ws.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    return {table: sorted(map(repr, ws.conn.execute(f'SELECT * FROM "{table}"'))) for table in tables}
