"""The layers hold: core loads no front end, and no lessonlab modules import each other in a cycle."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("lessonlab.core", "lessonlab.cli", "lessonlab.gui", "lessonlab.resources")


def _cycles(graph) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), i.e. import cycles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for child in graph.find_modules_directly_imported_by(node):
            if child not in index:
                visit(child)
                low[node] = min(low[node], low[child])
            elif child in on_stack:
                low[node] = min(low[node], index[child])
        if low[node] == index[node]:
            group = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                group.append(item)
                if item == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_no_import_cycle_among_lessonlab_modules_lazy_imports_included():
    # grimp reads every import statement, including the ones inside functions.
    graph = grimp.build_graph(*PACKAGES, exclude_type_checking_imports=True)
    for module in list(graph.modules):
        if not module.startswith("lessonlab."):
            graph.remove_module(module)
    assert "lessonlab.cli.root" in graph.modules and "lessonlab.core.runs.runner" in graph.modules
    assert _cycles(graph) == []


def test_lint_imports_contracts_are_kept():
    result = subprocess.run([str(Path(sys.executable).with_name("lint-imports")), "--no-cache"], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_importing_all_of_core_loads_no_qt_and_no_front_end():
    # (click is checked statically by the contract: sqlite-utils itself imports it at run time.)
    code = (
        "import importlib, pkgutil, sys, lessonlab.core as core\n"
        "for m in pkgutil.walk_packages(core.__path__, 'lessonlab.core.'): importlib.import_module(m.name)\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'shiboken6', 'pyqtgraph')"
        " or m.startswith(('lessonlab.cli', 'lessonlab.gui'))]\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_package_is_in_the_built_distribution():
    # pyproject lists the packages by hand (the folders map onto lessonlab.*): an editable install finds a
    # package missing from the list, a real install does not. Every folder with an __init__.py is listed.
    import tomllib

    root = Path(__file__).resolve().parent.parent
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {"lessonlab." + ".".join(init.parent.relative_to(root).parts)
             for top in ("core", "cli", "gui", "resources") for init in (root / top).rglob("__init__.py")}
    assert found - listed == set()
