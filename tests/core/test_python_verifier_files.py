"""Which files a suite's python verifiers would run, found without running any of them."""
from __future__ import annotations

import sys

from lessonlab.core.tasks.suites import Task
from lessonlab.core.verifiers.python_function import describe_python_verifiers


def test_refs_resolve_to_their_files_without_importing_anything(tmp_path, monkeypatch):
    (tmp_path / "llv_top.py").write_text("raise AssertionError('imported llv_top')\n", encoding="utf-8")
    package = tmp_path / "llv_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("raise AssertionError('imported llv_pkg')\n", encoding="utf-8")
    (package / "checks.py").write_text("raise AssertionError('imported llv_pkg.checks')\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)  # the verifier loader looks in the current directory first
    tasks = [
        Task("a", "p", {"kind": "python", "function": "llv_top:check"}),
        Task("b", "p", {"kind": "numeric", "answer": 1}),
        Task("c", "p", {"kind": "python", "function": "llv_pkg.checks:score"}),
        Task("d", "p", {"kind": "python", "function": "llv_top:check"}),          # listed once
        {"id": "e", "verifier": {"kind": "python", "function": "llv_nowhere:f"}},  # plain dicts work too
    ]
    described = describe_python_verifiers(tasks)
    assert described == [
        ("llv_top:check", str(tmp_path / "llv_top.py")),
        ("llv_pkg.checks:score", str(package / "checks.py")),
        ("llv_nowhere:f", None),
    ]
    assert not {"llv_top", "llv_pkg", "llv_pkg.checks"} & set(sys.modules)


def test_no_python_verifiers_describes_nothing():
    assert describe_python_verifiers([Task("a", "p", {"kind": "exact", "answer": "x"})]) == []
