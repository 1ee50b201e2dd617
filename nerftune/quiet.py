"""Keeping other libraries' output off the terminal: while a command runs, everything written to this process's
stdout and stderr goes to a log file, and the command's own lines go to the terminal. A sweep logs to
`sweeps/<name>/sweep.log`, `eval --reevaluate` to `sweeps/<name>/eval.log`, `render` and `export` to `render.log`
and `export.log` in the trial's folder. `--verbose` (any of them) leaves the terminal as it is.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator


@dataclass
class Terminal:
    """Where people read: plain lines to `out`, warnings (prefixed `warning: `) to `err`."""

    out: IO[str]
    err: IO[str]

    def say(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    def warn(self, line: str) -> None:
        print(f"warning: {line}", file=self.err, flush=True)


_terminal: Terminal | None = None  # set while `quiet_output` sends the rest to the log


def terminal() -> Terminal:
    return _terminal or Terminal(sys.stdout, sys.stderr)


@contextlib.contextmanager
def quiet_output(log_path: Path, verbose: bool) -> Iterator[Terminal]:
    """Send everything written to this process's stdout and stderr (file descriptors included, so that native
    libraries, child processes and Ray's log forwarding follow) to `log_path`; yields the terminal, which people
    still see."""
    global _terminal
    if verbose:
        yield terminal()
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved_fds = os.dup(1), os.dup(2)
    saved_streams = sys.stdout, sys.stderr
    screen = Terminal(*(_beside(stream, fd) for stream, fd in zip(saved_streams, saved_fds)))
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a", buffering=1) as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        sys.stdout = sys.stderr = log
        _terminal = screen
        try:
            yield screen
        finally:
            _terminal = None
            sys.stdout, sys.stderr = saved_streams
            os.dup2(saved_fds[0], 1)
            os.dup2(saved_fds[1], 2)
            for fd in saved_fds:
                os.close(fd)
            for stream in (screen.out, screen.err):
                if stream not in saved_streams:
                    stream.close()


def _beside(stream: IO[str], saved_fd: int) -> IO[str]:
    """A stream to the terminal that survives the redirection: a copy of the descriptor where `stream` writes to
    it, else `stream` itself (pytest's capture, a notebook's output)."""
    try:
        if stream.fileno() in (1, 2):
            return os.fdopen(os.dup(saved_fd), "w", buffering=1)
    except (AttributeError, ValueError, OSError):
        pass
    return stream
