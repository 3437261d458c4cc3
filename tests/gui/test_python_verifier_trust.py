"""A suite with python verifiers runs from the app only after a confirmation naming the code and its file."""
from __future__ import annotations

import sys

import pytest
from PySide6.QtWidgets import QDialogButtonBox, QMessageBox
from tests.helpers.tasks import numeric_tasks, scripted_endpoint

from lessonlab.core.storage.workspace import open_workspace
from lessonlab.gui.pages import PageContext
from lessonlab.gui.runs_page import NewRunDialog, RunsPage

MODULE = "llv_gui_trust"


@pytest.fixture
def python_suite(tmp_path, make_suite, monkeypatch):
    """A suite of 2 tasks scored by llv_gui_trust:check (reward 1 when the reply has the answer)."""
    (tmp_path / f"{MODULE}.py").write_text(
        "def check(output, task):\n    return (1.0, 'python says yes') if str(task['metadata']['answer']) in output"
        " else (0.0, 'python says no')\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)   # python verifiers are looked up in the current directory first
    monkeypatch.delitem(sys.modules, MODULE, raising=False)
    tasks = [{**t, "verifier": {"kind": "python", "function": f"{MODULE}:check"},
              "metadata": {"answer": t["verifier"]["answer"]}} for t in numeric_tasks(2)]
    yield make_suite(tasks, name="pysuite")
    sys.modules.pop(MODULE, None)


def answer(monkeypatch, button) -> list[str]:
    """Make every message box answer `button`; return the texts they showed."""
    shown = []

    def exec_(box):
        shown.append(box.text())
        return button

    monkeypatch.setattr(QMessageBox, "exec", exec_)
    return shown


def open_dialog(page: RunsPage, suite) -> NewRunDialog:
    page.open_new_run_dialog()
    dialog = page.findChild(NewRunDialog, "newRunDialog")
    dialog.suite.setCurrentText(str(suite))
    dialog.endpoint.setCurrentIndex(dialog.endpoint.findData("scripted"))
    return dialog


def test_yes_runs_the_named_code_and_scores_with_it(tmp_path, python_suite, scripted, monkeypatch, qtbot):
    scripted_endpoint(scripted)
    shown = answer(monkeypatch, QMessageBox.StandardButton.Yes)
    ws = open_workspace(tmp_path / "ws.db")
    page = RunsPage(PageContext(ws))
    qtbot.addWidget(page)
    dialog = open_dialog(page, python_suite)
    dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok).click()
    assert len(shown) == 1
    assert f"{MODULE}:check" in shown[0] and str(tmp_path / f"{MODULE}.py") in shown[0]
    assert page.job is not None
    qtbot.waitUntil(lambda: page.job is None, timeout=15000)
    run = ws.one("SELECT id, trust_verifiers, mean_reward FROM runs")
    assert run["trust_verifiers"] == 1 and run["mean_reward"] == 1.0
    feedback = {r["feedback"] for r in ws.query("SELECT feedback FROM rollouts")}
    assert feedback == {"python says yes"}
    ws.close()


def test_cancel_starts_nothing_and_runs_no_code(tmp_path, python_suite, scripted, monkeypatch, qtbot):
    scripted_endpoint(scripted)
    shown = answer(monkeypatch, QMessageBox.StandardButton.Cancel)
    ws = open_workspace(tmp_path / "ws.db")
    page = RunsPage(PageContext(ws))
    qtbot.addWidget(page)
    dialog = open_dialog(page, python_suite)
    dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok).click()
    assert len(shown) == 1 and dialog.isVisible()  # back in the dialog to pick something else
    assert page.job is None and ws.one("SELECT COUNT(*) AS n FROM runs")["n"] == 0
    assert MODULE not in sys.modules
    dialog.reject()
    ws.close()


def test_suites_without_python_verifiers_ask_nothing(make_suite, scripted, monkeypatch, qtbot):
    scripted_endpoint(scripted)
    shown = answer(monkeypatch, QMessageBox.StandardButton.Cancel)
    dialog = NewRunDialog(suite=str(make_suite(numeric_tasks(2))), endpoint="scripted")
    qtbot.addWidget(dialog)
    dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok).click()
    assert shown == [] and dialog.result() == NewRunDialog.DialogCode.Accepted
    assert dialog.request().trust_verifiers is False



TOOLS_MODULE = "llv_gui_tools"


@pytest.fixture
def python_tools_suite(tmp_path, make_suite, monkeypatch):
    """A suite whose tasks use the tool set python:llv_gui_tools:make and a python verifier."""
    (tmp_path / f"{TOOLS_MODULE}.py").write_text(
        "def shout(text: str) -> str:\n    \"\"\"Shout.\"\"\"\n    return text.upper()\n\n\ndef make():\n    return [shout]\n",
        encoding="utf-8")
    (tmp_path / f"{MODULE}.py").write_text("def check(output, task):\n    return 1.0\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    tasks = [{**t, "tools": [f"python:{TOOLS_MODULE}:make", "letters"]} for t in numeric_tasks(2)]
    tasks[1]["verifier"] = {"kind": "python", "function": f"{MODULE}:check"}
    yield make_suite(tasks, name="toolsuite")
    sys.modules.pop(TOOLS_MODULE, None)
    sys.modules.pop(MODULE, None)


def test_python_tool_sets_are_named_with_their_file(tmp_path, python_tools_suite, scripted, monkeypatch, qtbot):
    scripted_endpoint(scripted)
    shown = answer(monkeypatch, QMessageBox.StandardButton.Yes)
    dialog = NewRunDialog(suite=str(python_tools_suite), endpoint="scripted")
    qtbot.addWidget(dialog)
    dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok).click()
    assert len(shown) == 1
    text = shown[0]
    assert "Tool sets (the model calls them during the run):" in text
    assert f"• python:{TOOLS_MODULE}:make\n    {tmp_path / f'{TOOLS_MODULE}.py'}" in text
    assert f"• {MODULE}:check\n    {tmp_path / f'{MODULE}.py'}" in text
    assert "letters" not in text                       # built-in sets are not user code
    assert dialog.result() == NewRunDialog.DialogCode.Accepted and dialog.request().trust_verifiers is True
    assert TOOLS_MODULE not in sys.modules            # naming the file did not import it


def test_cancel_on_a_python_tool_set_keeps_the_dialog_open(python_tools_suite, scripted, monkeypatch, qtbot):
    scripted_endpoint(scripted)
    shown = answer(monkeypatch, QMessageBox.StandardButton.Cancel)
    dialog = NewRunDialog(suite=str(python_tools_suite), endpoint="scripted")
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok).click()
    assert len(shown) == 1 and dialog.isVisible() and dialog.request().trust_verifiers is False
    dialog.reject()
