"""Importing Inspect AI logs (real ones, and zstd ones in the newest format) and chat JSONL."""
from __future__ import annotations

import json
import shutil
import threading

import pytest

from lessonlab.core import lessons as L
from lessonlab.core.lessons.snapshots import build_messages, current_snapshot
from lessonlab.core.transfer import ImportOptions, MalformedFile, TransferError, import_file, import_files
from lessonlab.core.transfer.zipread import ZipMembers
from tests.helpers.inspect_logs import (CORPUS, DATA_DIR, LONG_QUESTION, SYSTEM, newest_eval, newest_samples,
                                        workspace_content)

POPULARITY = DATA_DIR / "2025-02-11T15-18-04-05-00_popularity_mj7khqpMM4GBCfVQozKgzB.eval"
# (task name, sample index) -> reward, exactly as Inspect scored them (C = 1, I = 0).
EXPECTED = {
    POPULARITY.name: {(str(i), 0): 0.0 if i in (3, 7) else 1.0 for i in range(1, 11)},
    "log_streaming.eval": {("1", 0): 0.0, ("1", 1): 1.0, ("2", 0): 1.0, ("2", 1): 1.0},
    "mmlu-summary-choices.eval": {("1", 0): 0.0},
    "log_formats.json": {("1", 0): 0.0},
    "log_images.json": {("1", 0): 0.0},
    "log_tool_call_error.json": {("1", 3): None},
}
SCORER = {POPULARITY.name: "match", "log_streaming.eval": "match", "mmlu-summary-choices.eval": "choice",
          "log_formats.json": "match", "log_images.json": "match", "log_tool_call_error.json": None}


def rewards_by_sample(ws, run_id) -> dict:
    rows = ws.query("SELECT t.name, r.sample_index, r.reward FROM rollouts r JOIN tasks t ON t.id = r.task_id"
                    " WHERE r.run_id = ?", (run_id,))
    return {(row["name"], row["sample_index"]): row["reward"] for row in rows}


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_each_real_inspect_log_imports_with_its_exact_scores(workspace, name):
    result = import_file(workspace, DATA_DIR / name)
    samples, model = CORPUS[name]
    assert (result.rollouts, result.new, result.existing) == (samples, samples, 0)
    assert rewards_by_sample(workspace, result.run_id) == EXPECTED[name]
    run = workspace.one("SELECT * FROM runs WHERE id = ?", (result.run_id,))
    assert (run["kind"], run["source_format"], run["source"]) == ("import", "inspect", str(DATA_DIR / name))
    assert run["model"] == model and run["n_done"] == samples and run["n_planned"] == samples
    scored = [r for r in EXPECTED[name].values() if r is not None]
    assert run["mean_reward"] == (sum(scored) / len(scored) if scored else None)
    # Every score is kept with its value as Inspect wrote it.
    values = [json.loads(v) for (v,) in workspace.conn.execute(
        "SELECT s.value_json FROM rollout_scores s JOIN rollouts r ON r.id = s.rollout_id WHERE r.run_id = ?",
        (result.run_id,))]
    assert sorted(values) == sorted("C" if r == 1.0 else "I" for r in scored)
    assert result.reward_scorer == SCORER[name]


def test_explanations_become_feedback_and_answers_are_kept(workspace):
    result = import_file(workspace, DATA_DIR / "log_streaming.eval")
    rows = {(r["name"], r["sample_index"]): r for r in workspace.query(
        "SELECT t.name, r.sample_index, r.feedback, s.answer, s.explanation, s.scorer FROM rollouts r"
        " JOIN tasks t ON t.id = r.task_id JOIN rollout_scores s ON s.rollout_id = r.id WHERE r.run_id = ?",
        (result.run_id,))}
    assert rows[("1", 1)]["feedback"] == "Yes." == rows[("1", 1)]["explanation"]
    assert rows[("1", 1)]["answer"] == "Yes." and rows[("1", 1)]["scorer"] == "match"
    # No explanation in the log: the feedback says what was graded instead of nothing.
    assert rows[("1", 0)]["explanation"] is None and rows[("1", 0)]["feedback"] == 'match: "I" (answer: No)'


