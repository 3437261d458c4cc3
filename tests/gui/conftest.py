"""GUI fixtures: seeded temporary workspaces and a scripted endpoint, Qt offscreen."""
from __future__ import annotations

import pytest

pytest.importorskip("PySide6")

from tests.helpers.scripted_server import Reply, ScriptedServer, completion  # noqa: E402
from tests.helpers.tasks import answer_for, numeric_tasks, seed_run  # noqa: E402


@pytest.fixture
def scripted():
    """A scripted server answering `Answer: i+1` (right) for every task."""
    with ScriptedServer(lambda req, n: Reply(body=completion(f"Answer: {answer_for(req)}"))) as server:
        yield server


@pytest.fixture
def seeded(tmp_path, make_suite, scripted):
    """A workspace with one run of 3 numeric tasks × 2 samples (all right) and its path."""
    path = tmp_path / "seeded.db"
    run_id = seed_run(path, make_suite(numeric_tasks(3)), scripted, samples=2)
    return path, run_id


@pytest.fixture
def window_factory(qtbot):
    """Build MainWindows on a workspace; shut them down (jobs, local model, workspace) at the end."""
    from lessonlab.gui.main_window import MainWindow

    windows = []

    def make(path):
        window = MainWindow(path)
        qtbot.addWidget(window)
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.shutdown()


@pytest.fixture
def page_context():
    """Build a PageContext on a workspace file (closed at the end), as the main window hands to its pages."""
    from lessonlab.core.storage.workspace import open_workspace
    from lessonlab.gui.pages import PageContext

    opened = []

    def make(path, changes=None):
        ws = open_workspace(path)
        opened.append(ws)
        context = PageContext(ws)
        if changes is not None:
            context.changes = changes
        return context

    yield make
    for ws in opened:
        ws.close()
