"""A module imported on first use: heavy packages (openai, aiohttp) that most commands never touch."""
from __future__ import annotations

import importlib
from types import ModuleType


class LazyModule:
    """Stands for a module and imports it on the first attribute read (`openai = LazyModule("openai")`)."""

    def __init__(self, name: str):
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attribute: str):
        # Only reached for names not set in __init__; the import happens once, then it is a plain lookup.
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attribute)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}{' (imported)' if self._module else ''}>"