def test_inspect_mapping_of_messages_task_tokens_and_latency(workspace):
    result = import_file(workspace, POPULARITY)
    row = workspace.one(
        "SELECT r.*, x.messages_json, x.output, t.prompt_json, t.verifier_json, t.metadata_json, t.suite,"
        " s.system_prompt FROM rollouts r JOIN rollout_texts x ON x.rollout_id = r.id JOIN tasks t ON t.id = r.task_id"
        " JOIN snapshots s ON s.id = r.snapshot_id WHERE r.run_id = ? AND t.name = '1'", (result.run_id,))
    messages = json.loads(row["messages_json"])
    assert [m["role"] for m in messages] == ["system", "user"] and row["output"] == "Yes"
    assert row["system_prompt"] == messages[0]["content"]            # the system message became the snapshot
    assert json.loads(row["prompt_json"]) == messages[1]["content"]  # the input became the task prompt
    assert json.loads(row["verifier_json"]) == {"kind": "imported", "target": " Yes"}
    assert json.loads(row["metadata_json"]) == {"label_confidence": 0.8860552919198255}
    assert row["suite"] == "popularity" and row["model"] == "gpt-4o-mini-2024-07-18"
    assert (row["prompt_tokens"], row["completion_tokens"], row["finish_reason"]) == (64, 2, "stop")
    assert row["latency_ms"] == pytest.approx(1203.8758330018027)
    assert row["status"] == "ok" and row["source_key"].startswith("inspect:")


def test_image_and_tool_messages_become_text(workspace):
    images = import_file(workspace, DATA_DIR / "log_images.json")
    messages = json.loads(workspace.one("SELECT messages_json FROM rollout_texts x JOIN rollouts r ON r.id = x.rollout_id"
                                        " WHERE r.run_id = ?", (images.run_id,))["messages_json"])
    assert messages[1] == {"role": "user", "content": "What is this a picture of?\n[image]"}
    tools = import_file(workspace, DATA_DIR / "log_tool_call_error.json")
    row = workspace.one("SELECT r.status, r.reward, x.messages_json FROM rollouts r JOIN rollout_texts x"
                        " ON x.rollout_id = r.id WHERE r.run_id = ?", (tools.run_id,))
    assert row["status"] == "ok" and row["reward"] is None  # no score: imported unscored
    tool_messages = json.loads(row["messages_json"])
    assert len(tool_messages) == 11 and tool_messages[0]["tool_call_id"] == "bash_1"
    # Each failed call reads as the error the model was sent, not as its (here scrubbed) output.
    assert tool_messages[0]["content"] == "Error: ..."
    assert tool_messages[-1]["content"] == "Error: The tool output limit of 10 MiB was exceeded."


@pytest.mark.parametrize("error, content", [
    ({"type": "timeout", "message": "took 30 s"}, "Error: took 30 s"),
    ({"type": "timeout", "message": ""}, "Error: timeout"),
    ("permission denied", "Error: permission denied"),
    (7, "partial output"), ({}, "partial output"), (None, "partial output"),
])
def test_a_chat_jsonl_tool_result_with_an_error_reads_as_that_error(workspace, tmp_path, error, content):
    call = {"id": "c1", "type": "function", "function": {"name": "run", "arguments": "{}"}}
    record = {"task_id": "t", "messages": [
        {"role": "user", "content": "go"}, {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "partial output", "error": error},
        {"role": "assistant", "content": "done"}]}
    source = tmp_path / "chat.jsonl"
    source.write_text(json.dumps(record) + "\n", encoding="utf-8")
    import_file(workspace, source)
    messages = json.loads(workspace.one("SELECT messages_json FROM rollout_texts")["messages_json"])
    assert messages[2] == {"role": "tool", "content": content, "tool_call_id": "c1"}


