"""User settings (endpoint profiles, budgets) saved as JSON in the user config dir. Never holds a key."""
from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from lessonlab.core.errors import BadInput
from lessonlab.core.paths import config_dir

LOCAL_ENDPOINT = "local"
LOCAL_MODEL = "SmolLM2-135M-Instruct"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class SettingsError(BadInput, ValueError):
    """Settings file or an endpoint profile is invalid."""


# Sampling parameters lessonlab knows, with the range every OpenAI-compatible server accepts.
# NaN and infinities are refused everywhere: JSON cannot carry them and a server rejects them.
PARAM_RANGES: dict[str, tuple[type, float, float]] = {
    "temperature": (float, 0.0, 2.0),
    "top_p": (float, 0.0, 1.0),
    "max_tokens": (int, 1, 1_000_000),
    "presence_penalty": (float, -2.0, 2.0),
    "frequency_penalty": (float, -2.0, 2.0),
}
MAX_TIMEOUT_SECONDS = 3600.0
# Prefixes of the API keys people most often paste by mistake where a variable NAME belongs.
_KEY_PREFIXES = ("sk-", "sk_", "gsk_", "xai-", "hf_", "ghp_", "gho_", "github_pat_", "pplx-", "r8_", "nvapi-",
                 "AIza", "pk-", "csk-", "fw_")


def _finite_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_param(name: str, value, where: str = "") -> None:
    """SettingsError unless a sampling parameter is a finite number in its range (unknown names: any finite value)."""
    prefix = f"{where}: " if where else ""
    if value is None:
        return
    if name not in PARAM_RANGES:
        if isinstance(value, float) and not math.isfinite(value):
            raise SettingsError(f"{prefix}{name} must be a finite number, got {value}")
        return
    kind, low, high = PARAM_RANGES[name]
    if kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
        wanted = f"a whole number from {low:,} to {high:,}"
    else:
        ok = _finite_number(value) and low <= value <= high
        wanted = f"a finite number from {low:g} to {high:g}"
    if not ok:
        shown = json.dumps(value) if not isinstance(value, float) else repr(value)
        raise SettingsError(f"{prefix}{name} must be {wanted}, got {shown[:40]}")


def check_params(params, where: str = "") -> None:
    """SettingsError unless params is an object of finite sampling values in range."""
    if not isinstance(params, dict):
        raise SettingsError(f"{where + ': ' if where else ''}params must be an object")
    for name, value in params.items():
        check_param(name, value, where)


def check_timeout(value, where: str = "") -> None:
    """SettingsError unless a request timeout is a finite number of seconds above 0."""
    if not _finite_number(value) or not 0 < value <= MAX_TIMEOUT_SECONDS:
        shown = repr(value) if isinstance(value, float) else json.dumps(value, default=str)[:40]
        raise SettingsError(f"{where + ': ' if where else ''}timeout must be a finite number of seconds above 0 "
                            f"and at most {MAX_TIMEOUT_SECONDS:g}, got {shown}")


def looks_like_key(value: str) -> bool:
    """Whether a --key-env value is more likely an API key than the name of a variable holding one."""
    if value.startswith(_KEY_PREFIXES):
        return True
    # Variable names are words; keys are long runs of mixed-case letters and digits.
    long_token = len(value) >= 24 and any(c.isdigit() for c in value) and any(c.islower() for c in value)
    return long_token and "_" not in value.strip("_")


@dataclass
class Endpoint:
    """An OpenAI-compatible chat-completions server + model + default sampling params."""

    name: str
    base_url: str | None          # None only for the embedded `local` endpoint (port chosen at start)
    model: str
    key_env: str | None = None    # name of the environment variable holding the key; the key is never stored
    params: dict = field(default_factory=dict)   # default sampling params, e.g. {"temperature": 0.7, "max_tokens": 256}
    timeout: float = 60.0         # seconds per request
    builtin: bool = False

    @property
    def is_local(self) -> bool:
        return self.builtin and self.name == LOCAL_ENDPOINT

    def api_key(self) -> str:
        """The key from the environment (a placeholder where none is needed)."""
        if self.key_env:
            value = os.environ.get(self.key_env)
            if not value:
                raise SettingsError(
                    f"endpoint {self.name!r} reads its key from ${self.key_env}, which is not set"
                )
            return value
        return "not-needed"

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data.pop("builtin")
        return data

    def validate(self) -> None:
        """Raise SettingsError if the profile cannot work."""
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            raise SettingsError(f"endpoint name {self.name!r} must be letters, digits, '_', '.', '-'")
        where = f"endpoint {self.name!r}"
        if not self.builtin:
            if not isinstance(self.base_url, str) or not re.match(r"^https?://", self.base_url):
                raise SettingsError(f"{where}: base URL must be a string starting with http:// or https://")
        if not isinstance(self.model, str) or not self.model:
            raise SettingsError(f"{where}: a model name is required")
        if self.key_env is not None and (not isinstance(self.key_env, str) or not _ENV_RE.match(self.key_env)
                                         or looks_like_key(self.key_env)):
            # The value is never repeated: it may be the key itself.
            raise SettingsError(
                f"{where}: --key-env takes the NAME of an environment variable "
                f"(e.g. OPENAI_API_KEY), not the key itself"
            )
        check_params(self.params, where)
        check_timeout(self.timeout, where)


