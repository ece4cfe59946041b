"""How the `modelfarm` command talks to its user: results to stdout, progress and the build log
to stderr, drawn for a terminal (tty), as plain lines (plain: the default when stderr is not a
terminal) or not at all (quiet). rich leaves colors out when not on a terminal or with NO_COLOR.
"""

from contextlib import nullcontext
from enum import StrEnum
from typing import NoReturn

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

from modelfarm import config
from modelfarm.client import Client


class ProgressMode(StrEnum):
    plain = "plain"
    tty = "tty"
    quiet = "quiet"


class Shell:
    """What a command writes to, and the farm it talks to."""

    def __init__(self, mode: ProgressMode | None) -> None:
        self.err, self.out = Console(stderr=True), Console(highlight=False, soft_wrap=True)
        self.mode = mode or (ProgressMode.tty if self.err.is_terminal else ProgressMode.plain)

    def client(self) -> Client:
        login = config.load()
        if not login.token:
            fail("not logged in: run `modelfarm login` (or set MODELFARM_TOKEN)")
        return Client(login.api_url, login.token)

    def note(self, text: str) -> None:
        if self.mode != ProgressMode.quiet:
            self.err.print(text, markup=False, highlight=False, soft_wrap=True)

    def stream(self, text: str) -> None:
        if self.mode != ProgressMode.quiet:
            self.err.out(text, end="", highlight=False)

    def waiting(self, what: str):
        """A spinner (tty), or one line (plain), while something runs."""
        if self.mode == ProgressMode.tty:
            return self.err.status(what, spinner="dots")
        self.note(what)
        return nullcontext()

    def uploading(self, size: int, what: str):
        """A progress bar (tty), or start and end lines (plain), of an upload of size bytes."""
        if self.mode == ProgressMode.tty:
            columns = ("{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn())
            return _Bar(Progress(*columns, console=self.err, transient=True), size, what)
        return _Lines(self, size, what)


class _Bar:
    def __init__(self, progress: Progress, size: int, what: str) -> None:
        self.progress, self.task = progress, progress.add_task(f"uploading {what}", total=size)

    def __enter__(self):
        self.progress.start()
        return lambda sent: self.progress.advance(self.task, sent)

    def __exit__(self, *_: object) -> None:
        self.progress.stop()


class _Lines:
    def __init__(self, shell: Shell, size: int, what: str) -> None:
        self.shell, self.size, self.what = shell, size, what

    def __enter__(self):
        self.shell.note(f"uploading {self.what} ({self.size:,} bytes)")
        return None

    def __exit__(self, *_: object) -> None:
        self.shell.note(f"uploaded {self.what}")


def fail(message: str, code: int = 1) -> NoReturn:
    """Ends the command with its error on stderr and a non-zero exit code."""
    Console(stderr=True, soft_wrap=True).print(f"error: {message}", markup=False, highlight=False)
    raise SystemExit(code)
