"""``python -m ldbulk.sandbox``: the same command as ``ldbulk sandbox``."""

from ldbulk.sandbox.cli import sandbox_command

if __name__ == "__main__":
    sandbox_command(prog_name="python -m ldbulk.sandbox")
