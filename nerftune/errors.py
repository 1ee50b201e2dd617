"""The one exception type for bad input: it renders as a single line a person can act on."""

from __future__ import annotations


class InputError(Exception):
    """Bad input (spec, dataset, command line): names the file, the field, the problem and what to do.

    Raised before anything starts; the command line prints `str(error)` and exits with status 2.
    """

    def __init__(self, source: str, field: str, problem: str, hint: str = ""):
        self.source, self.field, self.problem, self.hint = str(source), field, problem, hint
        super().__init__(self.line())

    def line(self) -> str:
        where = f"{self.source}: {self.field}" if self.field else self.source
        return f"{where}: {self.problem}" + (f" ({self.hint})" if self.hint else "")


def some_of(names: list[str], shown: int = 3) -> str:
    """The first `shown` names and how many more: a message names a few of a long list."""
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def output_place(path, field: str = "--out", folder: bool = False) -> None:
    """Refuse at once an output (a file, or a `folder`) that could not be written, rather than fail once the work is
    done: a file in the way, or a folder that is not writable. Nothing is made here; the output's folders are made
    when it is written."""
    import os
    from pathlib import Path

    path = Path(path)
    if path.exists() and path.is_dir() != folder:
        raise InputError(path, field, f"is {'a file' if folder else 'a folder'}", "choose another path")
    above = next(parent for parent in path.parents if parent.exists())
    if not above.is_dir():
        raise InputError(path, field, f"{above} is a file, not a folder", "choose another path")
    if not os.access(above, os.W_OK | os.X_OK):
        raise InputError(path, field, f"{above} is not writable", "choose another path")
