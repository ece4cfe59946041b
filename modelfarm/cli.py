"""The `modelfarm` command: log in, push a model folder, run it, and read what the farm holds.
Results go to stdout (JSON with --json), progress to stderr (modelfarm/shell.py)."""

import enum
import json
import socket
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import httpx
import typer

from modelfarm import arguments, config, pushes
from modelfarm.client import ApiError, Client
from modelfarm.eject import download_into
from modelfarm.packing import BY_CONTENT_ABOVE, fingerprint, pack
from modelfarm.shell import ProgressMode, Shell, fail, resolve

app = typer.Typer(
    help="Push models to a modelfarm, run them, see what they did.", no_args_is_help=True,
    pretty_exceptions_enable=False, add_completion=False,
)  # fmt: skip
tokens_app = typer.Typer(
    help="API tokens (managed with your password: an API token cannot make more).",
    no_args_is_help=True,
)
Email = Annotated[str | None, typer.Option(help="Your email (asked for if not given).")]
PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from stdin, for scripts.")
]
app.add_typer(tokens_app, name="tokens")
SCOPES = ["read", "build", "run"]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON, for scripts.")]
Target = Annotated[str, typer.Argument(help="MODEL, MODEL:VERSION_NUMBER or MODEL:ALIAS.")]


@app.callback()
def main(
    context: typer.Context,
    progress: Annotated[ProgressMode | None, typer.Option(help="tty, plain or quiet.")] = None,
) -> None:
    context.obj = Shell(progress)


def shell_of(context: typer.Context) -> Shell:
    return context.obj


@app.command()
def login(
    context: typer.Context,
    token: Annotated[str | None, typer.Option(help="An API token (mf_…) to use as it is.")] = None,
    email: Email = None,
    password_stdin: PasswordStdin = False,
    api: Annotated[str | None, typer.Option(help="The farm's URL.")] = None,
) -> None:
    """Store an API token for the next commands: given, or made with your email and password."""
    api_url = api or config.load().api_url
    if token is None:
        with _logged_in(api_url, email, password_stdin) as farm:
            token = farm.create_token(f"cli on {socket.gethostname()}"[:64], SCOPES)["token"]
    with Client(api_url, token) as farm:
        me = farm.me()
    path = config.save(config.Login(api_url, token))
    shell_of(context).out.print(f"Logged in to {api_url} as {me['email']} (token in {path}).")


@app.command()
def logout(context: typer.Context) -> None:
    """Sign out: the stored token is revoked at the farm and forgotten here."""
    login, shell = config.load(), shell_of(context)
    if login.token is not None:
        with Client(login.api_url, login.token) as farm:
            try:
                farm.logout()
            except ApiError as error:
                if error.status_code != 401:  # 401: revoked already
                    raise
    config.save(config.Login(login.api_url, None))
    shell.out.print(f"Logged out of {login.api_url}: the token is revoked and forgotten here.")


def _logged_in(api_url: str, email: str | None, password_stdin: bool) -> Client:
    """A client logged in with email and password (never stored)."""
    email = email or typer.prompt("Email")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True)
    farm = Client(api_url)
    farm.login(email, password)
    return farm


