"""A version's run form in the web UI, made from its input schema (core/inputs.json_schema):
a field per input, and the job's `inputs` read back from the submitted form."""

import base64
import re
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile

from core.inputs import FILE_MARK


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # file, select, number, checkbox, text
    required: bool
    schema: dict

    @property
    def step(self) -> str:
        return "1" if self.schema.get("type") == "integer" else "any"


def fields_of(schema: dict) -> list[Field]:
    """The form's fields, in predict's parameter order."""
    required = set(schema.get("required", []))
    ordered = sorted(schema["properties"].items(), key=lambda item: item[1].get("x-order", 0))
    return [Field(name, _kind(spec), name in required, spec) for name, spec in ordered]


def _kind(spec: dict) -> str:
    if spec.get(FILE_MARK):
        return "file"
    if "enum" in spec:
        return "select"
    return {"integer": "number", "number": "number", "boolean": "checkbox"}.get(
        spec.get("type"), "text"
    )


async def inputs_of(form: FormData, fields: list[Field]) -> dict[str, Any]:
    """The job's inputs from the form: files inline, values typed as the schema says; an
    optional input left empty is left out (its default applies). A value that does not read
    as its type is passed on as it is, for the input check to name it."""
    found: dict[str, Any] = {}
    for field in fields:
        given = form.get(field.name)
        if field.kind == "checkbox":
            found[field.name] = given is not None
        elif isinstance(given, UploadFile):
            if given.filename:
                data = base64.b64encode(await given.read()).decode()
                found[field.name] = {"name": given.filename, "data": data}
        elif given not in (None, ""):
            found[field.name] = _typed(str(given), field.schema.get("type"))
    return found


def _typed(text: str, json_type: str | None) -> Any:
    try:
        if json_type == "integer":
            return int(text)
        if json_type == "number":
            return float(text)
    except ValueError:
        return text
    return text


# "inputs.words: 99 is greater than the maximum of 10": the farm's sentence about one input.
_ABOUT_AN_INPUT = re.compile(r"inputs\.([A-Za-z_][A-Za-z0-9_]*): ([^;]+)")


def errors_by_field(detail: str) -> dict[str, str]:
    """The parts of the farm's refusal that name an input, by the input's name: shown beside
    its field."""
    return {name: problem.strip() for name, problem in _ABOUT_AN_INPUT.findall(detail)}


def problems_of(invalid: ValidationError) -> str:
    """A refused form's problems, one sentence each, named by their field."""
    problems = []
    for error in invalid.errors():
        where = ".".join(str(part) for part in error["loc"])
        problems.append(f"{where}: {error['msg']}" if where else error["msg"])
    return "; ".join(problems) + "."
