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
    """Make the folders above an output (a file, or a `folder`) before the work, so that a place it cannot be written
    is one line at once, not a traceback once the work is done."""
    from pathlib import Path

    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise InputError(path, field, "a file stands where a folder above it would be", "choose another path") from None
    except OSError as error:
        raise InputError(path, field, f"its folder cannot be made ({error.strerror})", "choose another path") from None
    if path.exists() and path.is_dir() != folder:
        raise InputError(path, field, f"is {'a file' if folder else 'a folder'}", "choose another path")
