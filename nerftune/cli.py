"""The `nerftune` command: `nerftune {sweep,prepare,paths,render,eval,report,replay,export} ...` (`nerftune COMMAND --help` for each)."""

from __future__ import annotations

import importlib
import sys
from typing import Sequence

COMMANDS = {
    "sweep": "nerftune.sweep:main",
    "prepare": "nerftune.data.prepare:main",
    "paths": "nerftune.camera_paths:paths_main",
    "render": "nerftune.novel_views:render_main",
    "eval": "nerftune.evaluate:main",
    "report": "nerftune.report:main",
    "replay": "nerftune.replay:main",
    "export": "nerftune.export:main",
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        print(f"usage: nerftune {{{','.join(COMMANDS)}}} ...  (nerftune COMMAND --help)", file=sys.stderr)
        return 2
    module, function = COMMANDS[argv[0]].split(":")
    return getattr(importlib.import_module(module), function)(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
