"""`lessonlab tools`: the built-in tool sets a suite line can name, with each tool's signature and docstring."""
from __future__ import annotations

import click

from lessonlab.core.tools import describe_builtin_sets, signature

from .common import emit_json, handle_errors, json_option, out


@click.command("tools")
@json_option
@handle_errors
def tools_cmd(as_json: bool) -> None:
    """List the built-in tool sets and their tools (name them in a suite line's "tools")."""
    sets = describe_builtin_sets()
    if as_json:
        emit_json(sets)
        return
    for entry in sets:
        out(f"{entry['set']}" + ("  (stateful)" if entry["stateful"] else ""))
        for function in entry["tools"]:
            out(f"  {signature(function)}")
            out(f"      {function['description']}")
    out('\nIn a suite line: "tools": ["letters.spell", "calc"] (a set name alone: all its tools); '
        'your own: "python:module:factory".')