def test_newest_zstd_eval_with_several_frames_attachments_nan_and_an_error(workspace, tmp_path):
    path = newest_eval(tmp_path / "newest.eval", frames=3)
    with ZipMembers(str(path)) as members:  # the big sample really is several zstd frames
        info = members.info("samples/3_epoch_1.json")
        with open(path, "rb") as handle:
            handle.seek(info.header_offset)
            raw = handle.read(30 + len(info.filename) + info.compress_size)
        assert info.compress_type == 93 and raw.count(b"\x28\xb5\x2f\xfd") >= 3
    result = import_file(workspace, path)
    assert (result.rollouts, result.new, result.errors, result.scored) == (5, 5, 1, 3)
    assert result.scorers == ["match", "graded"] and result.reward_scorer == "match"
    assert rewards_by_sample(workspace, result.run_id) == {
        ("1", 0): 1.0, ("2", 0): None, ("3", 0): 0.0, ("4", 0): None, ("1", 1): 1.0}
    assert any("outside [0, 1]" in line for line in result.warnings)  # graded = 5 on sample 1 epoch 2
    rows = {(r["name"], r["sample_index"]): r for r in workspace.query(
        "SELECT t.name, r.sample_index, r.status, r.error, r.feedback, r.latency_ms, x.messages_json, x.output,"
        " t.prompt_json FROM rollouts r JOIN tasks t ON t.id = r.task_id JOIN rollout_texts x ON x.rollout_id = r.id"
        " WHERE r.run_id = ?", (result.run_id,))}
    assert rows[("3", 0)]["prompt_json"] == json.dumps(LONG_QUESTION)                   # attachment resolved
    assert json.loads(rows[("3", 0)]["messages_json"])[1]["content"] == LONG_QUESTION
    assert rows[("4", 0)]["status"] == "error" and rows[("4", 0)]["error"] == "RuntimeError: sandbox died"
    assert rows[("4", 0)]["output"] is None
    assert rows[("2", 0)]["feedback"] == "the scorer did not run" and rows[("1", 0)]["latency_ms"] == 1250.0
    scores = workspace.query("SELECT s.scorer, s.value_json, s.reward, s.metadata_json FROM rollout_scores s"
                             " JOIN rollouts r ON r.id = s.rollout_id JOIN tasks t ON t.id = r.task_id"
                             " WHERE t.name = '2' ORDER BY s.position")
    assert [(s["scorer"], s["value_json"], s["reward"]) for s in scores] == [("match", "null", None),
                                                                           ("graded", "0.0", 0.0)]
    graded = import_file(workspace, newest_eval(tmp_path / "again.eval", eval_id="Other"), ImportOptions(score="graded"))
    assert rewards_by_sample(workspace, graded.run_id) == {
        ("1", 0): 0.75, ("2", 0): 0.0, ("3", 0): 0.5, ("4", 0): None, ("1", 1): 1.0}


def test_a_log_without_header_is_read_from_the_journal_and_completed_later(workspace, tmp_path):
    crashed = newest_eval(tmp_path / "crashed.eval", header=False, samples=newest_samples()[:3])
    first = import_file(workspace, crashed)
    assert first.new == 3 and first.suite == "arith_newest" and first.model == "openai/gpt-5-mini"
    assert "_journal/start.json" in workspace.one("SELECT note FROM runs WHERE id = ?", (first.run_id,))["note"]
    finished = import_file(workspace, newest_eval(tmp_path / "finished.eval"))
    assert (finished.run_id, finished.run_created, finished.new, finished.existing) == (first.run_id, False, 2, 3)
    run = workspace.one("SELECT n_done, n_errors, samples FROM runs WHERE id = ?", (first.run_id,))
    assert (run["n_done"], run["n_errors"], run["samples"]) == (5, 1, 2)


def test_reimporting_duplicates_nothing(workspace, tmp_path):
    files = [DATA_DIR / name for name in sorted(CORPUS)] + [newest_eval(tmp_path / "n.eval")]
    first = import_files(workspace, files)
    before = workspace_content(workspace)
    again = import_files(workspace, files)
    assert [f.new for f in again.files] == [0] * len(files)
    assert [f.existing for f in again.files] == [f.rollouts for f in first.files]
    assert [f.run_id for f in again.files] == [f.run_id for f in first.files]
    assert workspace_content(workspace) == before


def test_first_system_message_is_looked_up_as_a_snapshot_so_lessons_keep_their_exposure(workspace, tmp_path):
    lesson_id = L.add_lesson(workspace, "Add the units digits first.").lesson_ids[0]
    snap = current_snapshot(workspace)
    assert snap.lesson_count == 1
    samples = newest_samples(system=snap.system_prompt)[:2]
    # A task with its own system message: lessonlab sends "snapshot prompt\n\ntask system message".
    merged = build_messages(snap.system_prompt, [{"role": "system", "content": "Use base 10."},
                                                 {"role": "user", "content": "What is 2 + 2?"}])
    samples[1]["messages"][0]["content"] = merged[0]["content"]
    samples[1]["input"] = [{"role": "system", "content": "Use base 10."}, {"role": "user", "content": "What is 3 + 3?"}]
    result = import_file(workspace, newest_eval(tmp_path / "lessoned.eval", samples=samples))
    snapshots = {r["snapshot_id"] for r in workspace.query("SELECT snapshot_id FROM rollouts WHERE run_id = ?",
                                                           (result.run_id,))}
    assert snapshots == {snap.id}
    assert L.lesson_history(workspace, lesson_id)["used_in"]["rollouts"] == 2
    other = import_file(workspace, newest_eval(tmp_path / "plain.eval", eval_id="Plain"))
    plain = workspace.one("SELECT s.system_prompt, s.lesson_count FROM runs r JOIN snapshots s ON s.id = r.snapshot_id"
                          " WHERE r.id = ?", (other.run_id,))
    assert (plain["system_prompt"], plain["lesson_count"]) == (SYSTEM, 0)


