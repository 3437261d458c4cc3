"""Reading OpenAI chat JSONL: one `{"messages": [...]}` per line (the fine-tuning format), streamed line by line.

Optional fields per line: `reward` (number, boolean, a grade like "C", or null), `task_id`, `metadata`,
`feedback`, `scores` ({name: {value, answer, explanation}}), `error`, `model`, `usage`
({prompt_tokens, completion_tokens}), `latency_ms`, `tools` (the OpenAI tools list, as fine-tuning files
carry it), and — as `lessonlab export rollouts` writes them — `suite`, `split`, `prompt` and `verifier`, so
that an exported run comes back with the same tasks, and `steps` (per-step figures) and `tool_mode`, so that
a trajectory comes back with the same steps.
The last message is the assistant's reply (a line with an `error` may have none).
"""
from __future__ import annotations

import hashlib
import json
import os
import pathlib
from pathlib import Path
from typing import Any, Iterator

from lessonlab.core.transfer import limits
from lessonlab.core.transfer.errors import MalformedFile
from lessonlab.core.transfer.imported import ImportedRollout, RunInfo, chat_message
from lessonlab.core.transfer.limits import RecordError, check_json_value, may_hold_surrogates
from lessonlab.core.transfer.readers import ImportFormat, head, register
from lessonlab.core.transfer.scores import Score, Warnings, finite, value_to_reward

SPLITS = ("train", "heldout")


def _type_name(value: Any) -> str:
    names = {type(None): "null", bool: "boolean", int: "integer", float: "number", str: "string",
             list: "array", dict: "object"}
    return names.get(type(value), type(value).__name__)




