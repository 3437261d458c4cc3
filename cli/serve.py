"""`lessonlab serve` (the recording proxy that puts the lessons into any agent's requests) and `lessonlab score`."""
from __future__ import annotations

import asyncio

import click

from lessonlab.core.paths import workspace_path as resolve_workspace_path
from lessonlab.core.runs.scoring import score_rollout
from lessonlab.core.serve.server import ServeConfig, serve_until_stopped
from lessonlab.core.settings import load_settings
from lessonlab.core.storage.workspace import open_workspace

from .common import emit_json, endpoint_url, fmt, handle_errors, json_option, out, status, workspace_option


@click.command("serve")
@click.option("--endpoint", "endpoint_name", default=None, help="Endpoint to forward to (default: the default one).")
@click.option("--port", type=int, default=8765, show_default=True, help="Port to listen on (0 picks a free one).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; one other machines can reach needs --token-env.")
@click.option("--suite", "suite", default=None, metavar="SCOPE",
              help="Lessons scoped to this suite (and the suite of the recorded tasks); "
                   "a request's X-Lessonlab-Suite header overrides it.")
@click.option("--token-env", default=None, metavar="VAR",
              help="Name of a variable holding the token clients must send as `Authorization: Bearer …`.")
@workspace_option
@handle_errors
def serve_cmd(endpoint_name, port, host, suite, token_env, workspace_path) -> None:
    """Serve an OpenAI-compatible API that adds the active lessons to every request and records each exchange."""
    settings = load_settings()
    endpoint = settings.endpoint(endpoint_name or settings.default_endpoint)
    path = resolve_workspace_path(workspace_path)
    config = ServeConfig(endpoint=endpoint, base_url=endpoint.base_url or "", workspace_path=path, host=host,
                         port=port, suite=suite, token_env=token_env)
    config.check()  # a refused host is one line before anything is opened or started
    ws = open_workspace(path)  # created and migrated here, so the writer thread finds it ready
    ws.require_writable()
    ws.close()
    with endpoint_url(endpoint) as base_url:
        config.base_url = base_url

        def ready(url: str) -> None:
            out(f"serving {url} → {endpoint.name} (model {endpoint.model})")

        asyncio.run(serve_until_stopped(config, ready))
    status("stopped; every exchange is recorded")


@click.command("score")
@click.argument("rollout")
@click.option("--reward", "-r", required=True, help="Reward from 0 to 1 (1 good, 0 bad).")
@click.option("--feedback", "-f", default=None, help="A line saying why.")
@workspace_option
@json_option
@handle_errors
def score_cmd(rollout, reward, feedback, workspace_path, as_json) -> None:
    """Give an unscored rollout (e.g. one recorded by `serve`) its reward and feedback."""
    ws = open_workspace(workspace_path)
    scored = score_rollout(ws, rollout, reward, feedback)
    if as_json:
        emit_json(scored.__dict__)
        return
    before = "unscored" if scored.previous is None else fmt.reward(scored.previous)
    out(f"{scored.rollout_id}: reward {fmt.reward(scored.reward)} (was {before}); "
        f"run {scored.run_id} mean {fmt.reward(scored.run_mean)}")
