"""`python -m lessonlab.cli` runs the command line."""
from lessonlab.cli.root import main

main()
