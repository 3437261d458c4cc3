"""Tasks: suites loaded from JSONL files (built-in or the user's own), each task with its verifier spec."""
