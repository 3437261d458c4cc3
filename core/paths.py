"""Default locations of the workspace and the settings file."""
from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "lessonlab"


def _platformdirs():
    # Imported when a platform default is asked for: a command given --workspace (or the LESSONLAB_* overrides)
    # never needs it, and it costs a listing several milliseconds of its start-up.
    import platformdirs

    return platformdirs


def config_dir() -> Path:
    """Directory holding settings.json; LESSONLAB_CONFIG_DIR overrides the platform default."""
    override = os.environ.get("LESSONLAB_CONFIG_DIR")
    return Path(override) if override else Path(_platformdirs().user_config_dir(APP_NAME))


def data_dir() -> Path:
    """Directory holding the default workspace; LESSONLAB_DATA_DIR overrides the platform default."""
    override = os.environ.get("LESSONLAB_DATA_DIR")
    return Path(override) if override else Path(_platformdirs().user_data_dir(APP_NAME))


def workspace_path(given: str | Path | None = None) -> Path:
    """The workspace file a command means: the one given (with ~ expanded), else the default one."""
    return Path(given or default_workspace_path()).expanduser()


def default_workspace_path() -> Path:
    """The workspace used when no --workspace is given (LESSONLAB_WORKSPACE overrides)."""
    override = os.environ.get("LESSONLAB_WORKSPACE")
    return Path(override) if override else data_dir() / "workspace.db"
