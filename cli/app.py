"""`gui`: open the desktop app (also what `lessonlab` with no arguments does)."""
from __future__ import annotations

import importlib.util
import logging
import os
import sys
from pathlib import Path

import click

from lessonlab.gui.page_registry import page_names

from .common import EXIT_FAILED, CliError, workspace_option

GUI_INSTALL_COMMAND = "pip install 'lessonlab[gui]'"


@click.command("gui")
@workspace_option
@click.option("--screenshot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Render the window to this PNG file and exit (offscreen is fine).")
@click.option("--page", type=click.Choice(page_names(), case_sensitive=False), default=None, help="Page to show first.")
def gui_cmd(workspace_path=None, screenshot=None, page=None) -> None:
    """Open the desktop app (also what `lessonlab` with no arguments does)."""
    if importlib.util.find_spec("PySide6") is None:
        raise CliError(f"the desktop app needs PySide6, which is not installed; install it with: {GUI_INSTALL_COMMAND}",
                       EXIT_FAILED)
    if screenshot is not None:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # a screenshot needs no display
    elif (sys.platform.startswith("linux") and not os.environ.get("QT_QPA_PLATFORM")
          and not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY")):
        # Without this, Qt aborts with a message about platform plugins that hides the cause.
        raise CliError(
            "no display to open the window on (DISPLAY and WAYLAND_DISPLAY are not set); run it on a desktop "
            "or under `xvfb-run lessonlab`, or use the command line, e.g. "
            "`lessonlab run --suite strawberry --limit 5 --samples 2 --endpoint local`",
            EXIT_FAILED,
        )
    from lessonlab.gui.app import run_app  # imported only when the window opens: the CLI works without Qt

    sys.exit(run_app(workspace_path, screenshot, page))


def gui_main() -> None:
    """Entry point of `lessonlab-gui`: the `gui` command on its own."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    gui_cmd(prog_name="lessonlab-gui")