def write_jsonl(path, records) -> str:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records), encoding="utf-8")
    return path


def chat(question, answer, system="Be brief.", **extra) -> dict:
    return {"messages": [{"role": "system", "content": system}, {"role": "user", "content": question},
                         {"role": "assistant", "content": answer}], **extra}


def test_chat_jsonl_with_and_without_rewards(workspace, tmp_path):
    path = write_jsonl(tmp_path / "chats.jsonl", [
        chat("2+2?", "4", reward=1, task_id="add", metadata={"src": "a"}),
        chat("2+2?", "5", reward=0.0, task_id="add"),
        chat("Capital of France?", "Paris", reward=True),
        chat("Capital of Peru?", "Lima"),                                   # no reward: imported unscored
        chat("2+2?", "four", reward="C", task_id="add", feedback="spelled out"),
        chat("x", "y", reward=3),                                          # clamped with a warning
    ])
    result = import_file(workspace, path)
    assert (result.format, result.suite, result.new, result.scored, result.tasks) == ("openai-jsonl", "chats", 6, 5, 4)
    assert any("outside [0, 1]" in w for w in result.warnings) and result.reward_scorer is None
    rows = workspace.query("SELECT t.name, t.metadata_json, r.sample_index, r.reward, r.feedback, x.output"
                           " FROM rollouts r JOIN tasks t ON t.id = r.task_id JOIN rollout_texts x"
                           " ON x.rollout_id = r.id WHERE r.run_id = ? ORDER BY r.rowid", (result.run_id,))
    assert [(r["name"], r["sample_index"], r["reward"]) for r in rows[:2]] == [("add", 0, 1.0), ("add", 1, 0.0)]
    assert rows[4]["name"] == "add" and rows[4]["sample_index"] == 2 and rows[4]["feedback"] == "spelled out"
    assert json.loads(rows[0]["metadata_json"]) == {"src": "a"}
    assert rows[2]["name"].startswith("prompt-") and rows[2]["reward"] == 1.0 and rows[3]["reward"] is None
    assert rows[5]["reward"] == 1.0
    assert workspace.one("SELECT mean_reward FROM runs WHERE id = ?", (result.run_id,))["mean_reward"] == 0.8
    assert import_file(workspace, path).new == 0


@pytest.mark.parametrize("line, reason", [
    ("{not json", "line 2: invalid JSON"),
    ('{"reward": 1}', 'line 2: missing "messages"'),
    ('{"messages": []}', 'line 2: "messages" must be a non-empty array'),
    ('{"messages": [{"content": "hi"}]}', 'line 2: messages[0] is missing "role"'),
    ('{"messages": [{"role": "user", "content": "hi"}]}', "line 2: the last message must be the assistant's reply"),
    ('{"messages": [{"role": "assistant", "content": "x"}], "reward": "great"}', 'line 2: "reward" value "great"'),
    ('{"messages": [{"role": "assistant", "content": "x"}], "metadata": [1]}', 'line 2: "metadata" must be an object'),
    ('[1, 2]', "line 2: expected a JSON object"),
])
def test_a_malformed_jsonl_line_is_refused_by_number_and_writes_nothing(workspace, tmp_path, line, reason):
    import_file(workspace, POPULARITY)
    before = workspace_content(workspace)
    path = write_jsonl(tmp_path / "bad.jsonl", [chat("a", "b", reward=1), line, chat("c", "d")])
    with pytest.raises(MalformedFile) as caught:
        import_file(workspace, path)
    assert str(caught.value).startswith(f"{path}: {reason}")
    assert workspace_content(workspace) == before


def test_a_bad_line_after_several_batches_still_writes_nothing(workspace, tmp_path):
    before = workspace_content(workspace)
    records = [chat(f"q{i}", "a", reward=i % 2) for i in range(2500)] + ["{oops"]
    path = write_jsonl(tmp_path / "big.jsonl", records)
    with pytest.raises(MalformedFile, match="line 2501: invalid JSON"):
        import_file(workspace, path, ImportOptions(batch_size=500))
    assert workspace_content(workspace) == before


