"""Ready-made snippets that run one version, for its page in the web UI: curl (POST /api/jobs),
the Python SDK (modelfarm.Client.predict) and the `modelfarm predict` command (modelfarm/cli.py),
each with sample inputs read from the version's input schema: its defaults, else a value its
rules accept, and a file as a path to replace."""

import json
import secrets
import shlex
from dataclasses import dataclass
from typing import Any

from api.forms import Field

# Stands for a file's base64 in the curl body, swapped for the shell's own reading of the file
# (random: no default value of a schema holds it).
_FILE_DATA = f"@{secrets.token_hex(16)}:{{}}@"


@dataclass(frozen=True)
class Snippets:
    curl: str
    python: str
    cli: str


def of(api_url: str, version_id: str, target: str, fields: list[Field]) -> Snippets:
    """The snippets for the version `version_id`, which the command names as `target`
    (MODEL:NUMBER); api_url is the farm's, as the browser reached it."""
    api_url = api_url.rstrip("/")
    files = {f.name: f"path/to/{f.name}" for f in fields if f.kind == "file"}
    values = {
        f.name: value for f in fields if f.kind != "file" and (value := _sample(f)) is not None
    }
    return Snippets(
        curl=_curl(api_url, version_id, files, values),
        python=_python(api_url, version_id, files, values),
        cli=_cli(api_url, target, files, values),
    )


def _sample(field: Field) -> Any:
    """A value the input accepts: its default, else one its rules allow; None: left out (an
    optional input whose default is None)."""
    spec = field.schema
    if "default" in spec:
        return spec["default"]
    if field.kind == "select":
        return spec["enum"][0]
    if field.kind == "checkbox":
        return False
    if field.kind == "number":
        return spec.get("minimum", 0)
    return "text"[: spec.get("maxLength", 4)].ljust(spec.get("minLength", 0), "x")


def _curl(api_url: str, version_id: str, files: dict[str, str], values: dict[str, Any]) -> str:
    given = {name: {"name": name, "data": _FILE_DATA.format(name)} for name in files}
    body = json.dumps({"version_id": version_id, "inputs": {**given, **values}})
    quoted = body.replace("'", "'\\''")  # the body goes in single quotes
    for name, path in files.items():
        read = f"$(base64 < {shlex.quote(path)} | tr -d '\\n')"
        quoted = quoted.replace(_FILE_DATA.format(name), f"'\"{read}\"'")
    return "\n".join(
        [
            f"curl -sS -X POST {shlex.quote(api_url + '/api/jobs')} \\",
            '  -H "Authorization: Bearer $MODELFARM_TOKEN" \\',
            "  -H 'Content-Type: application/json' -H 'Prefer: wait=60' \\",
            f"  -d '{quoted}'",
        ]
    )


def _python(api_url: str, version_id: str, files: dict[str, str], values: dict[str, Any]) -> str:
    given = [f"{json.dumps(name)}: Path({json.dumps(path)})" for name, path in files.items()]
    given += [f"{json.dumps(name)}: {_python_literal(value)}" for name, value in values.items()]
    return "\n".join(
        [
            "import os",
            "from pathlib import Path",
            "",
            "from modelfarm import Client",
            "",
            f'farm = Client({json.dumps(api_url)}, os.environ["MODELFARM_TOKEN"])',
            f"job = farm.predict({json.dumps(version_id)}, {{{', '.join(given)}}})",
            'print(job["status"], job["result"])',
            'farm.download_outputs(job["id"], Path("outputs"))',
        ]
    )


def _python_literal(value: Any) -> str:
    return json.dumps(value) if isinstance(value, str) else repr(value)


def _cli(api_url: str, target: str, files: dict[str, str], values: dict[str, Any]) -> str:
    given = [f"{name}=@{path}" for name, path in files.items()]
    given += [f"{name}={_cli_text(value)}" for name, value in values.items()]
    arguments = [f"-i {shlex.quote(each)}" for each in given]
    predict = " ".join(["modelfarm predict", shlex.quote(target), *arguments, "-o outputs"])
    return f"modelfarm login --api {shlex.quote(api_url)}\n{predict}"


def _cli_text(value: Any) -> str:
    """The value as modelfarm/arguments.py reads it back."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
