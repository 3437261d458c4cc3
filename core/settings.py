"""User settings (endpoint profiles, budgets) saved as JSON in the user config dir. Never holds a key."""
from __future__ import annotations

import dataclasses
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .errors import BadInput
from .paths import config_dir

LOCAL_ENDPOINT = "local"
LOCAL_MODEL = "SmolLM2-135M-Instruct"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class SettingsError(BadInput, ValueError):
    """Settings file or an endpoint profile is invalid."""


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
        if not _NAME_RE.match(self.name or ""):
            raise SettingsError(f"endpoint name {self.name!r} must be letters, digits, '_', '.', '-'")
        if not self.builtin:
            if not self.base_url or not re.match(r"^https?://", self.base_url):
                raise SettingsError(f"endpoint {self.name!r}: base URL must start with http:// or https://")
        if not self.model:
            raise SettingsError(f"endpoint {self.name!r}: a model name is required")
        if self.key_env is not None and not _ENV_RE.match(self.key_env):
            raise SettingsError(
                f"endpoint {self.name!r}: --key-env takes the NAME of an environment variable "
                f"(e.g. OPENAI_API_KEY), not the key itself"
            )
        if not isinstance(self.params, dict):
            raise SettingsError(f"endpoint {self.name!r}: params must be an object")


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


def settings_path() -> Path:
    """Where settings.json lives."""
    return config_dir() / "settings.json"


def load_settings(path: Path | None = None) -> Settings:
    """Read settings.json (defaults when absent); SettingsError naming the file when it is broken."""
    path = path or settings_path()
    if not path.exists():
        return Settings()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise SettingsError(f"{path}: expected a JSON object")
    settings = Settings()
    for key in ("default_endpoint", "lesson_token_budget", "reflection_context_tokens", "base_prompt"):
        if key in data:
            setattr(settings, key, data[key])
    for name, raw in (data.get("endpoints") or {}).items():
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
