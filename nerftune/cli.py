"""The `nerftune` command: `nerftune COMMAND ...`, each command's own `--help` for its options, `nerftune --help`
for the list. A command's module is imported only once it is chosen, so the list and bad input answer at once."""

from __future__ import annotations

import importlib
import sys
from typing import Sequence

COMMANDS = {  # name: (where its main is, what it does)
    "sweep": ("nerftune.sweep:main", "run or resume a sweep from its spec (--dry-run: check it, print the plan)"),
    "prepare": ("nerftune.data.prepare:main", "a phone video or folder of frames into a dataset, with pycolmap"),
    "paths": ("nerftune.camera_paths:paths_main", "camera paths around the document, for novel views"),
    "render": ("nerftune.novel_views:render_main", "render a trained trial along camera paths; each view's novelty"),
    "eval": ("nerftune.evaluate:main", "one CSV row per trial and evaluated step of a sweep"),
    "report": ("nerftune.report:main", "a sweep's report: its findings with their seed noise"),
    "replay": ("nerftune.replay:main", "replay a scheduler on the learning curves a sweep recorded"),
    "export": ("nerftune.export:main", "a trial for nerfstudio's own tools, or as a point cloud or mesh"),
}
USAGE = f"usage: nerftune {{{','.join(COMMANDS)}}} ...  (nerftune COMMAND --help; nerftune --version)"


def described(doc: str) -> str:
    """A command module's docstring's first paragraph, for its `--help` (argparse wraps it again)."""
    return " ".join(doc.split("\n\n")[0].split())


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["-h"], ["--help"]):
        width = max(map(len, COMMANDS))
        print("\n".join([USAGE, "", "commands:", *(f"  {n:{width}}  {what}" for n, (_, what) in COMMANDS.items())]))
        return 0
    if argv[:1] == ["--version"]:
        from nerftune.versions import version_line

        print(version_line())
        return 0
    if not argv or argv[0] not in COMMANDS:
        unknown = f"error: unknown command {argv[0]!r}; " if argv else ""
        print(f"{unknown}{USAGE}", file=sys.stderr)
        return 2
    module, function = COMMANDS[argv[0]][0].split(":")
    return getattr(importlib.import_module(module), function)(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
