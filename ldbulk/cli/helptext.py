"""What ``ldbulk --help`` and each command's ``--help`` say: the commands in the order an
operator uses them, one whole line each, and a few examples closing every command's help.

Kept apart from the commands so the group's listing reads as one place, and so a command
defined elsewhere (the sandbox's) gets its line and examples without its module knowing.
"""

from __future__ import annotations

from typing import Final

import click

# The workflow's order: check the manifests, see the change, make it, watch it settle, then
# the tools around it. ``ldbulk --help`` lists the commands in this order, not alphabetically.
WORKFLOW: Final = (
    "validate", "plan", "apply", "status", "export", "check", "sandbox", "completion",
)

# One line each, short enough that an 80-column ``--help`` shows it whole.
SUMMARIES: Final = {
    "validate": "Check manifests offline; sends nothing.",
    "plan": "Show what apply would change, and the drift. Reads only.",
    "apply": "Create, update (and with --prune delete) integrations.",
    "status": "Each target's store status; --wait until all are available.",
    "export": "Write the account's integrations as a manifest.",
    "check": "Preflight the manifests' stores from this machine.",
    "sandbox": "Run a local LaunchDarkly API sandbox to try ldbulk on.",
    "completion": "Print the shell completion script.",
}

# Two or three each, as gh and kubectl close their help: the common call first.
EXAMPLES: Final = {
    "validate": (
        "ldbulk validate manifests/prod.yaml",
        "ldbulk validate manifests/*.yaml --require-secrets",
        "ldbulk validate manifests/prod.yaml -o json",
    ),
    "plan": (
        "ldbulk plan manifests/prod.yaml",
        "ldbulk plan manifests/prod.yaml --prune --out prod.plan",
        "ldbulk plan manifests/prod.yaml --markdown comment.md --detailed-exitcode",
    ),
    "apply": (
        "ldbulk apply manifests/prod.yaml --report report.json",
        "ldbulk apply prod.plan",
        "ldbulk apply manifests/prod.yaml --prune --max-deletes 5",
    ),
    "status": (
        "ldbulk status manifests/prod.yaml",
        "ldbulk status manifests/prod.yaml --wait 300 --interval 15",
        "ldbulk status manifests/prod.yaml -o json",
    ),
    "export": (
        "ldbulk export > manifests/current.yaml",
        "ldbulk export --project web --project api",
    ),
    "check": (
        "ldbulk check manifests/prod.yaml",
        "ldbulk check manifests/prod.yaml -o json",
    ),
    "sandbox": (
        "ldbulk sandbox --projects 3 --environments 4",
        "ldbulk sandbox --port 8080 --print-env > sandbox.env",
        "ldbulk sandbox --world world.yaml",
    ),
    "completion": (
        'eval "$(ldbulk completion bash)"',
        "ldbulk completion fish > ~/.config/fish/completions/ldbulk.fish",
    ),
}


def examples_epilog(examples: tuple[str, ...]) -> str:
    """The examples as an epilog click prints as written: ``\\b`` keeps its lines unwrapped,
    so a long command is never broken in the middle."""
    return "\b\nExamples:\n" + "\n".join(f"  $ {example}" for example in examples)


def describe(command: click.Command) -> None:
    """Give ``command`` its one-line summary and its examples (by its name)."""
    name = command.name or ""
    if name in SUMMARIES:
        command.short_help = SUMMARIES[name]
    if name in EXAMPLES:
        command.epilog = examples_epilog(EXAMPLES[name])


def in_workflow_order(names: list[str]) -> list[str]:
    """``names`` in :data:`WORKFLOW`'s order; any other name after them, alphabetically."""
    known = [name for name in WORKFLOW if name in names]
    return known + sorted(set(names) - set(known))