class ChatJsonlReader:
    """The rollouts of one chat JSONL file, read line by line (never the whole file at once)."""

    format = "openai-jsonl"
    keys_unique = True   # a line's key is its bytes plus which occurrence of them it is

    def __init__(self, path: str | Path):
        path = str(path)
        self.path = path
        self.total_bytes = os.path.getsize(path)
        self.warnings = Warnings()
        self.scorers: list[str] = []
        self.info = RunInfo(format=self.format, suite=pathlib.Path(path).stem,
                            params={"format": self.format},
                            note=f"chat JSONL {os.path.basename(path)}")
        try:
            self._file = open(path, "rb")
        except OSError as exc:
            raise MalformedFile(path, None, f"cannot read the file: {exc.strerror or exc}") from None

    def has_samples(self) -> bool:
        """Whether the file has any non-blank line."""
        found = any(line.strip() for _, line in self._lines())
        self._file.seek(0)
        return found

    def _lines(self) -> Iterator[tuple[int, bytes]]:
        """Numbered lines, each at most MAX_LINE_BYTES long (a file without newlines is not read whole)."""
        self._file.seek(0)
        cap = limits.MAX_LINE_BYTES
        number = 0
        while True:
            raw = self._file.readline(cap + 1)
            if not raw:
                return
            number += 1
            if len(raw) > cap:
                raise MalformedFile(self.path, f"line {number}",
                                    f"longer than {limits.size_text(cap)}; is this a chat JSONL file?")
            yield number, raw

    def rollouts(self) -> Iterator[tuple[ImportedRollout, int]]:
        """Each line as an ImportedRollout, with the bytes read so far."""
        seen: dict[bytes, int] = {}
        done = 0
        for number, raw in self._lines():
            done += len(raw)
            line = raw.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except UnicodeDecodeError as exc:
                raise MalformedFile(self.path, f"line {number}", f"not valid UTF-8 ({exc.reason})") from None
            except json.JSONDecodeError as exc:
                raise MalformedFile(self.path, f"line {number}",
                                    f"invalid JSON: {exc.msg} (column {exc.colno})") from None
            except RecursionError:
                raise MalformedFile(self.path, f"line {number}", "invalid JSON: nested too deeply") from None
            except ValueError as exc:  # an integer beyond Python's digit limit
                raise MalformedFile(self.path, f"line {number}", f"invalid JSON: {exc}") from None
            # The line's own bytes identify it; identical lines are told apart by their order.
            digest = hashlib.blake2b(line, digest_size=16).digest()
            occurrence = seen.get(digest, 0)
            seen[digest] = occurrence + 1
            key = f"jsonl:{digest.hex()}" + (f"#{occurrence}" if occurrence else "")
            try:
                check_json_value(record, check_text=may_hold_surrogates(line))
                rollout = self._rollout(record, f"line {number}", key, b"NaN" in line or b"Infinity" in line)
            except RecordError as exc:
                raise MalformedFile(self.path, f"line {number}", str(exc)) from None
            yield rollout, done

    def _rollout(self, record: Any, where: str, key: str, non_finite: bool) -> ImportedRollout:
        if not isinstance(record, dict):
            raise RecordError(f"expected a JSON object, got {_type_name(record)}")
        if "messages" not in record:
            raise RecordError('missing "messages"')
        raw_messages = record["messages"]
        if not isinstance(raw_messages, list) or not raw_messages:
            raise RecordError(f'"messages" must be a non-empty array of chat messages, got {_describe(raw_messages)}')
        messages = []
        for index, message in enumerate(raw_messages):
            if not isinstance(message, dict):
                raise RecordError(f"messages[{index}] must be an object, got {_type_name(message)}")
            role = message.get("role")
            if not isinstance(role, str) or not role:
                raise RecordError(f'messages[{index}] is missing "role"')
            content = message.get("content")
            if content is not None and not isinstance(content, (str, list)):
                raise RecordError(f"messages[{index}].content must be a string or an array, got {_type_name(content)}")
            messages.append(chat_message(message))

        error = record.get("error")
        if error is not None and not isinstance(error, str):
            error = json.dumps(error)
        output = None
        if messages[-1]["role"] == "assistant":
            output = messages.pop()["content"]
        elif error is None:
            raise RecordError(f'the last message must be the assistant\'s reply, got role "{messages[-1]["role"]}"'
                             ' (a failed attempt needs an "error")')
        if error is not None:
            output = None

        scores = self._scores(record.get("scores"), where)
        reward_given = "reward" in record
        reward = self._reward(record["reward"], where) if reward_given else None

        task_id = record.get("task_id")
        if task_id is not None and (not isinstance(task_id, (str, int)) or isinstance(task_id, bool) or task_id == ""):
            raise RecordError(f'"task_id" must be a non-empty string or an integer, got {_describe(task_id)}')
        metadata = self._object(record, "metadata")
        verifier = self._object(record, "verifier") or {"kind": "imported"}
        suite = self._text(record, "suite")
        split = record.get("split")
        if split is not None and split not in SPLITS:
            raise RecordError(f'"split" must be "train" or "heldout", got {json.dumps(split)}')
        prompt = record.get("prompt")
        if prompt is not None:
            prompt = self._prompt(prompt)
        usage = self._object(record, "usage")
        latency = record.get("latency_ms")
        if latency is not None and (not isinstance(latency, (int, float)) or isinstance(latency, bool)):
            raise RecordError(f'"latency_ms" must be a number, got {_type_name(latency)}')
        return ImportedRollout(
            where=where,
            source_key=key,
            task_name=str(task_id) if task_id is not None else "",
            messages=messages,
            output=output,
            prompt=prompt,
            verifier=finite(verifier) if non_finite else verifier,   # NaN/Infinity only where the line has them
            task_metadata=finite(metadata) if non_finite else metadata,
            suite=suite,
            split=split,
            status="error" if error is not None else "ok",
            error=error,
            scores=scores,
            reward=reward,
            reward_given=reward_given,
            feedback=self._text(record, "feedback"),
            model=self._text(record, "model"),
            prompt_tokens=_count(usage, "prompt_tokens", "input_tokens"),
            completion_tokens=_count(usage, "completion_tokens", "output_tokens"),
            latency_ms=float(latency) if latency is not None else None,
            finish_reason=self._text(record, "finish_reason"),
            steps=self._objects(record, "steps"),
            tools=self._objects(record, "tools"),
            tool_mode=self._text(record, "tool_mode"),
            origin_id=_origin_id(record.get("id")),
        )

    def _reward(self, value: Any, where: str) -> float | None:
        """A line's own "reward" as a reward in [0, 1] (a grade or a boolean converted, with a warning)."""
        if isinstance(value, (list, dict)):
            raise RecordError(f'"reward" must be a number, a boolean, a grade or null, got {_type_name(value)}')
        converted = value_to_reward(value)
        if converted.warning:
            if converted.reward is None and value is not None:
                raise RecordError(f'"reward" {converted.warning.replace("; left unscored", "")}')
            self.warnings.add("reward(s) converted", f"{where}: {converted.warning}")
        return converted.reward

    @staticmethod
    def _objects(record: dict, key: str) -> list[dict] | None:
        value = record.get(key)
        if value is None:
            return None
        if not isinstance(value, list):
            raise RecordError(f'"{key}" must be an array of objects, got {_describe(value)}')
        odd = next((i for i, item in enumerate(value) if not isinstance(item, dict)), None)
        if odd is not None:
            raise RecordError(f'"{key}" must be an array of objects, got {_type_name(value[odd])} at {key}[{odd}]')
        return value or None

    @staticmethod
    def _object(record: dict, key: str) -> dict:
        value = record.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise RecordError(f'"{key}" must be an object, got {_type_name(value)}')
        return value

    @staticmethod
    def _text(record: dict, key: str) -> str | None:
        value = record.get(key)
        if value is not None and not isinstance(value, str):
            raise RecordError(f'"{key}" must be a string, got {_type_name(value)}')
        return value

    @staticmethod
    def _prompt(value: Any) -> str | list[dict]:
        if isinstance(value, str) and value:
            return value
        if isinstance(value, list) and value and all(isinstance(m, dict) and isinstance(m.get("role"), str)
                                                     for m in value):
            return [chat_message(m) for m in value]
        raise RecordError(f'"prompt" must be a non-empty string or a list of chat messages, got {_describe(value)}')

    def _scores(self, value: Any, where: str) -> list[Score]:
        if value is None:
            return []
        if not isinstance(value, dict):
            raise RecordError(f'"scores" must be an object, got {_type_name(value)}')
        scores = []
        for name, score in value.items():
            if not isinstance(score, dict):
                score = {"value": score}
            converted = value_to_reward(score.get("value"))
            if converted.warning:
                self.warnings.add("score value(s) converted", f"{where}, {name}: {converted.warning}")
            if name not in self.scorers:
                self.scorers.append(name)
            answer, explanation, metadata = score.get("answer"), score.get("explanation"), score.get("metadata")
            scores.append(Score(scorer=name, value=score.get("value"), reward=converted.reward,
                                answer=None if answer is None else str(answer),
                                explanation=None if explanation is None else str(explanation),
                                metadata=finite(metadata) if isinstance(metadata, dict) and metadata else None))
        return scores

    def close(self) -> None:
        """Close the file."""
        self._file.close()


def _describe(value: Any) -> str:
    if isinstance(value, (list, str)) and not value:
        return f"an empty {_type_name(value) if isinstance(value, list) else 'string'}"
    return _type_name(value)


def _origin_id(value: Any) -> str | None:
    """The rollout id `export rollouts` writes on each line, so importing the export again finds the rollout."""
    return value if isinstance(value, str) and value.startswith("ro_") and len(value) <= 64 else None


def _count(usage: dict, *keys: str) -> int | None:
    for key in keys:
        value = usage.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _sniff(path: Path) -> bool:
    """A .jsonl file, or one whose first line is a JSON object with "messages"."""
    if path.suffix.lower() == ".jsonl":
        return True
    if path.suffix.lower() == ".eval":
        return False
    first = head(path).lstrip().split(b"\n", 1)[0]
    try:
        record = json.loads(first)
    except (ValueError, RecursionError):
        return False
    return isinstance(record, dict) and "messages" in record


register(ImportFormat("openai-jsonl", 'one {"messages": [...]} per line (OpenAI chat fine-tuning JSONL)',
                      _sniff, ChatJsonlReader))
