"""Reading Inspect AI logs: `.eval` zips (deflate or zstd members) and single-object `.json` logs.

An `.eval` zip holds `header.json` (the eval spec, plan, results and stats), `samples/<id>_epoch_<n>.json`
(one per sample), `summaries.json`, `reductions.json` and `_journal/` (`start.json` is written when the
eval starts, so a crashed or running eval has it but no `header.json`). Samples are read one member at a
time; `attachment://<hash>` references (and the older `tc://`) are replaced from the sample's `attachments`.
"""
from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any, Iterator

from lessonlab.core.transfer import limits
from lessonlab.core.transfer.errors import MalformedFile
from lessonlab.core.transfer.imported import ImportedRollout, RunInfo, chat_message, content_text
from lessonlab.core.transfer.limits import RecordError, check_json_value, may_hold_surrogates
from lessonlab.core.transfer.readers import ImportFormat, head, register
from lessonlab.core.transfer.scores import Score, Warnings, finite, value_to_reward
from lessonlab.core.transfer.zipread import ZipMembers

HEADER = "header.json"
START = "_journal/start.json"
_SAMPLE_NAME = re.compile(r"^samples/(.+)_epoch_(\d+)\.json$")
_REFERENCE_PREFIXES = ("attachment://", "tc://")


def _natural(value: Any) -> tuple:
    text = str(value)
    return (0, int(text), "") if text.isdigit() else (1, 0, text)


def _type_name(value: Any) -> str:
    names = {type(None): "null", bool: "boolean", int: "integer", float: "number", str: "string",
             list: "array", dict: "object"}
    return names.get(type(value), type(value).__name__)


def _resolver(attachments: dict):
    """A function replacing attachment references anywhere inside a JSON value."""

    def resolve(value: Any) -> Any:
        if isinstance(value, str):
            for prefix in _REFERENCE_PREFIXES:
                if value.startswith(prefix):
                    return attachments.get(value[len(prefix):], value)
            return value
        if isinstance(value, list):
            return [resolve(item) for item in value]
        if isinstance(value, dict):
            return {key: resolve(item) for key, item in value.items()}
        return value

    return resolve


