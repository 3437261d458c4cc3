"""Storage: the workspace (one SQLite file opened through sqlite-utils) and its ordered migrations.

The ground floor of the engine: it imports nothing from runs, lessons, models, reflection, transfer,
tasks, tools or verifiers (an import-linter contract holds this), so everything above can build on it.
"""
