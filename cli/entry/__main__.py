"""`python -m lessonlab` runs the command line (this folder is mapped to the `lessonlab` package root)."""
from lessonlab.cli.root import main

main()