@app.command()
def push(
    context: typer.Context,
    folder: Annotated[Path, typer.Argument(help="The model's folder (with predict.py).")],
    model: Annotated[str, typer.Option("--model", "-m", help="The model's name.")],
    public: Annotated[bool, typer.Option(help="Create the model public.")] = False,
    as_json: AsJson = False,
) -> None:
    """Pack a folder, upload it as a new version of MODEL, build it, show the log live."""
    shell = shell_of(context)
    with shell.client() as farm:
        mine = [m for m in farm.models() if m["name"] == model and m["owner_id"] == farm.me()["id"]]
        visibility = "public" if public else "private"
        found = mine[0] if mine else farm.create_model(model, visibility=visibility)
        with tempfile.TemporaryDirectory(prefix="modelfarm-push-") as scratch:
            package = Path(scratch) / "package.zip"
            packed = pack(folder, package, by_content_above=BY_CONTENT_ABOVE)
            by_content = [declared["path"] for declared, _ in packed.by_content]
            sent_apart = f"; by content: {', '.join(by_content)}" if by_content else ""
            shell.note(f"packed {folder}: {', '.join(packed.names)}{sent_apart}")
            version = pushes.upload(shell, farm, found["id"], package, packed, fingerprint(folder))
        with shell.waiting(f"building {model} v{version['number']} ({version['id']})"):
            version = farm.wait_version(version["id"], log=shell.stream)
    if as_json:
        shell.out.print_json(json.dumps(version))
    if version["status"] != "READY":
        fail(f"the build FAILED: {version['error']}")
    if not as_json:
        shell.out.print(
            f"{model} v{version['number']} READY{' (reused)' if version['reused'] else ''}\n"
            f"image   {version['image_ref']}\ndigest  {version['image_digest']}\n"
            f"reused  {str(version['reused']).lower()}"
        )


@app.command()
def predict(
    context: typer.Context,
    target: Target,
    given: Annotated[
        list[str] | None, typer.Option("--input", "-i", help="name=value; a file: name=@path.")
    ] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Where outputs go.")] = Path("."),
    as_json: AsJson = False,
) -> None:
    """Run a model on inputs, print what it prints (stderr) and yields (stdout) live, then its
    result, and download the output files."""
    shell = shell_of(context)
    with shell.client() as farm:
        model, version, alias = resolve(farm, target)
        try:
            inputs = arguments.parse(version["input_schema"], given or [])
        except arguments.ArgumentError as error:
            fail(str(error), 2)
        shell.note(f"running {model['name']} v{version['number']}")
        events = farm.stream(version["id"], inputs, model_id=model["id"], alias=alias)
        job, streamed = shell.show_live(events, chunks=not as_json)
        if job is None:
            fail("the job was removed before it ended")
        written = farm.download_outputs(job["id"], output) if job["status"] == "SUCCEEDED" else []
    if as_json:
        shell.out.print_json(json.dumps({"job": job, "outputs": [str(p) for p in written]}))
    if job["status"] != "SUCCEEDED":
        fail(f"the job {job['status']}: {job['error']}")
    if not as_json:
        if streamed:
            shell.out.out("")  # the chunks' line ends
        else:
            shell.out.print(json.dumps(job["result"], indent=2))
        shell.note(f"outputs: {', '.join(str(p) for p in written)}")


@app.command()
def dockerfile(context: typer.Context, target: Target) -> None:
    """Print the Dockerfile a version's image was built from."""
    with shell_of(context).client() as farm:
        text = farm.dockerfile(resolve(farm, target)[1]["id"])
    shell_of(context).out.out(text, end="", highlight=False)


@app.command()
def eject(
    context: typer.Context, target: Target,
    folder: Annotated[Path, typer.Argument(help="A new or empty folder for the context.")],
) -> None:  # fmt: skip
    """Download a version's build context into FOLDER, to build its image with plain docker."""
    shell = shell_of(context)
    with shell.client() as farm:
        model, version, _ = resolve(farm, target)
        with shell.waiting(f"downloading the context of {model['name']} v{version['number']}"):
            download_into(farm, version["id"], folder)
    shell.note(f"the context of {model['name']} v{version['number']} is in {folder}; build it:")
    tag = f"{model['name']}:v{version['number']}"
    shell.out.print(f"docker build --network none -t {tag} {folder}", markup=False)


@app.command()
def models(context: typer.Context, as_json: AsJson = False) -> None:
    """List your models and the public ones."""
    with shell_of(context).client() as farm:
        found = farm.models()
    shell_of(context).show(found, as_json, ["name", "visibility", "id", "created_at"])


@app.command()
def versions(
    context: typer.Context, model: Annotated[str, typer.Argument(help="Name or id.")],
    as_json: AsJson = False,
) -> None:  # fmt: skip
    """List a model's versions, newest first."""
    with shell_of(context).client() as farm:
        found = farm.find_model(model)
        if found is None:
            fail(f"no model named {model!r} among yours and the public ones")
        listed = farm.versions(found["id"])
    shell_of(context).show(
        listed, as_json, ["number", "status", "reused", "id", "created_at", "error"]
    )


