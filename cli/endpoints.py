"""Commands for endpoint profiles: `endpoints` (list), `add`, `remove`, `test`."""
from __future__ import annotations

import sys
from dataclasses import asdict

import click

from lessonlab.core.models.llm_client import probe_endpoint
from lessonlab.core.settings import Endpoint, load_settings, save_settings

from .common import EXIT_FAILED, checked, emit_json, endpoint_url, handle_errors, json_option, out, status


@click.group("endpoints", invoke_without_command=True)
@json_option
@click.pass_context
@handle_errors
def endpoints_cmd(ctx: click.Context, as_json: bool) -> None:
    """List endpoint profiles (subcommands: add, remove, test)."""
    if ctx.invoked_subcommand is not None:
        return
    settings = load_settings()
    rows = [
        {**ep.to_dict(), "builtin": ep.builtin, "default": name == settings.default_endpoint}
        for name, ep in settings.all_endpoints().items()
    ]
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        url = row["base_url"] or "(embedded: llama-cpp-python server on 127.0.0.1, started on demand)"
        key = f"key from ${row['key_env']}" if row["key_env"] else "no key"
        mark = " *" if row["default"] else ""
        out(f"{row['name']}{mark}\t{row['model']}\t{url}\t{key}")


@endpoints_cmd.command("add")
@click.argument("name")
@click.option("--base-url", required=True, help="OpenAI-compatible base URL, e.g. http://localhost:8000/v1")
@click.option("--model", required=True, help="Model name to request.")
@click.option("--key-env", default=None, help="NAME of the environment variable holding the API key.")
@click.option("--temperature", type=float, default=None, callback=checked("temperature"),
              help="Default sampling temperature (0 to 2).")
@click.option("--max-tokens", type=int, default=None, callback=checked("max_tokens"),
              help="Default max tokens per reply.")
@click.option("--timeout", type=float, default=60.0, show_default=True, callback=checked("timeout"),
              help="Seconds per request.")
@click.option("--default", "make_default", is_flag=True, help="Use this endpoint when none is named.")
@handle_errors
def endpoints_add(name, base_url, model, key_env, temperature, max_tokens, timeout, make_default) -> None:
    """Add (or replace) an endpoint profile. The key itself is never stored."""
    settings = load_settings()
    params = {k: v for k, v in {"temperature": temperature, "max_tokens": max_tokens}.items() if v is not None}
    settings.add_endpoint(Endpoint(name=name, base_url=base_url.rstrip("/"), model=model, key_env=key_env,
                                   params=params, timeout=timeout))
    if make_default:
        settings.default_endpoint = name
    path = save_settings(settings)
    status(f"endpoint {name!r} saved in {path}")


@endpoints_cmd.command("remove")
@click.argument("name")
@handle_errors
def endpoints_remove(name) -> None:
    """Remove an endpoint profile."""
    settings = load_settings()
    settings.remove_endpoint(name)
    save_settings(settings)
    status(f"endpoint {name!r} removed")


@endpoints_cmd.command("test")
@click.argument("name")
@json_option
@handle_errors
def endpoints_test(name, as_json) -> None:
    """Send one tiny request and report latency or the error."""
    endpoint = load_settings().endpoint(name)
    with endpoint_url(endpoint, quiet=as_json) as url:
        result = probe_endpoint(endpoint, url)
    if as_json:
        emit_json({k: v for k, v in asdict(result).items() if v is not None or k in ("ok",)})
    elif result.ok:
        out(f"{name}: ok in {result.latency_ms:.0f} ms (model {result.server_model}): {result.reply!r}")
    else:
        out(f"{name}: FAILED: {result.error}")
    if not result.ok:
        sys.exit(EXIT_FAILED)
