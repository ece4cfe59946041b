"""Typed inputs on the farm's side: the JSON Schema a version's inputs are stored and shown as,
made from the runner's description of predict() (runner/inputs.py, read at build time inside
the sandbox), and the check of a job's inputs against it before anything is queued.

A job's inputs are stored by name: a value (str, int, float, bool) as it is, a file as
{"name": the file name the model sees, "key": its object (None: sent inline), "offset": where
it starts in the inline bytes, "size"}.
"""

import json
from typing import Any

from jsonschema import Draft202012Validator

from runner.inputs import FILE, LEGACY_INPUT

# The file name a model sees an input under: a plain name, no folder.
FILE_NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$"
# The values of one job, as JSON: they travel to a one-shot runner as one argument (Linux takes
# up to 128 KiB), to a warm one in a frame header (runner/protocol.FRAME_HEADER_MAX).
MAX_VALUES_BYTES = 64 * 1024
FILE_MARK = "x-file"  # marks a file input's property
# marks a streaming predict's schema: its jobs' chunks come as output events (core/streams.py)
STREAM_MARK = "x-stream"
_JSON_TYPES = {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}
_KEYWORDS = {"ge": "minimum", "le": "maximum", "min_length": "minLength",
             "max_length": "maxLength", "choices": "enum", "description": "description",
             "default": "default"}  # fmt: skip
_FILE_SHAPES = {
    "InlineFile": {
        "type": "object", "required": ["name", "data"], "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "pattern": FILE_NAME_PATTERN},
            "data": {"type": "string", "contentEncoding": "base64"},
        },
        "description": "The file sent in the request: its name and its bytes, base64.",
    },
    "UploadedFile": {
        "type": "object", "required": ["upload"], "additionalProperties": False,
        "properties": {
            "upload": {"const": True},
            "name": {"type": "string", "pattern": FILE_NAME_PATTERN},
        },
        "description": "The file PUT afterwards to its URL in upload_urls, then /run.",
    },
}  # fmt: skip
FILE_HINT = 'give a file as {"name": "a.png", "data": "<base64>"} or {"upload": true}'


class InputError(ValueError):
    """Inputs that do not fit a version's schema; the message names each input and rule."""


def json_schema(description: dict) -> dict:
    """The JSON Schema of a job's `inputs` for a model whose predict() the runner described."""
    properties, required = {}, []
    for order, each in enumerate(description["inputs"]):
        described = {"title": each["name"], "x-order": order}
        if each["type"] == FILE:
            refs = [{"$ref": f"#/$defs/{shape}"} for shape in _FILE_SHAPES]
            described.update({FILE_MARK: True, "oneOf": refs})
        else:
            described["type"] = _JSON_TYPES[each["type"]]
        described.update({_KEYWORDS[k]: v for k, v in each.items() if k in _KEYWORDS})
        if "regex" in each:  # the whole value must match, as in the runner
            described["pattern"] = f"^(?:{each['regex']})$"
        properties[each["name"]] = described
        if "default" not in each:
            required.append(each["name"])
    schema = {"type": "object", "properties": properties, "required": required,
              "additionalProperties": False}  # fmt: skip
    if any(FILE_MARK in p for p in properties.values()):
        schema["$defs"] = _FILE_SHAPES
    if description.get("stream"):
        schema[STREAM_MARK] = True
    return schema


# A version built before typed inputs: one file, as predict(input_path, output_dir) takes it.
LEGACY_SCHEMA = json_schema({"inputs": [{"name": LEGACY_INPUT, "type": FILE}]})


def file_inputs(schema: dict) -> list[str]:
    return [name for name, p in schema["properties"].items() if p.get(FILE_MARK)]


def only_file_input(schema: dict) -> str | None:
    """The input a single file goes to, when the model takes one file and nothing else that
    has no default; None otherwise."""
    files = file_inputs(schema)
    if len(files) == 1 and schema["required"] in ([], files):
        return files[0]
    return None


def checked(schema: dict, inputs: dict[str, Any], where: str = "inputs") -> dict[str, Any]:
    """The inputs with the defaults of those not given; InputError naming every problem, each
    at its place (`where`: the inputs' own)."""
    problems = []
    for error in sorted(Draft202012Validator(schema).iter_errors(inputs), key=_where):
        name = error.absolute_path[0] if error.absolute_path else None
        if name in file_inputs(schema):
            problems.append(f"{where}.{name}: {FILE_HINT}")
        else:
            at = f"{where}.{name}" if name is not None else where
            problems.append(f"{at}: {_shortened(error.message)}")
    if problems:
        raise InputError("; ".join(dict.fromkeys(problems)) + ".")
    values = {name: value for name, value in inputs.items() if not is_file(value)}
    if len(json.dumps(values)) > MAX_VALUES_BYTES:
        raise InputError(
            f"{where}: the values add up to more than {MAX_VALUES_BYTES} bytes as JSON; send "
            "long text as a file input."
        )
    return {**defaults(schema), **inputs}


def defaults(schema: dict) -> dict[str, Any]:
    return {name: p["default"] for name, p in schema["properties"].items() if "default" in p}


def _where(error) -> str:
    return str(list(error.absolute_path))


def _shortened(message: str) -> str:
    return message if len(message) <= 200 else message[:200] + "…"


def is_file(value: Any) -> bool:
    """Whether a stored input is a file (values are never objects)."""
    return isinstance(value, dict)


def stored_bytes(inputs: dict[str, Any], batch: list[dict] | None) -> int:
    """The bytes of a job's input files (a batch's: its items'), as sealed."""
    files = [value for value in inputs.values() if is_file(value)]
    return sum(each.get("size") or 0 for each in (*files, *(batch or [])))


def public(inputs: dict[str, Any]) -> dict[str, Any]:
    """A job's inputs as its owner sees them: values, and files as their name and size."""
    return {
        name: {"name": value["name"], "size": value["size"]} if is_file(value) else value
        for name, value in inputs.items()
    }