def truncated(src, dst, keep: float):
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * keep)])
    return dst


def test_malformed_inspect_logs_are_refused_naming_file_and_entry(workspace, tmp_path):
    import_file(workspace, POPULARITY)
    before = workspace_content(workspace)
    cut = truncated(DATA_DIR / "log_streaming.eval", tmp_path / "cut.eval", 0.6)
    with pytest.raises(MalformedFile, match=r"cut\.eval: not a readable \.eval zip, perhaps truncated"):
        import_file(workspace, cut)
    samples = newest_samples()
    del samples[2]["epoch"]
    with pytest.raises(MalformedFile, match=r'nofield\.eval: entry samples/3_epoch_\w+\.json: missing "epoch"'):
        import_file(workspace, newest_eval(tmp_path / "nofield.eval", samples=samples))
    broken = bytearray(newest_eval(tmp_path / "crc.eval").read_bytes())
    at = broken.find(b"samples/1_epoch_1.json") + 40  # the first name is the local header: flip a data byte
    broken[at] ^= 0xFF
    (tmp_path / "crc.eval").write_bytes(bytes(broken))
    with pytest.raises(MalformedFile, match=r"crc\.eval: entry samples/1_epoch_1\.json: .*damaged"):
        import_file(workspace, tmp_path / "crc.eval")
    json_log = tmp_path / "bad.json"
    json_log.write_text('{"version": 2, "samples": []}')
    with pytest.raises(MalformedFile, match=r'bad\.json: missing "eval"'):
        import_file(workspace, json_log)
    empty = newest_eval(tmp_path / "empty.eval", samples=[])
    with pytest.raises(MalformedFile, match="holds no rollouts"):
        import_file(workspace, empty)
    with pytest.raises(TransferError, match="no scorer named 'nope' .*scorers in the file: match, graded"):
        import_file(workspace, newest_eval(tmp_path / "ok.eval"), ImportOptions(score="nope"))
    assert workspace_content(workspace) == before


def test_several_files_stop_at_the_bad_one_keeping_the_ones_before(workspace, tmp_path):
    bad = write_jsonl(tmp_path / "bad.jsonl", ["{"])
    with pytest.raises(MalformedFile) as caught:
        import_files(workspace, [POPULARITY, bad, DATA_DIR / "log_streaming.eval"])
    assert [f.path for f in caught.value.imported] == [str(POPULARITY)]
    assert workspace.one("SELECT COUNT(*) AS n FROM runs")["n"] == 1
    with pytest.raises(TransferError, match="no such file"):
        import_files(workspace, [tmp_path / "missing.eval"])
    readme = shutil.copy(DATA_DIR / "README.md", tmp_path / "notes.txt")
    with pytest.raises(TransferError, match="no import format recognises"):
        import_files(workspace, [DATA_DIR / "log_streaming.eval", readme])  # checked before anything is written
    assert workspace.one("SELECT COUNT(*) AS n FROM runs")["n"] == 1


def test_dry_run_progress_and_cancel(workspace, tmp_path):
    before = workspace_content(workspace)
    dry = import_files(workspace, [POPULARITY], ImportOptions(dry_run=True))
    assert dry.files[0].new == 10 and dry.files[0].dry_run and dry.files[0].run_id is None
    assert workspace_content(workspace) == before
    seen = []
    path = write_jsonl(tmp_path / "many.jsonl", [chat(f"q{i}", "a", reward=1) for i in range(300)])
    report = import_files(workspace, [path, POPULARITY], ImportOptions(batch_size=50),
                          progress=lambda done, total: seen.append((done, total)))
    total = path.stat().st_size + POPULARITY.stat().st_size
    assert seen[-1] == (total, total) and all(b[0] >= a[0] for a, b in zip(seen, seen[1:]))
    assert len(seen) > 6 and {t for _, t in seen} == {total}
    assert [f.new for f in report.files] == [300, 10]
    cancel = threading.Event()
    cancel.set()
    before = workspace_content(workspace)
    stopped = import_files(workspace, [write_jsonl(tmp_path / "more.jsonl", [chat("z", "z")])], cancel=cancel)
    assert stopped.cancelled and stopped.files == []
    assert workspace_content(workspace) == before
