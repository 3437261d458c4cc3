"""Runs: planning a run, claiming it for this process, sending rollouts, verifying and writing them.

`runner` executes a run step by step; `writer` stores finished rollouts in batches; `planning`
chooses tasks, snapshot and endpoint; `owner` says which process executes a run; `queries` are the
read-only views of runs and rollouts that the CLI and the app show.
"""