class InspectReader:
    """The rollouts of one Inspect log, read sample by sample."""

    format = "inspect"

    def __init__(self, path: str | Path):
        path = str(path)
        self.path = path
        self.total_bytes = os.path.getsize(path)
        self.warnings = Warnings()
        self.scorers: list[str] = []
        self._zip: ZipMembers | None = None
        self._samples: list | None = None
        self._text_escapes = True   # whether the JSON last read escapes a surrogate (then its text is checked)
        with open(path, "rb") as handle:
            magic = handle.read(4)
        if magic.startswith(b"PK"):
            self._zip = ZipMembers(path)
            header, header_note = self._zip_header()
        else:
            header, header_note = self._json_log(), None
        self.header = header
        self.info = self._run_info(header, header_note)
        spec = header["eval"]
        ident = spec.get("eval_id") or "/".join(str(spec.get(k) or "") for k in ("run_id", "task_id"))
        self._ident = ident.strip("/") or os.path.basename(path)

    # --- the header -------------------------------------------------------------------------------

    def _parse(self, data: bytes, where: str | None) -> Any:
        """JSON bytes parsed, or MalformedFile naming `where` (an entry, or None for the whole file)."""
        self._text_escapes = may_hold_surrogates(data)
        try:
            return json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise MalformedFile(self.path, where, f"invalid JSON ({exc})") from None
        except RecursionError:
            raise MalformedFile(self.path, where, "invalid JSON: nested too deeply") from None
        except ValueError as exc:  # an integer beyond Python's digit limit
            raise MalformedFile(self.path, where, f"invalid JSON: {exc}") from None

    def _member_json(self, name: str) -> Any:
        return self._parse(self._zip.read(name), f"entry {name}")

    def _zip_header(self) -> tuple[dict, str | None]:
        if HEADER in self._zip:
            name, note = HEADER, None
        elif START in self._zip:
            name, note = START, "no header.json (the eval crashed or was still running); read _journal/start.json"
        else:
            raise MalformedFile(self.path, None, "not an Inspect log: it has neither header.json nor _journal/start.json")
        header = self._member_json(name)
        self._check_header(header, f"entry {name}")
        return header, note

    def _json_log(self) -> dict:
        if self.total_bytes > limits.MAX_MEMBER_BYTES:
            raise MalformedFile(self.path, None, f"a .json log is read whole and this one is larger than "
                                f"{limits.size_text(limits.MAX_MEMBER_BYTES)}; convert it to .eval")
        with open(self.path, "rb") as handle:
            log = self._parse(handle.read(), None)
        self._check_header(log, None)
        samples = log.get("samples")
        if samples is not None and not isinstance(samples, list):
            raise MalformedFile(self.path, None, f'"samples" must be an array, got {_type_name(samples)}')
        self._samples = samples or []
        return log

    def _check_header(self, header: Any, where: str | None) -> None:
        if not isinstance(header, dict):
            raise MalformedFile(self.path, where, f"expected a JSON object, got {_type_name(header)}")
        try:
            check_json_value({key: value for key, value in header.items() if key != "samples"})
        except RecordError as exc:
            raise MalformedFile(self.path, where, str(exc)) from None
        spec = header.get("eval")
        if not isinstance(spec, dict):
            raise MalformedFile(self.path, where, 'missing "eval" (the eval spec); is this an Inspect log?')
        if not isinstance(spec.get("task"), str) or not spec["task"]:
            raise MalformedFile(self.path, where, 'missing "eval.task" (the task name)')

    def _run_info(self, header: dict, note: str | None) -> RunInfo:
        spec, stats = header["eval"], header.get("stats") or {}
        keep = ("eval_id", "run_id", "task_id", "task_version", "created", "model_args", "task_args", "config",
                "model_generate_config", "packages", "revision", "dataset")
        params = {"format": "inspect", "status": header.get("status", "started"),
                  "eval": {key: spec[key] for key in keep if spec.get(key) not in (None, {}, [])}}
        plan = header.get("plan") or {}
        if plan.get("steps"):
            params["plan"] = [step.get("solver") for step in plan["steps"] if isinstance(step, dict)]
        if isinstance(plan.get("config"), dict) and plan["config"]:
            params["generate_config"] = plan["config"]
        notes = [f"Inspect log {os.path.basename(self.path)}, status {params['status']}"]
        if note:
            notes.append(note)
        return RunInfo(format="inspect", suite=spec["task"], model=spec.get("model"), params=finite(params),
                       note="; ".join(notes), started_at=stats.get("started_at"), finished_at=stats.get("completed_at"))

    # --- the samples ------------------------------------------------------------------------------

    def rollouts(self) -> Iterator[tuple[ImportedRollout, int]]:
        """Each sample as an ImportedRollout, with the bytes of the file read so far."""
        if self._zip is None:
            count = len(self._samples)
            for index, sample in enumerate(self._samples):
                yield self._checked(sample, f"sample {index + 1}"), self.total_bytes * (index + 1) // max(count, 1)
            return
        names = []
        for name in self._zip.names():
            match = _SAMPLE_NAME.match(name)
            if match:
                names.append(((int(match.group(2)), _natural(match.group(1))), name))
            elif name.startswith("samples/") and name.endswith(".json"):
                names.append(((0, _natural(name)), name))
        names.sort()
        sizes = sum(self._zip.info(name).compress_size for _, name in names) or 1
        done = 0
        for _, name in names:
            sample = self._member_json(name)
            done += self._zip.info(name).compress_size
            yield self._checked(sample, f"entry {name}"), self.total_bytes * done // sizes

    def has_samples(self) -> bool:
        """Whether the log holds any sample at all."""
        if self._zip is None:
            return bool(self._samples)
        return any(name.startswith("samples/") and name.endswith(".json") for name in self._zip.names())

    def _checked(self, sample: Any, where: str) -> ImportedRollout:
        """The sample as a rollout, once its values are known to be storable (every failure names where)."""
        try:
            check_json_value(sample, check_text=self._text_escapes)
            return self._rollout(sample, where)
        except RecordError as exc:
            raise self._fail(where, str(exc)) from None

    def _fail(self, where: str, reason: str) -> MalformedFile:
        return MalformedFile(self.path, where, reason)

    def _rollout(self, sample: Any, where: str) -> ImportedRollout:
        if not isinstance(sample, dict):
            raise self._fail(where, f"a sample must be a JSON object, got {_type_name(sample)}")
        for key in ("id", "epoch", "input", "messages"):
            if key not in sample:
                raise self._fail(where, f'missing "{key}"')
        sample_id, epoch = sample["id"], sample["epoch"]
        if not isinstance(sample_id, (int, str)) or isinstance(sample_id, bool):
            raise self._fail(where, f'"id" must be a string or an integer, got {_type_name(sample_id)}')
        if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 1:
            raise self._fail(where, f'"epoch" must be a positive integer, got {json.dumps(epoch)}')
        if not isinstance(sample["messages"], list):
            raise self._fail(where, f'"messages" must be an array, got {_type_name(sample["messages"])}')
        attachments = sample.get("attachments") or {}
        if not isinstance(attachments, dict):
            raise self._fail(where, f'"attachments" must be an object, got {_type_name(attachments)}')
        resolve = _resolver(attachments)

        messages = [self._message(resolve(m), where, i) for i, m in enumerate(sample["messages"])]
        prompt = self._prompt(resolve(sample["input"]), where)
        output = sample.get("output") or {}
        if not isinstance(output, dict):
            raise self._fail(where, f'"output" must be an object, got {_type_name(output)}')
        output = resolve(output)
        choices = output.get("choices") or []
        first_choice = choices[0] if choices and isinstance(choices[0], dict) else {}
        completion = output.get("completion")
        if completion is None and isinstance(first_choice.get("message"), dict):
            completion = content_text(first_choice["message"].get("content"))
        if messages and messages[-1]["role"] == "assistant":
            reply = messages.pop()
            if completion is None:
                completion = reply["content"]

        error = self._error(sample.get("error"), where)
        scores = self._scores(resolve(sample.get("scores")), where)
        prompt_tokens, completion_tokens = self._usage(sample, output)
        seconds = sample.get("total_time", output.get("time"))
        verifier: dict = {"kind": "imported", "target": finite(resolve(sample.get("target")))}
        if sample.get("choices"):
            verifier["choices"] = finite(resolve(sample["choices"]))
        metadata = sample.get("metadata") or {}
        return ImportedRollout(
            where=where,
            source_key=f"inspect:{self._ident}:{sample_id}:{epoch}",
            task_name=str(sample_id),
            messages=messages,
            output=None if error is not None else (completion or ""),
            prompt=prompt,
            verifier=verifier,
            task_metadata=finite(resolve(metadata)) if isinstance(metadata, dict) else {"metadata": finite(metadata)},
            sample_index=epoch - 1,
            status="error" if error is not None else "ok",
            error=error,
            scores=scores,
            model=output.get("model") if isinstance(output.get("model"), str) else None,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            latency_ms=_milliseconds(seconds),
            finish_reason=first_choice.get("stop_reason"),
            tools=_tool_schemas(sample.get("events"), resolve),
        )

    def _error(self, error: Any, where: str) -> str | None:
        """The error as text: Inspect writes an object whose "message" is the text."""
        if error is None or isinstance(error, str):
            return error
        if not isinstance(error, dict):
            raise self._fail(where, f'"error" must be a string or an object with a "message", got {_type_name(error)}')
        message = error.get("message")
        if message is None:
            return json.dumps(error)
        if not isinstance(message, str):
            raise self._fail(where, f'"error.message" must be a string, got {_type_name(message)}')
        return message or json.dumps(error)

    def _message(self, message: Any, where: str, index: int) -> dict:
        if not isinstance(message, dict):
            raise self._fail(where, f"messages[{index}] must be an object, got {_type_name(message)}")
        if not isinstance(message.get("role"), str):
            raise self._fail(where, f'messages[{index}] has no "role"')
        return chat_message(message)

    def _prompt(self, value: Any, where: str) -> str | list[dict]:
        if isinstance(value, str):
            return value
        if isinstance(value, list):
            return [self._message(m, where, i) for i, m in enumerate(value)]
        raise self._fail(where, f'"input" must be a string or a list of messages, got {_type_name(value)}')

    def _scores(self, value: Any, where: str) -> list[Score]:
        if value is None:
            return []
        if not isinstance(value, dict):
            raise self._fail(where, f'"scores" must be an object, got {_type_name(value)}')
        scores = []
        for name, score in value.items():
            if not isinstance(score, dict):
                raise self._fail(where, f'score "{name}" must be an object with a "value", got {_type_name(score)}')
            converted = value_to_reward(score.get("value"))
            if converted.warning:
                self.warnings.add("score value(s) converted", f"{where}, {name}: {converted.warning}")
            if name not in self.scorers:
                self.scorers.append(name)
            answer, explanation = score.get("answer"), score.get("explanation")
            metadata = score.get("metadata")
            scores.append(Score(
                scorer=name, value=score.get("value"), reward=converted.reward,
                answer=None if answer is None else content_text(answer) if isinstance(answer, list) else str(answer),
                explanation=None if explanation is None else str(explanation),
                metadata=finite(metadata) if isinstance(metadata, dict) and metadata else None,
            ))
        return scores

    @staticmethod
    def _usage(sample: dict, output: dict) -> tuple[int | None, int | None]:
        totals = sample.get("model_usage")
        usages = list(totals.values()) if isinstance(totals, dict) and totals else [output.get("usage")]
        prompt = completion = None
        for usage in usages:
            if not isinstance(usage, dict):
                continue
            if isinstance(usage.get("input_tokens"), int):
                prompt = (prompt or 0) + usage["input_tokens"]
            if isinstance(usage.get("output_tokens"), int):
                completion = (completion or 0) + usage["output_tokens"]
        return prompt, completion

    def close(self) -> None:
        """Close the zip, if one is open."""
        if self._zip is not None:
            self._zip.close()


