"""`lessonlab impact` says when there is too little data, and roughly how many more rollouts would settle it."""
from __future__ import annotations

import json

from click.testing import CliRunner

from tests.helpers.impact_data import thin_and_unsettled
from lessonlab.cli.root import cli


def test_impact_says_too_little_data_with_a_rollout_estimate(tmp_path):
    path = tmp_path / "ws.db"
    thin, unsettled = thin_and_unsettled(path)
    r = CliRunner().invoke(cli, ["impact", "--workspace", str(path)])
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith(thin))
    assert lines[at + 1].strip() == ("too little data (2 matched tasks, need 3): at least 4 more rollouts with and "
                                     "without it on the same tasks before there is an interval")
    at = next(i for i, line in enumerate(lines) if line.startswith(unsettled))
    assert "+0.17 [-0.10,+0.44] n=6" in lines[at]   # paired t over 6 tasks
    assert lines[at + 1].strip().startswith("too little data: the interval includes 0; about ")
    assert lines[at + 1].strip().endswith(" more rollouts would settle it")
    data = {row["lesson_id"]: row["observational"] for row in
            json.loads(CliRunner().invoke(cli, ["impact", "--workspace", str(path), "--json"]).stdout)}
    assert data[thin]["more_rollouts"] == 4 and data[unsettled]["more_rollouts"] > 0
    assert f"about {data[unsettled]['more_rollouts']} more rollouts" in lines[at + 1]
