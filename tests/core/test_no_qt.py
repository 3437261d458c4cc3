"""lessonlab.core never imports Qt."""
from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import lessonlab.core


def test_importing_every_core_module_loads_no_qt():
    names = [f"lessonlab.core.{m.name}" for m in pkgutil.iter_modules(lessonlab.core.__path__)]
    assert "lessonlab.core.runner" in names
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}: importlib.import_module(name)\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'PyQt5', 'PyQt6', 'shiboken6')]\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_core_source_has_no_qt_import():
    core_dir = Path(lessonlab.core.__file__).parent
    for path in core_dir.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        for line in text.splitlines():
            stripped = line.strip()
            if stripped.startswith(("import ", "from ")):
                assert "PySide6" not in stripped and "PyQt" not in stripped, f"{path.name}: {stripped}"
