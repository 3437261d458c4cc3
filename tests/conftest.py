"""Qt runs offscreen; the shared fixtures come from the tests.helpers package."""
from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

pytest_plugins = ["tests.helpers.fixtures"]
