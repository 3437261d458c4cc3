"""The `lessonlab` command line: one module per command group, assembled in `root`."""
