"""Screenshots of every page are saved and are not blank; the CLI opens the window."""
from __future__ import annotations

import pytest
from PySide6.QtGui import QImage

from lessonlab.gui.app import save_screenshot
from lessonlab.gui.page_registry import PAGES


def distinct_colours(path, step: int = 7) -> int:
    image = QImage(str(path))
    assert not image.isNull()
    return len({image.pixel(x, y) for x in range(0, image.width(), step) for y in range(0, image.height(), step)})


def test_every_page_screenshot_is_saved_and_not_blank(seeded, window_factory, tmp_path):
    path, _ = seeded
    window = window_factory(path)
    for entry in PAGES:
        out = save_screenshot(window, tmp_path / "shots" / f"{entry.name}.png", entry.name)
        assert out.exists() and out.stat().st_size > 2000
        assert distinct_colours(out) > 8, entry.name
    assert window.page("compare").columns  # the compare page opened on a task with its rollouts


def test_cli_gui_command_and_no_arguments_open_the_window(tmp_path, monkeypatch):
    from click.testing import CliRunner

    import lessonlab.gui.app as app
    from lessonlab.cli.root import cli

    calls = []
    monkeypatch.setattr(app, "run_app", lambda *a: calls.append(a) or 0)
    runner = CliRunner()
    result = runner.invoke(cli, ["gui", "--workspace", str(tmp_path / "w.db"), "--screenshot",
                                 str(tmp_path / "s.png"), "--page", "compare"])
    assert result.exit_code == 0, result.output
    assert calls[-1] == (tmp_path / "w.db", tmp_path / "s.png", "compare")
    result = runner.invoke(cli, [])
    assert result.exit_code == 0, result.output
    assert calls[-1] == (None, None, None)


def test_the_lessonlab_gui_entry_point_is_the_same_click_command(tmp_path, monkeypatch):
    import lessonlab.gui.app as app
    from lessonlab.cli.app import gui_main

    calls = []
    monkeypatch.setattr(app, "run_app", lambda *a: calls.append(a) or 0)
    monkeypatch.setattr("sys.argv", ["lessonlab-gui", "--workspace", str(tmp_path / "w.db"), "--page", "Impact"])
    with pytest.raises(SystemExit) as exited:
        gui_main()
    assert exited.value.code == 0
    assert calls == [(tmp_path / "w.db", None, "impact")]
    monkeypatch.setattr("sys.argv", ["lessonlab-gui", "--page", "nowhere"])
    with pytest.raises(SystemExit) as exited:
        gui_main()
    assert exited.value.code == 2 and len(calls) == 1


def test_cli_without_pyside_names_the_install_command(monkeypatch):
    import importlib.util

    from click.testing import CliRunner

    from lessonlab.cli.root import cli

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "PySide6" else real(name, *a))
    result = CliRunner().invoke(cli, ["gui"])
    assert result.exit_code == 1
    assert "pip install 'lessonlab[gui]'" in result.output
