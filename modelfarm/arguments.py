"""`-i name=value` arguments of `modelfarm predict`, read by the version's input schema: a
file as name=@path, other inputs as the text of their value. The farm checks the values
themselves (bounds, choices, patterns) and says what is wrong."""

from pathlib import Path
from typing import Any

# A version built before typed inputs: one file named "input".
LEGACY_SCHEMA = {"properties": {"input": {"x-file": True}}}
TRUE, FALSE = {"true", "yes", "1", "on"}, {"false", "no", "0", "off"}


class ArgumentError(ValueError):
    pass


def parse(schema: dict | None, given: list[str]) -> dict[str, Any]:
    properties = (schema or LEGACY_SCHEMA)["properties"]
    inputs: dict[str, Any] = {}
    for argument in given:
        name, equals, text = argument.partition("=")
        if not equals:
            raise ArgumentError(f"-i {argument}: give name=value (a file: name=@path)")
        if name not in properties:
            raise ArgumentError(f"-i {name}: this model's inputs are {', '.join(properties)}")
        inputs[name] = _value(name, properties[name], text)
    return inputs


def _value(name: str, described: dict, text: str) -> Any:
    if described.get("x-file"):
        path = Path(text.removeprefix("@")).expanduser()
        if not text.startswith("@") or not path.is_file():
            raise ArgumentError(f"-i {name}: a file input: give {name}=@PATH of an existing file")
        return path
    kind = described.get("type")
    try:
        if kind == "integer":
            return int(text)
        if kind == "number":
            return float(text)
    except ValueError:
        raise ArgumentError(f"-i {name}: {text!r} is not a {kind}") from None
    if kind == "boolean":
        if text.lower() not in TRUE | FALSE:
            raise ArgumentError(f"-i {name}: give true or false, not {text!r}")
        return text.lower() in TRUE
    return text
