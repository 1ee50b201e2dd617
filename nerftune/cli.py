"""The `nerftune` command: `nerftune sweep SPEC.yaml [...]` (more subcommands join as they are built)."""

from __future__ import annotations

import sys
from typing import Sequence

COMMANDS = {"sweep": "nerftune.sweep", "prepare": "nerftune.data.prepare"}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        print(f"usage: nerftune {{{','.join(COMMANDS)}}} ...  (nerftune sweep --help)", file=sys.stderr)
        return 2
    import importlib

    return importlib.import_module(COMMANDS[argv[0]]).main(argv[1:])
