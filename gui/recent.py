"""Recently opened workspaces, kept as a small JSON list in the user config dir."""
from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path

from lessonlab.core.paths import config_dir

log = logging.getLogger("lessonlab.gui.recent")
MAX_RECENT = 8


def recent_path() -> Path:
    """Where the recent workspaces list is kept."""
    return config_dir() / "recent_workspaces.json"


def load_recent() -> list[str]:
    """Recent workspace paths, newest first (a broken file is logged and treated as empty)."""
    path = recent_path()
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable %s: %s", path, exc)
        return []
    return [p for p in data if isinstance(p, str)][:MAX_RECENT] if isinstance(data, list) else []


def add_recent(workspace: Path) -> list[str]:
    """Put workspace first in the recent list and save it atomically."""
    entries = [str(Path(workspace).resolve())]
    entries += [p for p in load_recent() if p != entries[0]]
    entries = entries[:MAX_RECENT]
    path = recent_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".recent-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(entries, fh, indent=2)
    os.replace(tmp, path)
    return entries
