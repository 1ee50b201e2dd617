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
