"""Import formats are registered readers: `sniff` claims a file, `read` streams it; nothing is guessed."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from lessonlab.core import transfer as T
from lessonlab.core.transfer import readers
from lessonlab.core.transfer.imported import ImportedRollout, RunInfo
from lessonlab.core.transfer.scores import Warnings


class _TabSeparated:
    """A throwaway format: `question<TAB>answer` per line."""

    def __init__(self, path: Path):
        self.lines = Path(path).read_text().splitlines()
        self.info = RunInfo(format="tsv", suite="tsv-suite")
        self.total_bytes = Path(path).stat().st_size
        self.warnings = Warnings()
        self.scorers: list[str] = []

    def has_samples(self) -> bool:
        return bool(self.lines)

    def rollouts(self):
        for number, line in enumerate(self.lines, start=1):
            question, answer = line.split("\t")
            yield ImportedRollout(where=f"line {number}", source_key=f"tsv:{line}", task_name=str(number),
                                  messages=[{"role": "user", "content": question}], output=answer), self.total_bytes

    def close(self) -> None:
        pass


@pytest.fixture
def tsv_format():
    fmt = T.ImportFormat("tsv", "question and answer, tab-separated", lambda p: p.suffix == ".tsv", _TabSeparated)
    T.register_format(fmt)
    yield fmt
    del readers._FORMATS["tsv"]


def test_the_format_choices_come_from_the_registry(tsv_format):
    assert T.format_names() == ("auto", "openai-jsonl", "inspect", "tsv")
    with pytest.raises(ValueError, match="already registered"):
        T.register_format(tsv_format)


def test_a_new_format_is_one_registration(workspace, tmp_path, tsv_format):
    path = tmp_path / "qa.tsv"
    path.write_text("2+2?\t4\n3+3?\t6\n")
    result = T.import_file(workspace, path)
    assert (result.format, result.new, result.suite) == ("tsv", 2, "tsv-suite")
    assert T.detect_format(path) == "tsv"


def test_a_file_no_reader_claims_is_refused_not_read_as_jsonl(workspace, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("just some notes\n")
    with pytest.raises(T.TransferError, match=r"notes.txt: no import format recognises this file; .*--format inspect"):
        T.import_file(workspace, notes)
    with pytest.raises(T.TransferError, match="unknown format 'csv'"):
        T.import_file(workspace, notes, T.ImportOptions(format="csv"))
    assert workspace.one("SELECT COUNT(*) AS n FROM runs")["n"] == 0


def test_sniffing_tells_jsonl_from_inspect_by_content(tmp_path):
    line = json.dumps({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]})
    (tmp_path / "chat.txt").write_text(line + "\n")
    (tmp_path / "log.txt").write_text('{\n  "eval": {"task": "t"}\n}\n')
    assert T.detect_format(tmp_path / "chat.txt") == "openai-jsonl"
    assert T.detect_format(tmp_path / "log.txt") == "inspect"
