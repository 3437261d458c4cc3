"""The app and the proxy: serve runs grow live on the Runs page, unscored rollouts are scored from the keyboard
(Runs and Compare, through the core's score_rollout), and Run → Proxy starts and stops a proxy child process."""
from __future__ import annotations

from PySide6.QtCore import Qt

from lessonlab.core.storage.workspace import open_workspace
from lessonlab.gui.compare_page import ComparePage
from tests.helpers.proxy import post, proxy_for
from tests.helpers.scripted_server import Reply, ScriptedServer, completion
from tests.helpers.tasks import scripted_endpoint


def ask(url, text):
    return post(f"{url}/chat/completions", json_body={"messages": [{"role": "user", "content": text}]})


def scores(path):
    with open_workspace(path) as ws:
        return {r["id"]: (r["reward"], r["feedback"]) for r in ws.query("SELECT id, reward, feedback FROM rollouts")}


def test_serve_run_grows_live_and_is_scored_from_the_runs_page_keys(tmp_path, window_factory, qtbot):
    path = tmp_path / "ws.db"
    window = window_factory(path)
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()
    page = window.page("runs")
    assert page.runs_model.total() == 0
    with ScriptedServer(lambda req, n: Reply(body=completion(f"reply {n}"))) as upstream:
        with proxy_for(upstream.base_url, path) as proxy:
            first = ask(proxy.url, "one").headers["X-Lessonlab-Rollout"]
            qtbot.waitUntil(lambda: page.runs_model.total() == 1, timeout=5000)   # noticed by the poll
            page.select_run(page.runs_model.run_id(0))
            assert page.rollouts_model.rowCount() == 1
            ask(proxy.url, "two")
            qtbot.waitUntil(lambda: page.rollouts_model.rowCount() == 2, timeout=5000)
            assert page.runs_model.data(page.runs_model.index(0, 4)) == "2/2"
    reward_column = [key for key, _ in page.rollouts_model.COLUMNS].index("reward")
    assert page.rollouts_model.data(page.rollouts_model.index(0, reward_column)) == "unscored"
    page.rollouts_view.setFocus()
    page.rollouts_view.setCurrentIndex(page.rollouts_model.index(0, 0))
    qtbot.keyClick(page.rollouts_view, Qt.Key.Key_1)
    assert page.score_bar.isVisible() and page.score_bar.feedback.hasFocus()
    qtbot.keyClicks(page.score_bar.feedback, "said it well")
    qtbot.keyClick(page.score_bar.feedback, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: scores(path)[first] == (1.0, "said it well"), timeout=5000)
    qtbot.waitUntil(lambda: page.rollouts_model.data(page.rollouts_model.index(0, reward_column)) == "1.000",
                    timeout=5000)
    assert not page.score_bar.isVisible()
    # A scored rollout is not scored again by a stray key.
    qtbot.keyClick(page.rollouts_view, Qt.Key.Key_0)
    assert not page.score_bar.isVisible()
    page.rollouts_view.setCurrentIndex(page.rollouts_model.index(1, 0))
    qtbot.keyClick(page.rollouts_view, Qt.Key.Key_Period)
    assert page.score_bar.reward.hasFocus() and page.score_bar.reward.text() == "0."
    qtbot.keyClicks(page.score_bar.reward, "5")
    qtbot.keyClick(page.score_bar.reward, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: sorted(v[0] for v in scores(path).values() if v[0] is not None) == [0.5, 1.0], timeout=5000)
    page.grab().save(str(tmp_path / "runs-serve.png"))


def test_compare_scores_the_focused_unscored_column(tmp_path, qtbot, page_context):
    path = tmp_path / "ws.db"
    with ScriptedServer(lambda req, n: Reply(body=completion(f"reply {n}"))) as upstream:
        with proxy_for(upstream.base_url, path) as proxy:
            ids = [ask(proxy.url, "same question").headers["X-Lessonlab-Rollout"] for _ in range(2)]
    with open_workspace(path) as ws:
        task_id = ws.one("SELECT task_id FROM rollouts LIMIT 1")["task_id"]
    page = ComparePage(page_context(path))
    qtbot.addWidget(page)
    page.resize(1200, 700)
    page.show()
    qtbot.waitExposed(page)
    page.activateWindow()
    page.show_task(task_id)
    qtbot.waitUntil(lambda: len(page.columns) == 2, timeout=5000)
    assert [c.badge.text() for c in page.columns] == ["unscored", "unscored"]
    second = next(c for c in page.columns if c.rollout["id"] == ids[1])
    second.setFocus()
    qtbot.keyClick(second, Qt.Key.Key_0)
    assert page.score_bar.isVisible() and page.score_bar.rollout_id == ids[1]
    qtbot.keyClicks(page.score_bar.feedback, "wrong count")
    qtbot.keyClick(page.score_bar.feedback, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: scores(path)[ids[1]] == (0.0, "wrong count"), timeout=5000)
    qtbot.waitUntil(lambda: sorted(c.badge.text() for c in page.columns) == ["0.000", "unscored"], timeout=5000)
    page.grab().save(str(tmp_path / "compare-serve.png"))


def test_bad_reward_is_a_dialog_and_scores_nothing(tmp_path, window_factory, qtbot):
    from lessonlab.gui import errors

    path = tmp_path / "ws.db"
    with ScriptedServer(lambda req, n: Reply(body=completion("x"))) as upstream:
        with proxy_for(upstream.base_url, path) as proxy:
            rollout = ask(proxy.url, "q").headers["X-Lessonlab-Rollout"]
    window = window_factory(path)
    page = window.page("runs")
    page.score_bar.begin(rollout, "0.")
    qtbot.keyClicks(page.score_bar.reward, "7x")
    page.score_bar.submit()
    assert errors.shown_errors[-1][0] == "Cannot score this rollout"
    assert scores(path)[rollout] == (None, None)


def test_proxy_menu_starts_and_stops_a_proxy_process(tmp_path, window_factory, qtbot):
    path = tmp_path / "ws.db"
    with ScriptedServer(lambda req, n: Reply(body=completion("through the app's proxy"))) as upstream:
        scripted_endpoint(upstream)
        window = window_factory(path)
        dialog = window.open_proxy_dialog()
        dialog.port.setValue(0)
        dialog.toggle.click()
        qtbot.waitUntil(lambda: dialog.url.text().startswith("http://127.0.0.1:"), timeout=20000)
        assert dialog.toggle.text() == "Stop proxy" and dialog.copy.isEnabled()
        dialog.grab().save(str(tmp_path / "proxy-dialog.png"))
        answer = ask(dialog.url.text(), "hello")
        assert answer.json()["choices"][0]["message"]["content"] == "through the app's proxy"
        dialog.toggle.click()
        qtbot.waitUntil(lambda: not window.proxy.running, timeout=20000)
        assert "every exchange is recorded" in dialog.status.text() and dialog.url.text() == ""
    with open_workspace(path) as ws:
        assert ws.one("SELECT COUNT(*) AS n FROM rollouts WHERE run_id IN (SELECT id FROM runs WHERE kind = 'serve')"
                      )["n"] == 1