@app.command()
def jobs(context: typer.Context, as_json: AsJson = False) -> None:
    """List your jobs, newest first."""
    with shell_of(context).client() as farm:
        listed = farm.jobs()
    shell_of(context).show(
        listed, as_json, ["id", "status", "version_id", "run_seconds", "created_at"]
    )


@app.command()
def logs(
    context: typer.Context, version_or_job: Annotated[str, typer.Argument(help="An id.")]
) -> None:
    """Print a version's build log, or what a job's model printed."""
    with shell_of(context).client() as farm:
        try:
            text = farm.build_log(version_or_job)
        except ApiError as error:
            if error.status_code not in (404, 422):
                raise
            text = farm.job_log(version_or_job)
    shell_of(context).out.out(text, end="", highlight=False)


class Removable(enum.StrEnum):
    model = "model"
    version = "version"
    job = "job"


@app.command("rm")
def remove(
    context: typer.Context, kind: Removable,
    target: Annotated[str, typer.Argument(help="A model's name or id; a version's or job's id.")],
) -> None:  # fmt: skip
    """Remove a model (every version and job in it), a version or a job, with their files."""
    with shell_of(context).client() as farm:
        if kind is Removable.model:
            found = farm.find_model(target)
            if found is None:
                fail(f"no model named {target!r} among yours and the public ones")
            target = found["id"]
        farm.remove(f"{kind.value}s", target)
    shell_of(context).out.print(f"removed {kind.value} {target}", markup=False)


@tokens_app.command("create")
def create_token(
    context: typer.Context, name: str,
    scope: Annotated[list[str] | None, typer.Option(help="read, build, run (all if none).")] = None,
    days: Annotated[int | None, typer.Option(help="Expires after this many days.")] = None,
    email: Email = None, password_stdin: PasswordStdin = False, as_json: AsJson = False,
) -> None:  # fmt: skip
    """Make an API token, shown this once."""
    with _login_for_tokens(email, password_stdin) as farm:
        created = farm.create_token(name, scope or SCOPES, days)
    if as_json:
        shell_of(context).out.print_json(json.dumps(created))
    else:
        shell_of(context).out.print(created["token"])


@tokens_app.command("list")
def list_tokens(
    context: typer.Context, email: Email = None, password_stdin: PasswordStdin = False,
    as_json: AsJson = False,
) -> None:  # fmt: skip
    """Your API tokens (never the tokens themselves)."""
    with _login_for_tokens(email, password_stdin) as farm:
        listed = farm.tokens()
    columns = ["id", "name", "scopes", "created_at", "last_used_at", "expires_at"]
    shell_of(context).show(listed, as_json, columns)


@tokens_app.command("revoke")
def revoke_token(
    context: typer.Context, token_id: str, email: Email = None,
    password_stdin: PasswordStdin = False,
) -> None:  # fmt: skip
    """Revoke an API token at once."""
    with _login_for_tokens(email, password_stdin) as farm:
        farm.revoke_token(token_id)
    shell_of(context).out.print(f"revoked {token_id}")


def _login_for_tokens(email: str | None, password_stdin: bool) -> Client:
    """Tokens are managed with a login, never with an API token: a leaked one cannot mint
    more. The email defaults to the stored token's user's."""
    login = config.load()
    if email is None and login.token:
        with Client(login.api_url, login.token) as farm:
            email = farm.me()["email"]
    return _logged_in(login.api_url, email, password_stdin)


def run() -> None:
    """The console script: the farm's refusals and an unreachable farm end in one line."""
    try:
        app()
    except ApiError as error:
        fail(str(error))
    except httpx.TransportError as error:
        fail(f"cannot reach the farm at {config.load().api_url} ({error}): start it, or set "
             "MODELFARM_API")  # fmt: skip
