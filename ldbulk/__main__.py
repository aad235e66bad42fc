"""``python -m ldbulk``: the command line."""

from ldbulk.cli import main

main()
