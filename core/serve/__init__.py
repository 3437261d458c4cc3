"""`lessonlab serve`: an OpenAI-compatible proxy that puts the active lessons into every request and
records each exchange as a rollout of a run of kind `serve` (Qt-free; the CLI and the app start it)."""