def local_endpoint() -> Endpoint:
    """The built-in embedded endpoint (SmolLM2 served by llama-cpp-python)."""
    return Endpoint(
        name=LOCAL_ENDPOINT,
        base_url=None,
        model=LOCAL_MODEL,
        params={"temperature": 0.7, "max_tokens": 256},
        timeout=120.0,
        builtin=True,
    )


@dataclass
class Settings:
    """Everything lessonlab remembers between sessions, outside the workspace."""

    endpoints: dict[str, Endpoint] = field(default_factory=dict)
    default_endpoint: str = LOCAL_ENDPOINT
    lesson_token_budget: int = 1000
    reflection_context_tokens: int = 6000
    base_prompt: str | None = None     # None: the built-in base prompt from resources

    def all_endpoints(self) -> dict[str, Endpoint]:
        """The built-in `local` profile plus the user's profiles."""
        return {LOCAL_ENDPOINT: local_endpoint(), **self.endpoints}

    def endpoint(self, name: str) -> Endpoint:
        """A profile by name; SettingsError naming the known ones otherwise."""
        endpoints = self.all_endpoints()
        if name not in endpoints:
            raise SettingsError(
                f"no endpoint named {name!r} (known: {', '.join(sorted(endpoints))}); "
                f"add one with `lessonlab endpoints add {name} --base-url URL --model MODEL`"
            )
        return endpoints[name]

    def add_endpoint(self, endpoint: Endpoint) -> None:
        """Add or replace a user profile (the built-in `local` cannot be replaced)."""
        if endpoint.name == LOCAL_ENDPOINT:
            raise SettingsError("'local' is the built-in embedded endpoint; choose another name")
        endpoint.builtin = False
        endpoint.validate()
        self.endpoints[endpoint.name] = endpoint

    def remove_endpoint(self, name: str) -> None:
        """Remove a user profile."""
        if name == LOCAL_ENDPOINT:
            raise SettingsError("'local' is built in and cannot be removed")
        if name not in self.endpoints:
            raise SettingsError(f"no endpoint named {name!r}")
        del self.endpoints[name]
        if self.default_endpoint == name:
            self.default_endpoint = LOCAL_ENDPOINT

    def to_dict(self) -> dict:
        return {
            "endpoints": {name: ep.to_dict() for name, ep in sorted(self.endpoints.items())},
            "default_endpoint": self.default_endpoint,
            "lesson_token_budget": self.lesson_token_budget,
            "reflection_context_tokens": self.reflection_context_tokens,
            "base_prompt": self.base_prompt,
        }


def _whole(low: int):
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= low


# Top-level keys of settings.json: what each must be, and the check.
_TOP_LEVEL = {
    "default_endpoint": ("an endpoint name", lambda v: isinstance(v, str) and bool(v)),
    "lesson_token_budget": ("a whole number of tokens (1 or more)", _whole(1)),
    "reflection_context_tokens": ("a whole number of tokens (200 or more)", _whole(200)),
    "base_prompt": ("a string or null", lambda v: v is None or isinstance(v, str)),
}


def settings_path() -> Path:
    """Where settings.json lives."""
    return config_dir() / "settings.json"


def load_settings(path: Path | None = None) -> Settings:
    """Read settings.json (defaults when absent); SettingsError naming the file when it is broken."""
    path = path or settings_path()
    if not path.exists():
        return Settings()
    if path.is_dir():
        raise SettingsError(f"{path} is a directory, not a settings file; move it away")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{path}: not valid JSON ({exc})") from exc
    except RecursionError:
        raise SettingsError(f"{path}: not valid JSON (nested too deeply)") from None
    except OSError as exc:
        raise SettingsError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if not isinstance(data, dict):
        raise SettingsError(f"{path}: expected a JSON object")
    settings = Settings()
    for key, (wanted, check) in _TOP_LEVEL.items():
        if key in data:
            if not check(data[key]):
                raise SettingsError(f"{path}: {key} must be {wanted}, got {json.dumps(data[key], default=str)[:40]}")
            setattr(settings, key, data[key])
    endpoints = data.get("endpoints")
    endpoints = {} if endpoints is None else endpoints
    if not isinstance(endpoints, dict):
        raise SettingsError(f"{path}: endpoints must be an object mapping names to profiles, "
                            f"got {type(endpoints).__name__}")
    for name, raw in endpoints.items():
        if not isinstance(raw, dict):
            raise SettingsError(f"{path}: endpoint {name!r} must be an object")
        known = {f.name for f in dataclasses.fields(Endpoint)} - {"builtin"}
        extra = set(raw) - known
        if extra:
            raise SettingsError(f"{path}: endpoint {name!r} has unknown fields {sorted(extra)}")
        try:
            endpoint = Endpoint(**{**raw, "name": name})
            endpoint.validate()
        except (TypeError, SettingsError) as exc:
            raise SettingsError(f"{path}: {exc}") from exc
        settings.endpoints[name] = endpoint
    return settings


def save_settings(settings: Settings, path: Path | None = None) -> Path:
    """Write settings.json atomically (a crash never leaves half a file)."""
    path = path or settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".settings-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(settings.to_dict(), fh, indent=2)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
