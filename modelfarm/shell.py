"""How the `modelfarm` command talks to its user: results to stdout, progress and the build log
to stderr, drawn for a terminal (tty), as plain lines (plain: the default when stderr is not a
terminal) or not at all (quiet). rich leaves colors out when not on a terminal or with NO_COLOR.
And what the user's MODEL[:VERSION_NUMBER|:ALIAS] names.
"""

import json
from collections.abc import Iterator
from contextlib import nullcontext
from enum import StrEnum
from typing import NoReturn

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn
from rich.table import Table

from modelfarm import config
from modelfarm.client import Client
from modelfarm.events import Event


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

    def show(self, rows: list[dict], as_json: bool, columns: list[str]) -> None:
        """Rows as JSON, or as a table of these columns."""
        if as_json:
            self.out.print_json(json.dumps(rows))
            return
        table = Table(*columns, box=None)
        for row in rows:
            table.add_row(*("" if row.get(c) is None else str(row[c]) for c in columns))
        self.out.print(table)

    def note(self, text: str) -> None:
        if self.mode != ProgressMode.quiet:
            self.err.print(text, markup=False, highlight=False, soft_wrap=True)

    def stream(self, text: str) -> None:
        if self.mode != ProgressMode.quiet:
            self.err.out(text, end="", highlight=False)

    def show_live(self, events: Iterator[Event], *, chunks: bool) -> tuple[dict | None, bool]:
        """A job's events shown as they come: the model's log lines on stderr and, if asked,
        the chunks it yields on stdout. The job once done (None if it was removed first), and
        whether it yielded any chunk."""
        job, streamed = None, False
        for event in events:
            if event.event == "log":
                self.stream(event.data["line"] + "\n")
            elif event.event == "output":
                streamed, chunk = True, event.data["chunk"]
                if chunks:
                    self.out.out(chunk if isinstance(chunk, str) else json.dumps(chunk), end="")
            elif event.event == "done":
                job = event.data
        return job, streamed

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


def resolve(farm: Client, target: str) -> tuple[dict, dict, str | None]:
    """The model, the version and the alias (if named by one) that MODEL[:PICK] means."""
    name, _, pick = target.partition(":")
    model = farm.find_model(name)
    if model is None:
        fail(f"no model named {name!r} among yours and the public ones")
    if pick.isdigit():
        numbered = [v for v in farm.versions(model["id"]) if v["number"] == int(pick)]
        if not numbered:
            fail(f"{name} has no version {pick}")
        return model, numbered[0], None
    if pick:
        aliases = {a["name"]: a["version_id"] for a in farm.aliases(model["id"])}
        if pick not in aliases:
            fail(f"{name} has no alias {pick!r} (it has: {', '.join(aliases) or 'none'})")
        return model, farm.version(aliases[pick]), pick
    ready = [v for v in farm.versions(model["id"]) if v["status"] == "READY"]
    if not ready:
        fail(f"{name} has no READY version yet")
    return model, max(ready, key=lambda v: v["number"]), None


def fail(message: str, code: int = 1) -> NoReturn:
    """Ends the command with its error on stderr and a non-zero exit code."""
    Console(stderr=True, soft_wrap=True).print(f"error: {message}", markup=False, highlight=False)
    raise SystemExit(code)