def _tool_schemas(events: Any, resolve) -> list[dict] | None:
    """The tools the sample's first model call offered (Inspect's ToolInfo), as an OpenAI `tools` list; None: none."""
    for event in events if isinstance(events, list) else []:
        if not (isinstance(event, dict) and event.get("event") == "model" and isinstance(event.get("tools"), list)):
            continue
        tools = [tool for tool in resolve(event["tools"]) if isinstance(tool, dict) and isinstance(tool.get("name"), str)]
        if tools:
            return [{"type": "function", "function": {key: tool[key] for key in ("name", "description", "parameters")
                                                      if tool.get(key) is not None}} for tool in tools]
    return None


def _milliseconds(seconds: Any) -> float | None:
    """A duration in seconds as finite milliseconds, else None."""
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool):
        return None
    value = float(seconds) * 1000.0
    return value if math.isfinite(value) else None


def _sniff(path: Path) -> bool:
    """An .eval zip, or a .json file (or any file mentioning "eval" early) that is not chat JSONL."""
    first = head(path)
    return (path.suffix.lower() in (".eval", ".json") or first.startswith(b"PK")
            or (path.suffix.lower() != ".jsonl" and b'"eval"' in first))


register(ImportFormat("inspect", "Inspect AI logs (.eval zips and .json logs)", _sniff, InspectReader))
